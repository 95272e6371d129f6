//! The IPSO sensor objects (Temperature 3303, Humidity 3304, Barometer 3315, Illuminance
//! 3301, Accelerometer 3313, Voltage 3316, Current 3317, Power 3328, Concentration 3325).
//!
//! Readings come from the sensor backend through `Engine::set_value` on the measured
//! resources; the object keeps min/max and the timestamp around them. The Application
//! Type written by a server survives restarts in the state directory.

pub mod defs;

use std::collections::BTreeMap;

use crate::model::{Action, DmError, Object, ObjectDef};
use crate::objects::device::Clock;
use crate::state::StateDir;
use crate::value::{ResourceValue, Value};

pub const TIMESTAMP: u16 = 5518;
pub const MIN_MEASURED: u16 = 5601;
pub const MAX_MEASURED: u16 = 5602;
pub const MIN_RANGE: u16 = 5603;
pub const MAX_RANGE: u16 = 5604;
pub const RESET_MIN_MAX: u16 = 5605;
pub const SENSOR_VALUE: u16 = 5700;
pub const SENSOR_UNITS: u16 = 5701;
pub const X_VALUE: u16 = 5702;
pub const Y_VALUE: u16 = 5703;
pub const Z_VALUE: u16 = 5704;
pub const APPLICATION_TYPE: u16 = 5750;
pub const QUALITY_INDICATOR: u16 = 6042;

/// Measurement Quality Indicator values (6042).
pub const QUALITY_REJECTED: i64 = 1;
pub const QUALITY_ACCEPTED: i64 = 4;

/// Longest Application Type accepted from a server.
const MAX_APPLICATION_TYPE: usize = 255;

/// The definition of an IPSO sensor object lwm2md implements.
pub fn def(object: u16) -> Option<&'static ObjectDef> {
    use defs::*;
    [
        &ILLUMINANCE,
        &TEMPERATURE,
        &HUMIDITY,
        &ACCELEROMETER,
        &BAROMETER,
        &VOLTAGE,
        &CURRENT,
        &CONCENTRATION,
        &POWER,
    ]
    .into_iter()
    .find(|d| d.id == object)
}

/// What configuration says about an instance.
#[derive(Debug, Clone, PartialEq)]
pub struct InstanceSpec {
    pub id: u16,
    /// SenML unit of the measured values (RFC 8428 registry).
    pub units: &'static str,
    /// The chip's measurement range from its datasheet.
    pub range: (f64, f64),
    /// The configured Application Type, used until a server writes another.
    pub application_type: Option<String>,
}

#[derive(Debug)]
struct Instance {
    units: &'static str,
    range: (f64, f64),
    application_type: String,
    /// The measured resources (5700, or 5702..5704) and their latest values.
    values: BTreeMap<u16, f64>,
    min: Option<f64>,
    max: Option<f64>,
    /// When the latest value was measured (Unix seconds).
    timestamp: Option<i64>,
    /// The Measurement Quality Indicator the backend reported last.
    quality: Option<i64>,
}

pub struct IpsoSensor {
    def: &'static ObjectDef,
    instances: BTreeMap<u16, Instance>,
    clock: Clock,
    state: Option<StateDir>,
}

impl IpsoSensor {
    /// `state`: where server-written Application Types are kept; `None` keeps them in
    /// memory only.
    pub fn new(def: &'static ObjectDef, clock: Clock, state: Option<StateDir>) -> IpsoSensor {
        IpsoSensor {
            def,
            instances: BTreeMap::new(),
            clock,
            state,
        }
    }

    /// Adds an instance; an Application Type a server wrote earlier wins over the
    /// configured one.
    pub fn add_instance(&mut self, spec: InstanceSpec) {
        let stored = self.state.as_ref().and_then(|s| {
            match s.read(&application_type_file(self.def.id, spec.id)) {
                Ok(data) => data.and_then(|d| String::from_utf8(d).ok()),
                Err(e) => {
                    tracing::warn!(
                        "reading the stored application type of /{}/{}: {e}",
                        self.def.id,
                        spec.id
                    );
                    None
                }
            }
        });
        self.instances.insert(
            spec.id,
            Instance {
                units: spec.units,
                range: spec.range,
                application_type: stored.or(spec.application_type).unwrap_or_default(),
                values: BTreeMap::new(),
                min: None,
                max: None,
                timestamp: None,
                quality: None,
            },
        );
    }

    fn has(&self, resource: u16) -> bool {
        self.def.resource(resource).is_some()
    }

    fn is_measured(&self, resource: u16) -> bool {
        matches!(resource, SENSOR_VALUE | X_VALUE | Y_VALUE | Z_VALUE) && self.has(resource)
    }
}

fn application_type_file(object: u16, instance: u16) -> String {
    format!("ipso-{object}-{instance}-application-type")
}

fn float(v: f64) -> Option<ResourceValue> {
    Some(ResourceValue::Single(Value::Float(v)))
}

impl Object for IpsoSensor {
    fn def(&self) -> &'static ObjectDef {
        self.def
    }

    fn instances(&self) -> Vec<u16> {
        self.instances.keys().copied().collect()
    }

    fn read(&self, instance: u16, resource: u16) -> Option<ResourceValue> {
        let i = self.instances.get(&instance)?;
        if !self.has(resource) {
            return None;
        }
        // A failing chip's last values are not presented as current: they read as absent
        // until it answers again.
        let rejected = i.quality == Some(QUALITY_REJECTED);
        match resource {
            SENSOR_VALUE | X_VALUE | Y_VALUE | Z_VALUE if rejected => None,
            SENSOR_VALUE | X_VALUE | Y_VALUE | Z_VALUE => {
                i.values.get(&resource).copied().and_then(float)
            }
            MIN_MEASURED => i.min.and_then(float),
            MAX_MEASURED => i.max.and_then(float),
            MIN_RANGE => float(i.range.0),
            MAX_RANGE => float(i.range.1),
            SENSOR_UNITS => Some(ResourceValue::Single(Value::String(i.units.into()))),
            APPLICATION_TYPE => Some(ResourceValue::Single(Value::String(
                i.application_type.clone(),
            ))),
            TIMESTAMP => i.timestamp.map(|t| ResourceValue::Single(Value::Time(t))),
            QUALITY_INDICATOR => i.quality.map(|q| ResourceValue::Single(Value::Integer(q))),
            _ => None,
        }
    }

    /// A failing chip's measured values are dropped, so that their observers hear that
    /// they are gone rather than nothing.
    fn remove_value(&mut self, instance: u16, resource: u16) -> Result<(), DmError> {
        if !self.is_measured(resource) {
            return Err(DmError::MethodNotAllowed);
        }
        let i = self.instances.get_mut(&instance).ok_or(DmError::NotFound)?;
        i.values.remove(&resource);
        Ok(())
    }

    fn has_resource(&self, instance: u16, resource: u16) -> bool {
        if resource == RESET_MIN_MAX {
            return self.has(resource) && self.instances.contains_key(&instance);
        }
        self.read(instance, resource).is_some()
    }

    fn write(
        &mut self,
        instance: u16,
        resource: u16,
        value: ResourceValue,
        by_server: bool,
    ) -> Result<Vec<Action>, DmError> {
        let measured = self.is_measured(resource);
        let has_min_max = self.has(MIN_MEASURED);
        let now = (self.clock)();
        let object = self.def.id;
        let i = self.instances.get_mut(&instance).ok_or(DmError::NotFound)?;
        match (resource, value) {
            (_, ResourceValue::Single(Value::Float(v))) if measured && !by_server => {
                i.values.insert(resource, v);
                i.timestamp = Some(now);
                if has_min_max && resource == SENSOR_VALUE {
                    i.min = Some(i.min.map_or(v, |m| m.min(v)));
                    i.max = Some(i.max.map_or(v, |m| m.max(v)));
                }
                Ok(Vec::new())
            }
            (QUALITY_INDICATOR, ResourceValue::Single(Value::Integer(q))) if !by_server => {
                i.quality = Some(q);
                Ok(Vec::new())
            }
            (APPLICATION_TYPE, ResourceValue::Single(Value::String(s))) => {
                if s.len() > MAX_APPLICATION_TYPE {
                    return Err(DmError::BadRequest(format!(
                        "an application type is at most {MAX_APPLICATION_TYPE} bytes"
                    )));
                }
                if by_server {
                    if let Some(state) = &self.state {
                        state
                            .write(&application_type_file(object, instance), s.as_bytes())
                            .map_err(|e| {
                                DmError::Internal(format!("storing the application type: {e}"))
                            })?;
                    }
                }
                i.application_type = s;
                Ok(Vec::new())
            }
            _ => Err(DmError::MethodNotAllowed),
        }
    }

    fn execute(
        &mut self,
        instance: u16,
        resource: u16,
        _args: &str,
    ) -> Result<Vec<Action>, DmError> {
        if resource != RESET_MIN_MAX || !self.has(resource) {
            return Err(DmError::MethodNotAllowed);
        }
        let i = self.instances.get_mut(&instance).ok_or(DmError::NotFound)?;
        // IPSO: the min and max restart from the current value.
        let current = i.values.get(&SENSOR_VALUE).copied();
        i.min = current;
        i.max = current;
        Ok(Vec::new())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clock() -> i64 {
        1_700_000_000
    }

    fn sensor(state: Option<StateDir>) -> IpsoSensor {
        let mut s = IpsoSensor::new(&defs::TEMPERATURE, clock, state);
        s.add_instance(InstanceSpec {
            id: 4,
            units: "Cel",
            range: (-40.0, 85.0),
            application_type: Some("outdoor".into()),
        });
        s
    }

    fn reading(s: &mut IpsoSensor, v: f64) {
        s.write(
            4,
            SENSOR_VALUE,
            ResourceValue::Single(Value::Float(v)),
            false,
        )
        .unwrap();
    }

    fn get(s: &IpsoSensor, r: u16) -> Option<Value> {
        match s.read(4, r)? {
            ResourceValue::Single(v) => Some(v),
            ResourceValue::Multiple(_) => None,
        }
    }

    #[test]
    fn readings_track_min_max_and_reset_restarts_them() {
        let mut s = sensor(None);
        assert_eq!(get(&s, SENSOR_VALUE), None);
        assert_eq!(get(&s, SENSOR_UNITS), Some(Value::String("Cel".into())));
        assert_eq!(get(&s, MIN_RANGE), Some(Value::Float(-40.0)));
        assert_eq!(get(&s, MAX_RANGE), Some(Value::Float(85.0)));
        for v in [21.0, 19.5, 23.25, 22.0] {
            reading(&mut s, v);
        }
        assert_eq!(get(&s, SENSOR_VALUE), Some(Value::Float(22.0)));
        assert_eq!(get(&s, MIN_MEASURED), Some(Value::Float(19.5)));
        assert_eq!(get(&s, MAX_MEASURED), Some(Value::Float(23.25)));
        assert_eq!(get(&s, TIMESTAMP), Some(Value::Time(1_700_000_000)));
        assert!(s.has_resource(4, RESET_MIN_MAX));
        s.execute(4, RESET_MIN_MAX, "").unwrap();
        assert_eq!(get(&s, MIN_MEASURED), Some(Value::Float(22.0)));
        assert_eq!(get(&s, MAX_MEASURED), Some(Value::Float(22.0)));
        reading(&mut s, 24.0);
        assert_eq!(get(&s, MIN_MEASURED), Some(Value::Float(22.0)));
        assert_eq!(get(&s, MAX_MEASURED), Some(Value::Float(24.0)));
        // A server cannot write a measurement.
        assert!(s
            .write(
                4,
                SENSOR_VALUE,
                ResourceValue::Single(Value::Float(1.0)),
                true
            )
            .is_err());
    }

    #[test]
    fn a_rejected_measurement_is_not_presented_as_current() {
        let mut s = sensor(None);
        reading(&mut s, 21.0);
        let quality = |q| ResourceValue::Single(Value::Integer(q));
        s.write(4, QUALITY_INDICATOR, quality(QUALITY_REJECTED), false)
            .unwrap();
        assert_eq!(get(&s, SENSOR_VALUE), None);
        assert_eq!(get(&s, QUALITY_INDICATOR), Some(Value::Integer(1)));
        // What is known about the past stays readable.
        assert_eq!(get(&s, MAX_MEASURED), Some(Value::Float(21.0)));
        s.write(4, QUALITY_INDICATOR, quality(QUALITY_ACCEPTED), false)
            .unwrap();
        reading(&mut s, 22.0);
        assert_eq!(get(&s, SENSOR_VALUE), Some(Value::Float(22.0)));
        assert!(s.write(4, QUALITY_INDICATOR, quality(4), true).is_err());
    }

    #[test]
    fn application_type_written_by_a_server_survives_a_restart() {
        let dir = std::env::temp_dir().join(format!("lwm2md-ipso-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let mut s = sensor(Some(StateDir::new(&dir)));
        assert_eq!(
            get(&s, APPLICATION_TYPE),
            Some(Value::String("outdoor".into()))
        );
        s.write(
            4,
            APPLICATION_TYPE,
            ResourceValue::Single(Value::String("greenhouse".into())),
            true,
        )
        .unwrap();
        let s = sensor(Some(StateDir::new(&dir)));
        assert_eq!(
            get(&s, APPLICATION_TYPE),
            Some(Value::String("greenhouse".into()))
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn accelerometer_has_three_axes_and_no_min_max() {
        let mut s = IpsoSensor::new(&defs::ACCELEROMETER, clock, None);
        s.add_instance(InstanceSpec {
            id: 0,
            units: "m/s2",
            range: (-19.6133, 19.6133),
            application_type: None,
        });
        for (r, v) in [(X_VALUE, 0.1), (Y_VALUE, -0.2), (Z_VALUE, 9.81)] {
            s.write(0, r, ResourceValue::Single(Value::Float(v)), false)
                .unwrap();
        }
        assert_eq!(
            s.read(0, Z_VALUE),
            Some(ResourceValue::Single(Value::Float(9.81)))
        );
        assert_eq!(s.read(0, MIN_MEASURED), None);
        assert!(!s.has_resource(0, RESET_MIN_MAX));
        assert!(s.execute(0, RESET_MIN_MAX, "").is_err());
    }

    #[test]
    fn every_object_is_defined() {
        for id in [3301, 3303, 3304, 3313, 3315, 3316, 3317, 3325, 3328] {
            let d = def(id).unwrap();
            assert_eq!(d.id, id);
            assert!(d.resource(APPLICATION_TYPE).is_some());
            assert!(d.resource(TIMESTAMP).is_some());
        }
    }
}
