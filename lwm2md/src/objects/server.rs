//! Object 1, LwM2M Server: one instance per server account (lifetime, binding, ...).

use crate::model::{registry, Action, DmError, Object};
use crate::objects::store::Store;
use crate::value::{ResourceValue, Value};

pub const OBJECT_ID: u16 = 1;

pub const SHORT_SERVER_ID: u16 = 0;
pub const LIFETIME: u16 = 1;
pub const DEFAULT_PMIN: u16 = 2;
pub const DEFAULT_PMAX: u16 = 3;
pub const DISABLE: u16 = 4;
pub const DISABLE_TIMEOUT: u16 = 5;
pub const NOTIFICATION_STORING: u16 = 6;
pub const BINDING: u16 = 7;
pub const REGISTRATION_UPDATE_TRIGGER: u16 = 8;
pub const BOOTSTRAP_REQUEST_TRIGGER: u16 = 9;
pub const BOOTSTRAP_ON_REGISTRATION_FAILURE: u16 = 16;
pub const COMMUNICATION_RETRY_COUNT: u16 = 17;
pub const COMMUNICATION_RETRY_TIMER: u16 = 18;
pub const SEQUENCE_DELAY_TIMER: u16 = 19;
pub const SEQUENCE_RETRY_COUNT: u16 = 20;
pub const MUTE_SEND: u16 = 23;
pub const DEFAULT_NOTIFICATION_MODE: u16 = 26;

/// UDP, with or without queue mode (`Q`; 1.0 servers write it as `UQ`).
pub fn binding_supported(binding: &str) -> bool {
    matches!(binding, "U" | "UQ")
}

pub struct Server {
    store: Store,
}

impl Server {
    pub fn new() -> Server {
        Server {
            store: Store::new(&registry::SERVER),
        }
    }

    pub fn add_account(
        &mut self,
        instance: u16,
        short_server_id: u16,
        lifetime: u32,
        binding: &str,
    ) {
        let s = &mut self.store;
        s.add_instance(instance);
        let values = [
            (SHORT_SERVER_ID, Value::Integer(short_server_id.into())),
            (LIFETIME, Value::Integer(lifetime.into())),
            (DISABLE_TIMEOUT, Value::Integer(86400)),
            (NOTIFICATION_STORING, Value::Boolean(true)),
            (BINDING, Value::String(binding.to_string())),
            (MUTE_SEND, Value::Boolean(false)),
        ];
        for (r, v) in values {
            let _ = s.set(instance, r, ResourceValue::Single(v));
        }
    }

    fn short_server_id(&self, instance: u16) -> Result<u16, DmError> {
        match self.store.get(instance, SHORT_SERVER_ID) {
            Some(ResourceValue::Single(Value::Integer(n))) => {
                u16::try_from(*n).map_err(|_| DmError::Internal("bad short server id".into()))
            }
            _ => Err(DmError::NotFound),
        }
    }
}

impl Default for Server {
    fn default() -> Self {
        Server::new()
    }
}

impl Object for Server {
    crate::objects::store::reads_from_store!();

    fn has_resource(&self, instance: u16, resource: u16) -> bool {
        match resource {
            DISABLE | REGISTRATION_UPDATE_TRIGGER | BOOTSTRAP_REQUEST_TRIGGER => {
                self.store.has_instance(instance)
            }
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
        if by_server {
            match (resource, &value) {
                (LIFETIME, ResourceValue::Single(Value::Integer(n)))
                    if *n < 1 || *n > i64::from(u32::MAX) =>
                {
                    return Err(DmError::BadRequest(format!("lifetime {n} out of range")));
                }
                (BINDING, ResourceValue::Single(Value::String(b))) if !binding_supported(b) => {
                    return Err(DmError::BadRequest(format!("binding {b:?} not supported")));
                }
                _ => {}
            }
        }
        self.store.set(instance, resource, value)?;
        Ok(Vec::new())
    }

    fn execute(
        &mut self,
        instance: u16,
        resource: u16,
        _args: &str,
    ) -> Result<Vec<Action>, DmError> {
        let short_server_id = self.short_server_id(instance)?;
        match resource {
            REGISTRATION_UPDATE_TRIGGER => Ok(vec![Action::UpdateRegistration { short_server_id }]),
            DISABLE => Ok(vec![Action::DisableServer { short_server_id }]),
            BOOTSTRAP_REQUEST_TRIGGER => Ok(vec![Action::RequestBootstrap]),
            _ => Err(DmError::NotFound),
        }
    }

    fn create(&mut self, instance: u16) -> Result<(), DmError> {
        self.store.add_instance(instance);
        Ok(())
    }

    fn delete(&mut self, instance: u16) -> Result<(), DmError> {
        self.store.remove_instance(instance)
    }
}
