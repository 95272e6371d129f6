//! I2C sensors as IPSO objects: which object and resource each measured quantity goes
//! to, the objects built from `[[sensor]]` tables, and the bus threads feeding them.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use backends::sensor::{self, BusHandle, ChipSpec, Model, Quantity, Report};

use crate::config::Config;
use crate::engine::Engine;
use crate::feed::{Feed, FeedSender};
use crate::model::{Object, ObjectDef};
use crate::objects::device::{self, Clock};
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
        Quantity::Voltage | Quantity::InputVoltage(_) => (&defs::VOLTAGE, ipso::SENSOR_VALUE, "V"),
        Quantity::Current => (&defs::CURRENT, ipso::SENSOR_VALUE, "A"),
        Quantity::Power => (&defs::POWER, ipso::SENSOR_VALUE, "W"),
        Quantity::Co2 => (&defs::CONCENTRATION, ipso::SENSOR_VALUE, "ppm"),
    }
}

/// The instance a quantity goes to, counted from the sensor's first: an ADC's inputs
/// each have an instance of their own.
pub fn instance_offset(q: Quantity) -> u16 {
    match q {
        Quantity::InputVoltage(n) => n.into(),
        _ => 0,
    }
}

/// The (object, instance) pairs a model feeds from instance `first`, each once. The
/// configuration is checked to leave room for them.
pub fn instances_fed(model: Model, first: u16) -> Vec<(u16, u16)> {
    let mut ids: Vec<(u16, u16)> = model
        .spans()
        .iter()
        .map(|s| {
            let offset = instance_offset(s.quantity);
            (placement(s.quantity).0.id, first.saturating_add(offset))
        })
        .collect();
    ids.dedup();
    ids
}

/// The resources a model's readings go to, from instance `first`.
pub fn measured_paths(model: Model, first: u16) -> Vec<Path> {
    model
        .spans()
        .iter()
        .map(|s| {
            let (def, resource, _) = placement(s.quantity);
            let instance = first.saturating_add(instance_offset(s.quantity));
            Path::resource(def.id, instance, resource)
        })
        .collect()
}

/// One IPSO object per object ID that a configured sensor feeds, with an instance per
/// sensor.
pub fn objects(config: &Config, clock: Clock, state: &StateDir) -> Vec<Box<dyn Object>> {
    let mut objects: BTreeMap<u16, IpsoSensor> = BTreeMap::new();
    for s in &config.sensors {
        let s = s.get_ref();
        for span in s.model.spans() {
            let (def, _, units) = placement(span.quantity);
            let id = s.instance.saturating_add(instance_offset(span.quantity));
            let object = objects
                .entry(def.id)
                .or_insert_with(|| IpsoSensor::new(def, clock, Some(state.clone())));
            if object.instances().contains(&id) {
                // The accelerometer's three axes share one instance.
                continue;
            }
            object.add_instance(InstanceSpec {
                id,
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

/// Device Error Code (3/0/11) "peripheral malfunction".
const PERIPHERAL_MALFUNCTION: i64 = 8;

/// A chip as its bus thread's reports are turned into values.
struct SinkChip {
    /// (bus, chip) across all buses.
    key: (usize, usize),
    instance: u16,
    /// (object, instance) of everything the chip feeds.
    instances: Vec<(u16, u16)>,
    /// The resources its readings go to.
    measured: Vec<Path>,
    scale: f64,
    offset: f64,
    /// Whether the chip failed at its last sample; `None` before the first.
    failing: Option<bool>,
}

/// Turns a bus thread's reports into feed values: readings (calibrated) into the measured
/// resources, faults into the Measurement Quality Indicator of the chip's instances and
/// Device Error Code 8 while any chip fails. `faults` is shared by all buses. Returns
/// false once the daemon is gone.
fn sink(
    mut chips: Vec<SinkChip>,
    faults: Arc<Mutex<BTreeSet<(usize, usize)>>>,
    tx: FeedSender,
) -> impl FnMut(Report) -> bool + Send + 'static {
    move |report: Report| {
        let (index, failed) = match &report {
            Report::Readings { chip, .. } => (*chip, false),
            Report::Failed { chip, .. } => (*chip, true),
        };
        let Some(chip) = chips.get_mut(index) else {
            return true;
        };
        let mut out = Vec::new();
        if let Report::Readings { readings, .. } = &report {
            if readings.is_empty() {
                return true;
            }
        }
        if chip.failing != Some(failed) {
            chip.failing = Some(failed);
            let quality = if failed {
                ipso::QUALITY_REJECTED
            } else {
                ipso::QUALITY_ACCEPTED
            };
            for (o, i) in &chip.instances {
                out.push(Feed::Value(
                    Path::resource(*o, *i, ipso::QUALITY_INDICATOR),
                    ResourceValue::Single(Value::Integer(quality)),
                ));
            }
            if failed {
                out.extend(chip.measured.iter().map(|p| Feed::Absent(*p)));
            }
        }
        if let Report::Readings { readings, .. } = &report {
            for r in readings {
                let (def, resource, _) = placement(r.quantity);
                let value = r.value * chip.scale + chip.offset;
                let instance = chip.instance.saturating_add(instance_offset(r.quantity));
                out.push(Feed::Value(
                    Path::resource(def.id, instance, resource),
                    ResourceValue::Single(Value::Float(value)),
                ));
            }
        }
        // The lock is held while sending so that Error Code updates from several buses
        // reach the daemon in the order the set changed.
        let Ok(mut set) = faults.lock() else {
            return false;
        };
        let before = set.is_empty();
        if failed {
            set.insert(chip.key);
        } else {
            set.remove(&chip.key);
        }
        if set.is_empty() != before {
            let code = if set.is_empty() {
                0
            } else {
                PERIPHERAL_MALFUNCTION
            };
            out.push(Feed::Value(
                Path::resource(3, 0, device::ERROR_CODE),
                ResourceValue::Multiple(BTreeMap::from([(0, Value::Integer(code))])),
            ));
        }
        out.into_iter().all(|f| tx.blocking_send(f).is_ok())
    }
}

/// A sensor as the daemon follows it.
struct Fed {
    instance: u16,
    instances: Vec<(u16, u16)>,
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
        let faults = Arc::new(Mutex::new(BTreeSet::new()));
        for (bus_index, (name, sensors)) in by_bus.into_iter().enumerate() {
            let specs: Vec<ChipSpec> = sensors
                .iter()
                .filter_map(|s| {
                    let model = s.model;
                    Some(ChipSpec {
                        model,
                        // Checked when the configuration was loaded.
                        address: model.check_address(s.address).ok()?,
                        interval: Duration::from_secs(s.interval.into()),
                    })
                })
                .collect();
            let chips: Vec<SinkChip> = sensors
                .iter()
                .enumerate()
                .map(|(index, s)| SinkChip {
                    key: (bus_index, index),
                    instance: s.instance,
                    instances: instances_fed(s.model, s.instance),
                    measured: measured_paths(s.model, s.instance),
                    scale: s.scale,
                    offset: s.offset,
                    failing: None,
                })
                .collect();
            let sink = sink(chips, faults.clone(), feed.clone());
            match sensor::spawn(name.to_string(), specs, sink) {
                Ok(handle) => buses.push(Bus {
                    handle,
                    chips: sensors
                        .iter()
                        .map(|s| Fed {
                            instance: s.instance,
                            instances: instances_fed(s.model, s.instance),
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
                    .instances
                    .iter()
                    .filter_map(|(o, i)| engine.observed_pmin(&Path::instance(*o, *i)))
                    .min();
                let wanted = match pmin {
                    Some(p) => chip.interval.min(p.max(self.floor)),
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

#[cfg(test)]
mod tests {
    use backends::sensor::{Quantity, Reading, SensorError};

    use super::*;

    fn drain(rx: &mut crate::feed::FeedReceiver) -> Vec<Feed> {
        let mut out = Vec::new();
        while let Ok(f) = rx.try_recv() {
            out.push(f);
        }
        out
    }

    fn chip(key: (usize, usize), instance: u16) -> SinkChip {
        SinkChip {
            key,
            instance,
            instances: instances_fed(Model::Tmp102, instance),
            measured: measured_paths(Model::Tmp102, instance),
            scale: 2.0,
            offset: -1.0,
            failing: None,
        }
    }

    fn quality(instance: u16, q: i64) -> Feed {
        Feed::Value(
            Path::resource(3303, instance, ipso::QUALITY_INDICATOR),
            ResourceValue::Single(Value::Integer(q)),
        )
    }

    fn error_code(code: i64) -> Feed {
        Feed::Value(
            Path::resource(3, 0, 11),
            ResourceValue::Multiple(BTreeMap::from([(0, Value::Integer(code))])),
        )
    }

    #[test]
    fn faults_show_in_quality_and_device_error_code_until_every_chip_recovers() {
        let (tx, mut rx) = crate::feed::channel();
        let faults = Arc::new(Mutex::new(BTreeSet::new()));
        let mut bus_a = sink(vec![chip((0, 0), 5)], faults.clone(), tx.clone());
        let mut bus_b = sink(vec![chip((1, 0), 6)], faults, tx);
        let t = |v| Report::Readings {
            chip: 0,
            readings: vec![Reading {
                quantity: Quantity::Temperature,
                value: v,
            }],
        };
        let failed = || Report::Failed {
            chip: 0,
            error: SensorError::Crc,
        };
        assert!(bus_a(t(10.0)));
        let value = Feed::Value(
            Path::resource(3303, 5, 5700),
            ResourceValue::Single(Value::Float(19.0)),
        );
        assert_eq!(drain(&mut rx), vec![quality(5, 4), value]);
        assert!(bus_a(failed()));
        let absent = |i| Feed::Absent(Path::resource(3303, i, 5700));
        assert_eq!(
            drain(&mut rx),
            vec![quality(5, 1), absent(5), error_code(8)]
        );
        assert!(bus_b(failed()));
        assert_eq!(drain(&mut rx), vec![quality(6, 1), absent(6)]);
        assert!(bus_a(t(10.0)));
        assert_eq!(drain(&mut rx).first(), Some(&quality(5, 4)));
        assert!(bus_b(Report::Readings {
            chip: 0,
            readings: vec![]
        }));
        assert_eq!(drain(&mut rx), vec![]);
        assert!(bus_b(t(1.0)));
        assert_eq!(drain(&mut rx).last(), Some(&error_code(0)));
    }
}
