//! Object 11, APN Connection Profile. Servers create and write profiles; writing an
//! enabled profile (or enabling one) asks the modem backend to connect with it, and the
//! backend reports the outcome and the connection's figures back into the instance.
//! The Secret is write-only: it is kept for the connection and never read back.
//!
//! The settings of profiles a server created or wrote are kept in the state directory,
//! so that they, and which of them is enabled, survive a restart of the daemon.

use std::collections::{BTreeMap, BTreeSet};

use backends::modem::{ApnAuth, ApnSettings};
use serde::{Deserialize, Serialize};

use crate::model::registry_connectivity::APN_CONNECTION_PROFILE;
use crate::model::{Action, ConnectivityAction, DmError, Object};
use crate::objects::store::Store;
use crate::state::StateDir;
use crate::value::{ResourceValue, Value};

/// The state file of the profiles servers configured.
pub const STATE_FILE: &str = "apn-profiles.json";

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

/// What is kept of a profile: the resources a server sets.
#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SavedProfile {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    apn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    auto_select: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    enabled: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    auth: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    user: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    secret: Option<String>,
}

#[derive(Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Saved {
    profiles: BTreeMap<u16, SavedProfile>,
}

impl Saved {
    fn load(state: &StateDir) -> Saved {
        let data = match state.read(STATE_FILE) {
            Ok(Some(data)) => data,
            Ok(None) => return Saved::default(),
            Err(e) => {
                tracing::warn!("reading {}: {e}", state.path(STATE_FILE).display());
                return Saved::default();
            }
        };
        match serde_json::from_slice::<Saved>(&data) {
            Ok(saved) if saved.is_valid() => saved,
            _ => {
                let shown = state.path(STATE_FILE).display().to_string();
                match state.move_aside(STATE_FILE) {
                    Ok(aside) => tracing::warn!(
                        "{shown}: unreadable, APN profiles start empty (kept as {})",
                        aside.display()
                    ),
                    Err(e) => tracing::warn!("{shown}: unreadable, APN profiles start empty ({e})"),
                }
                Saved::default()
            }
        }
    }

    /// The same checks as a server's write: a file is not trusted more than a server.
    fn is_valid(&self) -> bool {
        let text_ok = |s: &Option<String>| {
            s.as_ref()
                .is_none_or(|s| s.len() <= 100 && !s.chars().any(char::is_control))
        };
        self.profiles.values().all(|p| {
            text_ok(&p.name)
                && text_ok(&p.apn)
                && text_ok(&p.user)
                && p.auth.is_none_or(|n| (0..=3).contains(&n))
        })
    }
}

/// The profile a server left enabled before the daemon stopped, which the modem's data
/// connection therefore belongs to.
pub fn enabled_profile(state: &StateDir) -> Option<u16> {
    let saved = Saved::load(state);
    saved
        .profiles
        .iter()
        .find(|(_, p)| p.enabled == Some(true))
        .map(|(&instance, _)| instance)
}

pub struct ApnProfiles {
    store: Store,
    secrets: BTreeMap<u16, String>,
    /// Instances a server created or wrote: these are kept.
    configured: BTreeSet<u16>,
    state: Option<StateDir>,
    /// What the state file holds, so that unchanged settings are not written again.
    saved: Vec<u8>,
}

impl ApnProfiles {
    /// Profiles that live as long as the process (tests).
    pub fn new() -> ApnProfiles {
        ApnProfiles {
            store: Store::new(&APN_CONNECTION_PROFILE),
            secrets: BTreeMap::new(),
            configured: BTreeSet::new(),
            state: None,
            saved: Vec::new(),
        }
    }

    /// The profiles kept in the state directory, restored.
    pub fn with_state(state: StateDir) -> ApnProfiles {
        let saved = Saved::load(&state);
        let mut o = ApnProfiles::new();
        for (&instance, p) in &saved.profiles {
            o.store.add_instance(instance);
            o.configured.insert(instance);
            let single = |v: Value| ResourceValue::Single(v);
            let values = [
                (PROFILE_NAME, p.name.clone().map(Value::String)),
                (APN, p.apn.clone().map(Value::String)),
                (AUTO_SELECT, p.auto_select.map(Value::Boolean)),
                (ENABLE_STATUS, p.enabled.map(Value::Boolean)),
                (AUTHENTICATION_TYPE, p.auth.map(Value::Integer)),
                (USER_NAME, p.user.clone().map(Value::String)),
            ];
            for (resource, value) in values {
                if let Some(v) = value {
                    if let Err(e) = o.store.set(instance, resource, single(v)) {
                        tracing::warn!("restoring /11/{instance}/{resource}: {e}");
                    }
                }
            }
            if let Some(secret) = &p.secret {
                o.secrets.insert(instance, secret.clone());
            }
        }
        o.saved = o.to_json();
        o.state = Some(state);
        o
    }

    fn to_json(&self) -> Vec<u8> {
        let profiles = self
            .configured
            .iter()
            .map(|&i| {
                let p = SavedProfile {
                    name: self.string(i, PROFILE_NAME),
                    apn: self.string(i, APN),
                    auto_select: self.boolean(i, AUTO_SELECT),
                    enabled: self.boolean(i, ENABLE_STATUS),
                    auth: match self.store.get(i, AUTHENTICATION_TYPE) {
                        Some(ResourceValue::Single(Value::Integer(n))) => Some(*n),
                        _ => None,
                    },
                    user: self.string(i, USER_NAME),
                    secret: self.secrets.get(&i).cloned(),
                };
                (i, p)
            })
            .collect();
        serde_json::to_vec(&Saved { profiles }).unwrap_or_default()
    }

    /// Writes the kept settings if they changed. A failure leaves the previous file
    /// whole (the state directory replaces files atomically) and is logged.
    fn save(&mut self) {
        let Some(state) = &self.state else {
            return;
        };
        let data = self.to_json();
        if data == self.saved {
            return;
        }
        match state.write(STATE_FILE, &data) {
            Ok(()) => self.saved = data,
            Err(e) => tracing::warn!("writing {}: {e}", state.path(STATE_FILE).display()),
        }
    }

    fn boolean(&self, instance: u16, resource: u16) -> Option<bool> {
        match self.store.get(instance, resource) {
            Some(ResourceValue::Single(Value::Boolean(b))) => Some(*b),
            _ => None,
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
    crate::objects::store::reads_from_store!();
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
            self.store.set(instance, resource, value)?;
            // The modem's view of a kept profile (its APN in use, enabled or not).
            if self.configured.contains(&instance) {
                self.save();
            }
            return Ok(Vec::new());
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
        self.configured.insert(instance);
        self.save();
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
        if self.configured.contains(&instance) {
            self.save();
        }
        Ok(())
    }
    fn create(&mut self, instance: u16) -> Result<(), DmError> {
        if self.store.has_instance(instance) {
            return Err(DmError::BadRequest(format!("/11/{instance} exists")));
        }
        self.store.add_instance(instance);
        self.configured.insert(instance);
        self.save();
        Ok(())
    }
    fn delete(&mut self, instance: u16) -> Result<(), DmError> {
        self.store.remove_instance(instance)?;
        self.secrets.remove(&instance);
        self.configured.remove(&instance);
        self.save();
        Ok(())
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

    fn scratch(tag: &str) -> StateDir {
        let dir = std::env::temp_dir().join(format!("lwm2md-apn-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        StateDir::new(dir)
    }

    #[test]
    fn profiles_a_server_wrote_survive_a_restart() {
        let state = scratch("restart");
        let mut o = ApnProfiles::with_state(state.clone());
        // The modem's own connection is not the server's: it is not kept.
        o.write(0, APN, s("internet"), false).unwrap();
        assert_eq!(state.read(STATE_FILE).unwrap(), None);
        o.create(1).unwrap();
        o.write(1, PROFILE_NAME, s("iot"), true).unwrap();
        o.write(1, APN, s("iot.example"), true).unwrap();
        o.write(1, USER_NAME, s("gw"), true).unwrap();
        o.write(1, SECRET, s("pw"), true).unwrap();
        o.write(
            1,
            AUTHENTICATION_TYPE,
            ResourceValue::Single(Value::Integer(0)),
            true,
        )
        .unwrap();
        o.write(
            1,
            ENABLE_STATUS,
            ResourceValue::Single(Value::Boolean(true)),
            true,
        )
        .unwrap();
        o.create(2).unwrap();
        o.write(2, APN, s("spare.example"), true).unwrap();
        // What the backend reports of a kept profile is kept with it.
        o.write(
            1,
            ESTABLISHMENT_RESULT,
            ResourceValue::Multiple(BTreeMap::from([(0, Value::Integer(0))])),
            false,
        )
        .unwrap();
        drop(o);

        let mut o = ApnProfiles::with_state(state.clone());
        assert_eq!(o.instances(), vec![1, 2]);
        assert_eq!(o.read(1, APN), Some(s("iot.example")));
        assert_eq!(o.read(1, PROFILE_NAME), Some(s("iot")));
        assert_eq!(o.read(1, USER_NAME), Some(s("gw")));
        assert_eq!(
            o.read(1, AUTHENTICATION_TYPE),
            Some(ResourceValue::Single(Value::Integer(0)))
        );
        assert_eq!(
            o.read(1, ENABLE_STATUS),
            Some(ResourceValue::Single(Value::Boolean(true)))
        );
        // Connection figures are the modem's to report again, the secret stays unreadable.
        assert_eq!(o.read(1, ESTABLISHMENT_RESULT), None);
        assert_eq!(o.read(1, SECRET), None);
        assert_eq!(o.settings(1).password.as_deref(), Some("pw"));
        assert_eq!(o.settings(1).auth, ApnAuth::Pap);
        assert_eq!(enabled_profile(&state), Some(1));

        o.delete(2).unwrap();
        let o = ApnProfiles::with_state(state.clone());
        assert_eq!(o.instances(), vec![1]);
        std::fs::remove_dir_all(state.root()).unwrap();
    }

    #[test]
    fn an_unusable_state_file_is_set_aside() {
        let state = scratch("corrupt");
        for bad in [
            &b"{\"profiles\":{\"1\":{\"apn\":"[..],
            br#"{"profiles":{"1":{"auth":9}}}"#,
            br#"{"profiles":{"1":{"apn":"a\nb"}}}"#,
            br#"{"profiles":{"70000":{}}}"#,
        ] {
            state.write(STATE_FILE, bad).unwrap();
            let o = ApnProfiles::with_state(state.clone());
            assert!(o.instances().is_empty(), "{}", String::from_utf8_lossy(bad));
            assert_eq!(state.read(STATE_FILE).unwrap(), None);
            assert_eq!(
                std::fs::read(state.path(&format!("{STATE_FILE}.corrupt"))).unwrap(),
                bad
            );
        }
        std::fs::remove_dir_all(state.root()).unwrap();
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
