//! Object 3, Device. Facts come from the host backend through `Engine::set_value`;
//! Execute and Write on the clock, time zone, reboot and factory reset become actions.

use std::collections::BTreeMap;

use crate::model::{registry, Action, DmError, Object, ObjectDef};
use crate::objects::store::Store;
use crate::value::{ResourceValue, Value};

pub const MANUFACTURER: u16 = 0;
pub const MODEL: u16 = 1;
pub const SERIAL: u16 = 2;
pub const FIRMWARE_VERSION: u16 = 3;
pub const REBOOT: u16 = 4;
pub const FACTORY_RESET: u16 = 5;
pub const MEMORY_FREE: u16 = 10;
pub const ERROR_CODE: u16 = 11;
pub const RESET_ERROR_CODE: u16 = 12;
pub const CURRENT_TIME: u16 = 13;
pub const UTC_OFFSET: u16 = 14;
pub const TIMEZONE: u16 = 15;
pub const SUPPORTED_BINDING: u16 = 16;
pub const DEVICE_TYPE: u16 = 17;
pub const HARDWARE_VERSION: u16 = 18;
pub const SOFTWARE_VERSION: u16 = 19;
pub const MEMORY_TOTAL: u16 = 21;

/// Reads the wall clock in Unix seconds. A parameter so that tests stay deterministic.
pub type Clock = fn() -> i64;

pub fn system_clock() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

pub struct Device {
    store: Store,
    clock: Clock,
    factory_reset: bool,
}

impl Device {
    /// `factory_reset`: whether a factory reset command is configured; without one,
    /// Execute /3/0/5 is refused rather than pretending to succeed.
    pub fn new(clock: Clock, factory_reset: bool) -> Device {
        let mut store = Store::new(&registry::DEVICE);
        store.add_instance(0);
        let mut errors = BTreeMap::new();
        errors.insert(0, Value::Integer(0)); // 0 = no error
        let _ = store.set(0, ERROR_CODE, ResourceValue::Multiple(errors));
        let _ = store.set(
            0,
            SUPPORTED_BINDING,
            ResourceValue::Single(Value::String("U".into())),
        );
        Device {
            store,
            clock,
            factory_reset,
        }
    }
}

impl Object for Device {
    fn def(&self) -> &'static ObjectDef {
        self.store.def()
    }
    fn instances(&self) -> Vec<u16> {
        self.store.instance_ids()
    }

    fn read(&self, instance: u16, resource: u16) -> Option<ResourceValue> {
        if resource == CURRENT_TIME && self.store.has_instance(instance) {
            return Some(ResourceValue::Single(Value::Time((self.clock)())));
        }
        self.store.get(instance, resource).cloned()
    }

    fn has_resource(&self, instance: u16, resource: u16) -> bool {
        match resource {
            REBOOT | RESET_ERROR_CODE | CURRENT_TIME => self.store.has_instance(instance),
            FACTORY_RESET => self.factory_reset && self.store.has_instance(instance),
            _ => self.store.get(instance, resource).is_some(),
        }
    }

    fn write(
        &mut self,
        instance: u16,
        resource: u16,
        value: ResourceValue,
        by_server: bool,
    ) -> Result<Vec<Action>, DmError> {
        let action = match (by_server, resource, &value) {
            (true, CURRENT_TIME, ResourceValue::Single(Value::Time(t))) => {
                // The clock is the system's; nothing to store.
                return Ok(vec![Action::SetTime(*t)]);
            }
            (true, TIMEZONE, ResourceValue::Single(Value::String(tz))) => {
                if tz.is_empty()
                    || tz.len() > 64
                    || tz.contains("..")
                    || !tz
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || "/_+-".contains(c))
                {
                    return Err(DmError::BadRequest(format!(
                        "{tz:?} is not a time zone name"
                    )));
                }
                Some(Action::SetTimezone(tz.clone()))
            }
            _ => None,
        };
        self.store.set(instance, resource, value)?;
        Ok(action.into_iter().collect())
    }

    fn execute(
        &mut self,
        instance: u16,
        resource: u16,
        _args: &str,
    ) -> Result<Vec<Action>, DmError> {
        if !self.store.has_instance(instance) {
            return Err(DmError::NotFound);
        }
        match resource {
            REBOOT => Ok(vec![Action::Reboot]),
            FACTORY_RESET if self.factory_reset => Ok(vec![Action::FactoryReset]),
            FACTORY_RESET => Err(DmError::MethodNotAllowed),
            RESET_ERROR_CODE => {
                let mut errors = BTreeMap::new();
                errors.insert(0, Value::Integer(0));
                self.store
                    .set(instance, ERROR_CODE, ResourceValue::Multiple(errors))?;
                Ok(Vec::new())
            }
            _ => Err(DmError::NotFound),
        }
    }
}
