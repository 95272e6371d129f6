//! Object 0, LwM2M Security: server URIs and credentials. Only the bootstrap server may
//! see it; the engine refuses every DM request on it.

use crate::model::{registry, Action, DmError, Object, ObjectDef};
use crate::objects::store::Store;
use crate::value::{ResourceValue, Value};

pub struct Security {
    store: Store,
}

impl Security {
    pub fn new() -> Security {
        Security {
            store: Store::new(&registry::SECURITY),
        }
    }

    /// Adds a NoSec account for a server (factory bootstrap from the configuration).
    pub fn add_nosec_account(&mut self, instance: u16, uri: &str, short_server_id: u16) {
        let s = &mut self.store;
        s.add_instance(instance);
        let values = [
            (0, Value::String(uri.to_string())),
            (1, Value::Boolean(false)),
            (2, Value::Integer(3)), // NoSec
            (3, Value::Opaque(Vec::new())),
            (4, Value::Opaque(Vec::new())),
            (5, Value::Opaque(Vec::new())),
            (10, Value::Integer(short_server_id.into())),
        ];
        for (r, v) in values {
            // The instance was added above, so this cannot fail.
            let _ = s.set(instance, r, ResourceValue::Single(v));
        }
    }
}

impl Default for Security {
    fn default() -> Self {
        Security::new()
    }
}

impl Object for Security {
    fn def(&self) -> &'static ObjectDef {
        self.store.def()
    }
    fn instances(&self) -> Vec<u16> {
        self.store.instance_ids()
    }
    fn read(&self, instance: u16, resource: u16) -> Option<ResourceValue> {
        self.store.get(instance, resource).cloned()
    }
    fn write(
        &mut self,
        instance: u16,
        resource: u16,
        value: ResourceValue,
        _by_server: bool,
    ) -> Result<Vec<Action>, DmError> {
        self.store.set(instance, resource, value)?;
        Ok(Vec::new())
    }
}
