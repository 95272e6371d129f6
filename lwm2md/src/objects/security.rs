//! Object 0, LwM2M Security: server URIs and credentials. Only the bootstrap server may
//! see it; the engine refuses every DM request on it.

use crate::model::{registry, Action, DmError, Object};
use crate::objects::store::Store;
use crate::value::{ResourceValue, Value};

pub const SERVER_URI: u16 = 0;
pub const BOOTSTRAP_SERVER: u16 = 1;
pub const SECURITY_MODE: u16 = 2;
pub const PUBLIC_KEY_OR_IDENTITY: u16 = 3;
pub const SERVER_PUBLIC_KEY: u16 = 4;
pub const SECRET_KEY: u16 = 5;
pub const SHORT_SERVER_ID: u16 = 10;
pub const CLIENT_HOLD_OFF_TIME: u16 = 11;
pub const BOOTSTRAP_ACCOUNT_TIMEOUT: u16 = 12;

/// Security Mode codes (/0/x/2).
pub const MODE_PSK: i64 = 0;
pub const MODE_RPK: i64 = 1;
pub const MODE_CERTIFICATE: i64 = 2;
pub const MODE_NOSEC: i64 = 3;

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
        self.add_account(instance, uri, short_server_id, SecurityMode::NoSec);
    }

    /// Adds an account (factory bootstrap from the configuration).
    pub fn add_account(
        &mut self,
        instance: u16,
        uri: &str,
        short_server_id: u16,
        mode: SecurityMode,
    ) {
        self.add(instance, uri, false, short_server_id, mode);
    }

    /// Adds the bootstrap server's account (factory bootstrap from the configuration).
    pub fn add_bootstrap_account(&mut self, instance: u16, uri: &str, mode: SecurityMode) {
        self.add(instance, uri, true, 0, mode);
    }

    fn add(
        &mut self,
        instance: u16,
        uri: &str,
        bootstrap: bool,
        short_server_id: u16,
        mode: SecurityMode,
    ) {
        let mut extra = Vec::new();
        let (code, identity, server_key, key) = match mode {
            SecurityMode::Psk { identity, key } => (0, identity, Vec::new(), key),
            SecurityMode::Certificate {
                certificate,
                server_certificate,
                key,
                usage,
                sni,
            } => {
                extra.push((CERTIFICATE_USAGE, Value::Integer(usage)));
                if let Some(sni) = sni {
                    extra.push((SNI, Value::String(sni)));
                }
                (2, certificate, server_certificate, key)
            }
            SecurityMode::RawPublicKey {
                public_key,
                server_public_key,
                key,
            } => (MODE_RPK, public_key, server_public_key, key),
            SecurityMode::NoSec => (3, Vec::new(), Vec::new(), Vec::new()),
        };
        let s = &mut self.store;
        s.add_instance(instance);
        let values = [
            (0, Value::String(uri.to_string())),
            (1, Value::Boolean(bootstrap)),
            (2, Value::Integer(code)),
            (3, Value::Opaque(identity)),
            (4, Value::Opaque(server_key)),
            (5, Value::Opaque(key)),
            (10, Value::Integer(short_server_id.into())),
        ];
        // The bootstrap account has no Short Server ID.
        let values = values
            .into_iter()
            .chain(extra)
            .filter(|(r, _)| !(bootstrap && *r == 10));
        for (r, v) in values {
            // The instance was added above, so this cannot fail.
            let _ = s.set(instance, r, ResourceValue::Single(v));
        }
    }
}

/// /0/x/14 and /0/x/15.
pub const SNI: u16 = 14;
pub const CERTIFICATE_USAGE: u16 = 15;

/// Security Mode (/0/x/2) of an account, with what the mode needs.
pub enum SecurityMode {
    /// Mode 0: identity (/0/x/3) and key (/0/x/5).
    Psk { identity: Vec<u8>, key: Vec<u8> },
    /// Mode 2: our certificate (/0/x/3), the server's (/0/x/4), our key (/0/x/5), all
    /// DER, the Certificate Usage (/0/x/15) and SNI (/0/x/14).
    Certificate {
        certificate: Vec<u8>,
        server_certificate: Vec<u8>,
        key: Vec<u8>,
        usage: i64,
        sni: Option<String>,
    },
    /// Mode 1: our public key (/0/x/3, DER SubjectPublicKeyInfo), the server's (/0/x/4,
    /// the same form) and our private key (/0/x/5, DER).
    RawPublicKey {
        public_key: Vec<u8>,
        server_public_key: Vec<u8>,
        key: Vec<u8>,
    },
    /// Mode 3.
    NoSec,
}

impl Default for Security {
    fn default() -> Self {
        Security::new()
    }
}

impl Object for Security {
    crate::objects::store::reads_from_store!();
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
