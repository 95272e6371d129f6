//! Object 10, LwM2M Cellular Connectivity: which APN profiles (object 11) have an active
//! data connection. ModemManager exposes no PSM or eDRX timers, so those resources stay
//! absent and servers cannot set them.

use crate::model::registry_connectivity::CELLULAR_CONNECTIVITY;
use crate::model::{Action, DmError, Object, ObjectDef};
use crate::objects::store::Store;
use crate::value::ResourceValue;

pub const OBJECT_ID: u16 = 10;
pub const ACTIVATED_PROFILE_NAMES: u16 = 11;

pub struct CellularConnectivity {
    store: Store,
}

impl CellularConnectivity {
    pub fn new() -> CellularConnectivity {
        let mut store = Store::new(&CELLULAR_CONNECTIVITY);
        store.add_instance(0);
        CellularConnectivity { store }
    }
}

impl Default for CellularConnectivity {
    fn default() -> Self {
        CellularConnectivity::new()
    }
}

impl Object for CellularConnectivity {
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
        by_server: bool,
    ) -> Result<Vec<Action>, DmError> {
        if by_server {
            return Err(DmError::MethodNotAllowed);
        }
        self.store.set(instance, resource, value)?;
        Ok(Vec::new())
    }
    fn remove_value(&mut self, instance: u16, resource: u16) -> Result<(), DmError> {
        self.store.remove(instance, resource);
        Ok(())
    }
}
