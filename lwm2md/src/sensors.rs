//! I2C sensors as IPSO objects: which object and resource each measured quantity goes
//! to, the objects built from `[[sensor]]` tables, and the bus threads feeding them.

use std::collections::BTreeMap;
use std::time::Duration;

use backends::sensor::{self, BusHandle, ChipSpec, Model, Quantity, Report};

use crate::config::Config;
use crate::engine::Engine;
use crate::feed::{Feed, FeedSender};
use crate::model::{Object, ObjectDef};
use crate::objects::device::Clock;
use crate::objects::ipso::{self, defs, InstanceSpec, IpsoSensor};
use crate::path::Path;
use crate::state::StateDir;
use crate::value::{ResourceValue, Value};

/// Where a quantity is shown: object, resource, SenML unit (RFC 8428, 8798).
pub fn placement(q: Quantity) -> (&'static ObjectDef, u16, &'static str) {
    match q {
        Quantity::Temperature => (&defs::TEMPERATURE, ipso::SENSOR_VALUE, "Cel"),
        Quantity::Humidity => (&defs::HUMIDITY, ipso::SENSOR_VALUE, "%RH"),
        Quantity::Pressure => (&defs::BAROMETER, ipso::SENSOR_VALUE, "Pa"),
        Quantity::Illuminance => (&defs::ILLUMINANCE, ipso::SENSOR_VALUE, "lx"),
        Quantity::AccelerationX => (&defs::ACCELEROMETER, ipso::X_VALUE, "m/s2"),
        Quantity::AccelerationY => (&defs::ACCELEROMETER, ipso::Y_VALUE, "m/s2"),
        Quantity::AccelerationZ => (&defs::ACCELEROMETER, ipso::Z_VALUE, "m/s2"),
        Quantity::Voltage => (&defs::VOLTAGE, ipso::SENSOR_VALUE, "V"),
        Quantity::Current => (&defs::CURRENT, ipso::SENSOR_VALUE, "A"),
        Quantity::Power => (&defs::POWER, ipso::SENSOR_VALUE, "W"),
        Quantity::Co2 => (&defs::CONCENTRATION, ipso::SENSOR_VALUE, "ppm"),
    }
}

/// The objects a model feeds, each once.
pub fn objects_fed(model: Model) -> Vec<u16> {
    let mut ids: Vec<u16> = model
        .spans()
        .iter()
        .map(|s| placement(s.quantity).0.id)
        .collect();
    ids.dedup();
    ids
}

/// One IPSO object per object ID that a configured sensor feeds, with an instance per
/// sensor.
pub fn objects(config: &Config, clock: Clock, state: &StateDir) -> Vec<Box<dyn Object>> {
    let mut objects: BTreeMap<u16, IpsoSensor> = BTreeMap::new();
    for s in &config.sensors {
        let s = s.get_ref();
        for span in s.model.backend().spans() {
            let (def, _, units) = placement(span.quantity);
            let object = objects
                .entry(def.id)
                .or_insert_with(|| IpsoSensor::new(def, clock, Some(state.clone())));
            if object.instances().contains(&s.instance) {
                // The accelerometer's three axes share one instance.
                continue;
            }
            object.add_instance(InstanceSpec {
                id: s.instance,
                units,
                range: (span.min, span.max),
                application_type: s.application_type.clone(),
            });
        }
    }
    objects
        .into_values()
        .map(|o| Box::new(o) as Box<dyn Object>)
        .collect()
}

/// A sensor as the daemon follows it.
struct Fed {
    instance: u16,
    objects: Vec<u16>,
    interval: Duration,
    current: Duration,
}

struct Bus {
    handle: BusHandle,
    chips: Vec<Fed>,
}

/// The running bus threads.
pub struct Sensors {
    buses: Vec<Bus>,
    floor: Duration,
}

impl Sensors {
    /// Starts one sampling thread per configured bus. A thread that cannot start is
    /// logged and its sensors stay without values; the rest of the daemon goes on.
    pub fn start(config: &Config, feed: &FeedSender) -> Sensors {
        let mut by_bus: BTreeMap<&str, Vec<&crate::config::SensorConfig>> = BTreeMap::new();
        for s in &config.sensors {
            let s = s.get_ref();
            by_bus.entry(s.bus.as_str()).or_default().push(s);
        }
        let mut buses = Vec::new();
        for (name, sensors) in by_bus {
            let specs: Vec<ChipSpec> = sensors
                .iter()
                .filter_map(|s| {
                    let model = s.model.backend();
                    Some(ChipSpec {
                        model,
                        // Checked when the configuration was loaded.
                        address: model.check_address(s.address).ok()?,
                        interval: Duration::from_secs(s.interval.into()),
                    })
                })
                .collect();
            let calibration: Vec<(u16, f64, f64)> = sensors
                .iter()
                .map(|s| (s.instance, s.scale, s.offset))
                .collect();
            let tx = feed.clone();
            let sink = move |report: Report| match report {
                Report::Readings { chip, readings } => {
                    let Some(&(instance, scale, offset)) = calibration.get(chip) else {
                        return true;
                    };
                    readings.iter().all(|r| {
                        let (def, resource, _) = placement(r.quantity);
                        let value = r.value * scale + offset;
                        let path = Path::resource(def.id, instance, resource);
                        tx.blocking_send(Feed::Value(
                            path,
                            ResourceValue::Single(Value::Float(value)),
                        ))
                        .is_ok()
                    })
                }
                // The bus thread has logged it with bus, address and cause.
                Report::Failed { .. } => !tx.is_closed(),
            };
            match sensor::spawn(name.to_string(), specs, sink) {
                Ok(handle) => buses.push(Bus {
                    handle,
                    chips: sensors
                        .iter()
                        .map(|s| Fed {
                            instance: s.instance,
                            objects: objects_fed(s.model.backend()),
                            interval: Duration::from_secs(s.interval.into()),
                            current: Duration::from_secs(s.interval.into()),
                        })
                        .collect(),
                }),
                Err(e) => tracing::error!(bus = name, "cannot start the sampling thread: {e}"),
            }
        }
        Sensors {
            buses,
            floor: Duration::from_secs(config.sensor_interval_floor.into()),
        }
    }

    /// Samples a sensor as often as the tightest pmin of its observers asks (never more
    /// often than the floor, never less often than configured).
    pub fn follow_observers(&mut self, engine: &Engine) {
        for bus in &mut self.buses {
            for (index, chip) in bus.chips.iter_mut().enumerate() {
                let pmin = chip
                    .objects
                    .iter()
                    .filter_map(|o| engine.tightest_pmin(&Path::instance(*o, chip.instance)))
                    .min();
                let wanted = match pmin {
                    Some(p) => chip
                        .interval
                        .min(Duration::from_secs(p.into()).max(self.floor)),
                    None => chip.interval,
                };
                if wanted != chip.current {
                    tracing::debug!(
                        instance = chip.instance,
                        "sampling every {} s",
                        wanted.as_secs()
                    );
                    chip.current = wanted;
                    bus.handle.set_interval(index, wanted);
                }
            }
        }
    }
}
