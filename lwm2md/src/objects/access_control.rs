//! Object 2, LwM2M Access Control: which server may do what on each object instance
//! (Core TS §7.3.3, object definition in Appendix E.3). One instance per protected object
//! instance, or per object (Object Instance ID 65535) for the Create right.

use std::collections::BTreeMap;

use crate::model::{Action, DmError, Object, ObjectDef, Operations, ResourceDef};
use crate::objects::store::Store;
use crate::value::{ResourceType, ResourceValue, Value};

pub const OBJECT_ID: u16 = 0;
pub const INSTANCE_ID: u16 = 1;
pub const ACL: u16 = 2;
pub const OWNER: u16 = 3;

/// Object Instance ID of the instance that grants Create on a whole object.
pub const OBJECT_LEVEL: u16 = 65535;
/// The ACL entry that applies to servers without their own (resource instance 0).
pub const DEFAULT_ENTRY: u16 = 0;

/// ACL bits.
pub const READ: u8 = 1;
pub const WRITE: u8 = 2;
pub const EXECUTE: u8 = 4;
pub const DELETE: u8 = 8;
pub const CREATE: u8 = 16;

// `DEF`, generated at build time from the OMA registry's 2.xml by `build.rs`.
include!(concat!(env!("OUT_DIR"), "/access_control.rs"));

pub struct AccessControl {
    store: Store,
}

impl Default for AccessControl {
    fn default() -> Self {
        AccessControl::new()
    }
}

impl AccessControl {
    pub fn new() -> AccessControl {
        AccessControl {
            store: Store::new(&DEF),
        }
    }
}

fn int(obj: &dyn Object, instance: u16, resource: u16) -> Option<i64> {
    match obj.read(instance, resource)? {
        ResourceValue::Single(Value::Integer(n)) => Some(n),
        ResourceValue::Single(Value::Unsigned(n)) => i64::try_from(n).ok(),
        _ => None,
    }
}

/// The Access Control instance that governs `/object/instance`.
pub fn find(acl: &dyn Object, object: u16, instance: u16) -> Option<u16> {
    acl.instances().into_iter().find(|&i| {
        int(acl, i, OBJECT_ID) == Some(object.into())
            && int(acl, i, INSTANCE_ID) == Some(instance.into())
    })
}

/// The rights of server `ssid` under one Access Control instance: its own ACL entry,
/// else full rights (Create excepted) when it owns the instance, else the default
/// entry, else none.
pub fn rights(acl: &dyn Object, instance: u16, ssid: u16) -> u8 {
    let entries = match acl.read(instance, ACL) {
        Some(ResourceValue::Multiple(map)) => map,
        _ => BTreeMap::new(),
    };
    let bits = |v: &Value| match v {
        Value::Integer(n) => u8::try_from(*n & 31).unwrap_or(0),
        Value::Unsigned(n) => u8::try_from(*n & 31).unwrap_or(0),
        _ => 0,
    };
    if let Some(v) = entries.get(&ssid) {
        return bits(v);
    }
    if int(acl, instance, OWNER) == Some(ssid.into()) {
        return READ | WRITE | EXECUTE | DELETE;
    }
    entries.get(&DEFAULT_ENTRY).map_or(0, bits)
}

impl Object for AccessControl {
    fn def(&self) -> &'static ObjectDef {
        &DEF
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
    fn create(&mut self, instance: u16) -> Result<(), DmError> {
        self.store.add_instance(instance);
        Ok(())
    }
    fn delete(&mut self, instance: u16) -> Result<(), DmError> {
        self.store.remove_instance(instance)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn instance(
        acl: &mut AccessControl,
        i: u16,
        o: u16,
        oi: u16,
        owner: u16,
        entries: &[(u16, i64)],
    ) {
        acl.create(i).unwrap();
        let set = |acl: &mut AccessControl, r, v| {
            acl.write(i, r, ResourceValue::Single(Value::Integer(v)), false)
                .unwrap()
        };
        set(acl, OBJECT_ID, o.into());
        set(acl, INSTANCE_ID, oi.into());
        set(acl, OWNER, owner.into());
        let map = entries
            .iter()
            .map(|(k, v)| (*k, Value::Integer(*v)))
            .collect();
        acl.write(i, ACL, ResourceValue::Multiple(map), false)
            .unwrap();
    }

    #[test]
    fn own_entry_then_owner_then_default() {
        // Core TS Appendix E example: /3/0 owned by server 101, 102 may read, others
        // execute by default.
        let mut acl = AccessControl::new();
        instance(&mut acl, 0, 3, 0, 101, &[(102, 1), (0, 4)]);
        assert_eq!(find(&acl, 3, 0), Some(0));
        assert_eq!(find(&acl, 3, 1), None);
        assert_eq!(rights(&acl, 0, 102), READ);
        assert_eq!(rights(&acl, 0, 101), READ | WRITE | EXECUTE | DELETE);
        assert_eq!(rights(&acl, 0, 7), EXECUTE);
        instance(&mut acl, 1, 3, 1, 101, &[]);
        assert_eq!(rights(&acl, 1, 7), 0);
    }
}
