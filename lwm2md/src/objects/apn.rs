//! Object 11, APN Connection Profile. Servers create and write profiles; writing an
//! enabled profile (or enabling one) asks the modem backend to connect with it, and the
//! backend reports the outcome and the connection's figures back into the instance.
//! The Secret is write-only: it is kept for the connection and never read back.

use std::collections::BTreeMap;

use backends::modem::{ApnAuth, ApnSettings};

use crate::model::registry_connectivity::APN_CONNECTION_PROFILE;
use crate::model::{Action, ConnectivityAction, DmError, Object, ObjectDef};
use crate::objects::store::Store;
use crate::value::{ResourceValue, Value};

pub const OBJECT_ID: u16 = 11;
pub const PROFILE_NAME: u16 = 0;
pub const APN: u16 = 1;
pub const AUTO_SELECT: u16 = 2;
pub const ENABLE_STATUS: u16 = 3;
pub const AUTHENTICATION_TYPE: u16 = 4;
pub const USER_NAME: u16 = 5;
pub const SECRET: u16 = 6;
pub const ESTABLISHMENT_TIME: u16 = 9;
pub const ESTABLISHMENT_RESULT: u16 = 10;
pub const REJECT_CAUSE: u16 = 11;
pub const TOTAL_BYTES_SENT: u16 = 13;
pub const TOTAL_BYTES_RECEIVED: u16 = 14;
pub const IP_ADDRESS: u16 = 15;
pub const GATEWAY: u16 = 18;
pub const PRIMARY_DNS: u16 = 19;
pub const SECONDARY_DNS: u16 = 20;

/// Authentication Type codes of resource 4.
pub fn auth_code(auth: ApnAuth) -> i64 {
    match auth {
        ApnAuth::Pap => 0,
        ApnAuth::Chap => 1,
        ApnAuth::PapOrChap => 2,
        ApnAuth::None => 3,
    }
}

pub struct ApnProfiles {
    store: Store,
    secrets: BTreeMap<u16, String>,
}

impl ApnProfiles {
    pub fn new() -> ApnProfiles {
        ApnProfiles {
            store: Store::new(&APN_CONNECTION_PROFILE),
            secrets: BTreeMap::new(),
        }
    }

    fn string(&self, instance: u16, resource: u16) -> Option<String> {
        match self.store.get(instance, resource) {
            Some(ResourceValue::Single(Value::String(s))) => Some(s.clone()),
            _ => None,
        }
    }

    fn flag(&self, instance: u16, resource: u16) -> bool {
        matches!(
            self.store.get(instance, resource),
            Some(ResourceValue::Single(Value::Boolean(true)))
        )
    }

    /// What the modem is to connect with, from the profile's resources.
    fn settings(&self, instance: u16) -> ApnSettings {
        let auth = match self.store.get(instance, AUTHENTICATION_TYPE) {
            Some(ResourceValue::Single(Value::Integer(0))) => ApnAuth::Pap,
            Some(ResourceValue::Single(Value::Integer(1))) => ApnAuth::Chap,
            Some(ResourceValue::Single(Value::Integer(2))) => ApnAuth::PapOrChap,
            _ => ApnAuth::None,
        };
        let apn = if self.flag(instance, AUTO_SELECT) {
            String::new()
        } else {
            self.string(instance, APN).unwrap_or_default()
        };
        ApnSettings {
            apn,
            auth,
            user: self.string(instance, USER_NAME).filter(|u| !u.is_empty()),
            password: self.secrets.get(&instance).cloned(),
        }
    }
}

impl Default for ApnProfiles {
    fn default() -> Self {
        ApnProfiles::new()
    }
}

impl Object for ApnProfiles {
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
        if !by_server {
            // The backend reports a connection the modem made on its own: its profile
            // appears.
            self.store.add_instance(instance);
            return self
                .store
                .set(instance, resource, value)
                .map(|()| Vec::new());
        }
        match (resource, &value) {
            (SECRET, ResourceValue::Single(Value::String(secret))) => {
                if !self.store.has_instance(instance) {
                    return Err(DmError::NotFound);
                }
                self.secrets.insert(instance, secret.clone());
            }
            (AUTHENTICATION_TYPE, ResourceValue::Single(Value::Integer(n)))
                if !(0..=3).contains(n) =>
            {
                return Err(DmError::BadRequest(format!(
                    "authentication type {n} is not 0 (PAP), 1 (CHAP), 2 (PAP or CHAP) or 3 (none)"
                )));
            }
            (APN | USER_NAME | PROFILE_NAME, ResourceValue::Single(Value::String(s)))
                if s.len() > 100 || s.chars().any(char::is_control) =>
            {
                return Err(DmError::BadRequest(format!("{s:?} is not a valid value")));
            }
            _ => self.store.set(instance, resource, value.clone())?,
        }
        let was_enabled_write = resource == ENABLE_STATUS;
        let connection_setting = matches!(
            resource,
            APN | AUTO_SELECT | ENABLE_STATUS | AUTHENTICATION_TYPE | USER_NAME | SECRET
        );
        if !connection_setting {
            return Ok(Vec::new());
        }
        let action = if self.flag(instance, ENABLE_STATUS) {
            ConnectivityAction::Connect {
                profile: instance,
                settings: self.settings(instance),
            }
        } else if was_enabled_write {
            ConnectivityAction::Disconnect { profile: instance }
        } else {
            return Ok(Vec::new());
        };
        Ok(vec![Action::Connectivity(action)])
    }
    fn remove_value(&mut self, instance: u16, resource: u16) -> Result<(), DmError> {
        self.store.remove(instance, resource);
        Ok(())
    }
    fn create(&mut self, instance: u16) -> Result<(), DmError> {
        if self.store.has_instance(instance) {
            return Err(DmError::BadRequest(format!("/11/{instance} exists")));
        }
        self.store.add_instance(instance);
        Ok(())
    }
    fn delete(&mut self, instance: u16) -> Result<(), DmError> {
        self.secrets.remove(&instance);
        self.store.remove_instance(instance)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &str) -> ResourceValue {
        ResourceValue::Single(Value::String(v.into()))
    }

    #[test]
    fn an_enabled_profile_connects_with_its_settings() {
        let mut o = ApnProfiles::new();
        o.create(1).unwrap();
        assert_eq!(o.write(1, PROFILE_NAME, s("iot"), true).unwrap(), vec![]);
        assert_eq!(o.write(1, APN, s("iot.example"), true).unwrap(), vec![]);
        o.write(1, USER_NAME, s("gw"), true).unwrap();
        o.write(1, SECRET, s("pw"), true).unwrap();
        o.write(
            1,
            AUTHENTICATION_TYPE,
            ResourceValue::Single(Value::Integer(1)),
            true,
        )
        .unwrap();
        let actions = o
            .write(
                1,
                ENABLE_STATUS,
                ResourceValue::Single(Value::Boolean(true)),
                true,
            )
            .unwrap();
        assert_eq!(
            actions,
            vec![Action::Connectivity(ConnectivityAction::Connect {
                profile: 1,
                settings: ApnSettings {
                    apn: "iot.example".into(),
                    auth: ApnAuth::Chap,
                    user: Some("gw".into()),
                    password: Some("pw".into()),
                }
            })]
        );
        // The secret is never read back.
        assert_eq!(o.read(1, SECRET), None);
        // Disabling disconnects.
        assert_eq!(
            o.write(
                1,
                ENABLE_STATUS,
                ResourceValue::Single(Value::Boolean(false)),
                true
            )
            .unwrap(),
            vec![Action::Connectivity(ConnectivityAction::Disconnect {
                profile: 1
            })]
        );
    }

    #[test]
    fn auto_select_sends_no_apn_and_bad_values_are_refused() {
        let mut o = ApnProfiles::new();
        o.create(0).unwrap();
        o.write(0, APN, s("ignored"), true).unwrap();
        o.write(
            0,
            ENABLE_STATUS,
            ResourceValue::Single(Value::Boolean(true)),
            true,
        )
        .unwrap();
        let actions = o
            .write(
                0,
                AUTO_SELECT,
                ResourceValue::Single(Value::Boolean(true)),
                true,
            )
            .unwrap();
        let [Action::Connectivity(ConnectivityAction::Connect { settings, .. })] =
            actions.as_slice()
        else {
            panic!("{actions:?}")
        };
        assert_eq!(settings.apn, "");
        assert!(matches!(
            o.write(
                0,
                AUTHENTICATION_TYPE,
                ResourceValue::Single(Value::Integer(7)),
                true
            ),
            Err(DmError::BadRequest(_))
        ));
        assert!(matches!(
            o.write(0, APN, s("a\nb"), true),
            Err(DmError::BadRequest(_))
        ));
        assert_eq!(o.write(5, SECRET, s("x"), true), Err(DmError::NotFound));
    }

    #[test]
    fn the_backend_makes_the_profile_of_an_existing_connection() {
        let mut o = ApnProfiles::new();
        assert_eq!(o.write(0, APN, s("internet"), false).unwrap(), vec![]);
        assert_eq!(o.instances(), vec![0]);
        o.delete(0).unwrap();
        assert!(o.instances().is_empty());
    }
}
