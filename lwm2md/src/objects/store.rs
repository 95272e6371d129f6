//! Instances and resource values of one object, kept in memory.

use std::collections::BTreeMap;

use crate::model::{DmError, ObjectDef};
use crate::value::ResourceValue;

/// The values of an object's instances. Objects that are mostly data (Security,
/// Server, Device) keep their state here and add behaviour around it.
#[derive(Debug)]
pub struct Store {
    def: &'static ObjectDef,
    instances: BTreeMap<u16, BTreeMap<u16, ResourceValue>>,
}

impl Store {
    pub fn new(def: &'static ObjectDef) -> Store {
        Store {
            def,
            instances: BTreeMap::new(),
        }
    }

    pub fn def(&self) -> &'static ObjectDef {
        self.def
    }

    pub fn instance_ids(&self) -> Vec<u16> {
        self.instances.keys().copied().collect()
    }

    pub fn has_instance(&self, instance: u16) -> bool {
        self.instances.contains_key(&instance)
    }

    pub fn add_instance(&mut self, instance: u16) {
        self.instances.entry(instance).or_default();
    }

    pub fn remove_instance(&mut self, instance: u16) -> Result<(), DmError> {
        self.instances
            .remove(&instance)
            .map(|_| ())
            .ok_or(DmError::NotFound)
    }

    pub fn get(&self, instance: u16, resource: u16) -> Option<&ResourceValue> {
        self.instances.get(&instance)?.get(&resource)
    }

    /// Sets a value in an existing instance.
    pub fn set(
        &mut self,
        instance: u16,
        resource: u16,
        value: ResourceValue,
    ) -> Result<(), DmError> {
        let inst = self.instances.get_mut(&instance).ok_or(DmError::NotFound)?;
        inst.insert(resource, value);
        Ok(())
    }

    /// Removes a value; `false` when there was none.
    pub fn remove(&mut self, instance: u16, resource: u16) -> bool {
        self.instances
            .get_mut(&instance)
            .and_then(|inst| inst.remove(&resource))
            .is_some()
    }
}

/// The `Object` methods of an object whose definition, instances and values are those of
/// its `store` field: what most objects answer before their own rules for writes and
/// actions.
macro_rules! reads_from_store {
    () => {
        fn def(&self) -> &'static $crate::model::ObjectDef {
            self.store.def()
        }
        fn instances(&self) -> Vec<u16> {
            self.store.instance_ids()
        }
        fn read(&self, instance: u16, resource: u16) -> Option<$crate::value::ResourceValue> {
            self.store.get(instance, resource).cloned()
        }
    };
}
pub(crate) use reads_from_store;
