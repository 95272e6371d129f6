//! A single-instance object whose values only the device reports: backends set them
//! through the feed, servers read and observe them but never write them. Objects 4
//! (Connectivity Monitoring) and 6 (Location) are such.

use crate::model::{Action, DmError, Object, ObjectDef};
use crate::objects::store::Store;
use crate::value::ResourceValue;

pub struct Reported {
    store: Store,
}

impl Reported {
    /// The object with its instance 0; resources appear as they are first reported.
    pub fn new(def: &'static ObjectDef) -> Reported {
        let mut store = Store::new(def);
        store.add_instance(0);
        Reported { store }
    }
}

impl Object for Reported {
    crate::objects::store::reads_from_store!();
    fn write(
        &mut self,
        instance: u16,
        resource: u16,
        value: ResourceValue,
        by_server: bool,
    ) -> Result<Vec<Action>, DmError> {
        // Writable resources of these objects are configuration the device owns; the
        // engine refuses writes to read-only ones before they get here.
        if by_server {
            return Err(DmError::MethodNotAllowed);
        }
        self.store.set(instance, resource, value)?;
        Ok(Vec::new())
    }
    fn remove_value(&mut self, instance: u16, resource: u16) -> Result<(), DmError> {
        if !self.store.has_instance(instance) {
            return Err(DmError::NotFound);
        }
        self.store.remove(instance, resource);
        Ok(())
    }
}
