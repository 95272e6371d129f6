//! The daemon's local API on the system bus: `org.lwm2md.Daemon` owns
//! `/org/lwm2md/Daemon`, which implements `org.lwm2md.Daemon1` (status and reads) and
//! `org.lwm2md.Application1` (resources owned by local applications, see `dbus_app`).
//!
//! zbus runs the interface on the daemon's single-threaded runtime as tasks of its own;
//! each method sends a [`Request`] through a bounded channel to the daemon loop and
//! awaits the loop's answer on a oneshot channel, so the engine is only ever touched by
//! the loop and a slow bus client never stalls it. Further interfaces (writes, Send on
//! demand) are further `Request` variants and further `serve_at` calls in [`serve`].
//!
//! Who may own the name and call it is the bus policy's business
//! (/usr/share/dbus-1/system.d/org.lwm2md.Daemon.conf).

use std::collections::HashMap;
use std::time::Instant;

use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};
use zbus::zvariant::{OwnedValue, Type, Value as Variant};

use crate::codec::Record;
use crate::engine::{Engine, Event};
use crate::model::DmError;
use crate::path::Path;
use crate::value::{ResourceValue, Value};

pub const BUS_NAME: &str = "org.lwm2md.Daemon";
pub const OBJECT_PATH: &str = "/org/lwm2md/Daemon";
pub const INTERFACE: &str = "org.lwm2md.Daemon1";

/// Bus clients are people and scripts; a handful of requests in flight is plenty, and
/// beyond that callers wait rather than grow memory.
const REQUEST_CAPACITY: usize = 16;

/// What an interface method asks of the daemon loop.
#[derive(Debug)]
pub enum Request {
    Servers(oneshot::Sender<Vec<ServerStatus>>),
    Read(Path, oneshot::Sender<Result<Vec<Record>, DmError>>),
    /// Send (`POST /dp`) of these paths' current values now; answers how many servers
    /// it went to.
    Send(Vec<Path>, oneshot::Sender<Result<usize, DmError>>),
    /// An application's value of a resource it owns (checked against its type already).
    SetValue(Path, ResourceValue, oneshot::Sender<Result<(), DmError>>),
    /// An application creates or deletes an instance of an object it owns.
    CreateInstance(Path, oneshot::Sender<Result<(), DmError>>),
    DeleteInstance(Path, oneshot::Sender<Result<(), DmError>>),
}

pub type RequestReceiver = mpsc::Receiver<Request>;

/// One server account as `Servers` reports it: D-Bus signature `(qsbxuxsu)`.
#[derive(
    Debug,
    Clone,
    PartialEq,
    Eq,
    Serialize,
    Deserialize,
    Type,
    zbus::zvariant::Value,
    zbus::zvariant::OwnedValue,
)]
pub struct ServerStatus {
    pub short_server_id: u16,
    pub uri: String,
    pub registered: bool,
    /// Unix seconds of the last successful Register or Update; 0 before the first.
    pub last_registration: i64,
    /// Registration lifetime in seconds (/1/x/1).
    pub lifetime: u32,
    /// Seconds until the next Update; -1 when none is scheduled (not registered).
    pub next_update_in: i64,
    /// Why the last Register or Update failed; empty when the last one succeeded.
    pub last_error: String,
    /// Observations this server holds.
    pub observations: u32,
}

/// What the daemon remembers of registration outcomes, from the engine's events.
#[derive(Debug, Default)]
pub struct StatusBook {
    /// short server ID → (last registration in Unix seconds, last error)
    servers: HashMap<u16, (i64, String)>,
}

impl StatusBook {
    pub fn on_event(&mut self, event: &Event, unix_now: i64) {
        match event {
            Event::Registered {
                short_server_id, ..
            }
            | Event::Updated { short_server_id } => {
                let e = self.servers.entry(*short_server_id).or_default();
                *e = (unix_now, String::new());
            }
            Event::RegistrationFailed {
                short_server_id,
                reason,
            } => {
                self.servers.entry(*short_server_id).or_default().1 = reason.clone();
            }
            Event::Deregistered { .. }
            | Event::Provisioned
            | Event::BootstrapStarted
            | Event::BootstrapFailed => {}
        }
    }

    /// Every server account, as the engine and the book see it now.
    pub fn servers(&self, engine: &Engine, now: Instant) -> Vec<ServerStatus> {
        let lifetimes = lifetimes(engine);
        engine
            .registrations()
            .into_iter()
            .map(|(ssid, uri, registered)| {
                let (last_registration, last_error) =
                    self.servers.get(&ssid).cloned().unwrap_or_default();
                let next_update_in = engine.next_update(ssid).map_or(-1, |t| {
                    i64::try_from(t.saturating_duration_since(now).as_secs()).unwrap_or(i64::MAX)
                });
                ServerStatus {
                    short_server_id: ssid,
                    uri: uri.to_owned(),
                    registered,
                    last_registration,
                    lifetime: lifetimes.get(&ssid).copied().unwrap_or(0),
                    next_update_in,
                    last_error,
                    observations: u32::try_from(engine.observation_count(ssid)).unwrap_or(u32::MAX),
                }
            })
            .collect()
    }
}

/// Short server ID → lifetime, from the Server object (/1/x/0 and /1/x/1).
fn lifetimes(engine: &Engine) -> HashMap<u16, u32> {
    let Ok(records) = engine.read(&Path::object(1)) else {
        return HashMap::new();
    };
    let field = |instance: Option<u16>, resource: u16| {
        records.iter().find_map(|r| {
            (r.path.instance_id() == instance && r.path.resource_id() == Some(resource))
                .then_some(&r.value)
        })
    };
    let mut out = HashMap::new();
    for r in &records {
        if r.path.resource_id() != Some(0) {
            continue;
        }
        let ssid = match &r.value {
            Value::Integer(v) => u16::try_from(*v).ok(),
            Value::Unsigned(v) => u16::try_from(*v).ok(),
            _ => None,
        };
        let lifetime = match field(r.path.instance_id(), 1) {
            Some(Value::Integer(v)) => u32::try_from(*v).ok(),
            Some(Value::Unsigned(v)) => u32::try_from(*v).ok(),
            _ => None,
        };
        if let (Some(ssid), Some(lifetime)) = (ssid, lifetime) {
            out.insert(ssid, lifetime);
        }
    }
    out
}

/// Answers one request in the daemon loop.
pub fn answer(engine: &mut Engine, book: &StatusBook, request: Request) {
    // A caller that gave up has dropped its receiver: nothing to tell it.
    match request {
        Request::Servers(reply) => {
            let _ = reply.send(book.servers(engine, Instant::now()));
        }
        Request::Read(path, reply) => {
            let _ = reply.send(engine.read(&path));
        }
        Request::Send(paths, reply) => {
            let _ = reply.send(engine.send(
                Instant::now(),
                &paths,
                crate::codec::ContentFormat::SenmlCbor,
            ));
        }
        Request::SetValue(path, value, reply) => {
            let _ = reply.send(engine.set_value(path, value));
        }
        Request::CreateInstance(path, reply) => {
            let _ = reply.send(engine.create_instance(Instant::now(), path));
        }
        Request::DeleteInstance(path, reply) => {
            let _ = reply.send(engine.delete_instance(Instant::now(), path));
        }
    }
}

#[derive(Debug, zbus::DBusError)]
#[zbus(prefix = "org.lwm2md.Daemon1.Error")]
pub enum ApiError {
    #[zbus(error)]
    ZBus(zbus::Error),
    /// The path is not an LwM2M path.
    BadPath(String),
    /// No such object, instance or resource.
    NotFound(String),
    /// Not readable through this interface: the Security object (/0), which holds keys.
    Denied(String),
    /// The daemon could not answer (it is stopping, or the read failed).
    Failed(String),
}

/// `org.lwm2md.Daemon1`.
struct Daemon1 {
    requests: mpsc::Sender<Request>,
    endpoint: String,
}

impl Daemon1 {
    async fn ask<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<T>) -> Request,
    ) -> Result<T, ApiError> {
        let (tx, rx) = oneshot::channel();
        let stopping = || ApiError::Failed("the daemon is stopping".into());
        self.requests.send(make(tx)).await.map_err(|_| stopping())?;
        rx.await.map_err(|_| stopping())
    }
}

#[zbus::interface(name = "org.lwm2md.Daemon1")]
impl Daemon1 {
    /// The daemon's version ("0.1.0").
    #[zbus(property(emits_changed_signal = "const"))]
    fn version(&self) -> String {
        env!("CARGO_PKG_VERSION").to_owned()
    }

    /// The Endpoint Client Name the servers know this device by.
    #[zbus(property(emits_changed_signal = "const"))]
    fn endpoint(&self) -> String {
        self.endpoint.clone()
    }

    /// Each server account: (short server ID, URI, registered, last registration in Unix
    /// seconds or 0, lifetime, seconds to the next Update or -1, last error, observations).
    #[zbus(property(emits_changed_signal = "false"))]
    async fn servers(&self) -> zbus::fdo::Result<Vec<ServerStatus>> {
        self.ask(Request::Servers)
            .await
            .map_err(|e| zbus::fdo::Error::Failed(e.to_string()))
    }

    /// The value of a resource (`/3/0/0`) as a variant of its type, or of every
    /// resource under an object or instance path as a dictionary `a{sv}` keyed by path.
    async fn read_resource(&self, path: &str) -> Result<OwnedValue, ApiError> {
        let parsed: Path = path
            .parse()
            .map_err(|e| ApiError::BadPath(format!("{path}: {e}")))?;
        if parsed.is_root() {
            return Err(ApiError::BadPath(format!(
                "{path}: name an object or below"
            )));
        }
        // Bus callers are local users, not the bootstrap server: keys stay in the daemon.
        if parsed.object_id() == Some(0) {
            return Err(ApiError::Denied(format!(
                "{path}: the Security object holds credentials"
            )));
        }
        let records = self
            .ask(|tx| Request::Read(parsed, tx))
            .await?
            .map_err(|e| match e {
                DmError::NotFound => ApiError::NotFound(path.to_owned()),
                other => ApiError::Failed(format!("{path}: {other}")),
            })?;
        let value = match records.as_slice() {
            [one] if one.path == parsed => variant(&one.value),
            _ => {
                let dict: HashMap<String, Variant<'static>> = records
                    .iter()
                    .map(|r| (r.path.to_string(), variant(&r.value)))
                    .collect();
                Variant::from(dict)
            }
        };
        OwnedValue::try_from(value).map_err(|e| ApiError::Failed(e.to_string()))
    }

    /// Sends the current values of `paths` (`["/3/0/9", "/3303"]`) to every registered
    /// server that has not muted Send (/1/x/23), as one SenML CBOR `POST /dp` each.
    /// Returns how many servers it went to (0: none registered or all muted).
    async fn send(&self, paths: Vec<String>) -> Result<u32, ApiError> {
        let mut parsed = Vec::with_capacity(paths.len());
        for p in &paths {
            let path: Path = p
                .parse()
                .map_err(|e| ApiError::BadPath(format!("{p}: {e}")))?;
            if path.is_root() || path.object_id() == Some(0) {
                return Err(ApiError::Denied(format!(
                    "{p}: name an object or below, other than the Security object"
                )));
            }
            parsed.push(path);
        }
        if parsed.is_empty() {
            return Err(ApiError::BadPath("no path given".into()));
        }
        let sent = self
            .ask(|tx| Request::Send(parsed, tx))
            .await?
            .map_err(|e| match e {
                DmError::NotFound => ApiError::NotFound(paths.join(", ")),
                other => ApiError::Failed(other.to_string()),
            })?;
        Ok(u32::try_from(sent).unwrap_or(u32::MAX))
    }
}

/// An LwM2M value as the D-Bus type closest to it: integers and times `x`, unsigned
/// `t`, floats `d`, booleans `b`, strings and CoRE links `s`, opaque `ay`, object links
/// `(qq)`.
pub(crate) fn variant(value: &Value) -> Variant<'static> {
    match value {
        Value::Integer(v) | Value::Time(v) => Variant::from(*v),
        Value::Unsigned(v) => Variant::from(*v),
        Value::Float(v) => Variant::from(*v),
        Value::Boolean(v) => Variant::from(*v),
        Value::String(s) | Value::CoreLnk(s) => Variant::from(s.clone()),
        Value::Opaque(b) => Variant::from(b.clone()),
        Value::ObjLnk(o, i) => Variant::from((*o, *i)),
    }
}

/// Connects to the bus at `address`, takes the name and serves the interface, in a task
/// of its own. Without the bus (none here, or the policy refuses the name) the daemon
/// logs a warning and runs on; the returned receiver then simply never yields.
pub fn serve(address: String, endpoint: String, app: crate::dbus_app::App) -> RequestReceiver {
    let (requests, rx) = mpsc::channel(REQUEST_CAPACITY);
    tokio::spawn(async move {
        let application = app.interface(requests.clone());
        let iface = Daemon1 { requests, endpoint };
        let built = async {
            zbus::connection::Builder::address(address.as_str())?
                .serve_at(OBJECT_PATH, iface)?
                .serve_at(OBJECT_PATH, application)?
                .name(BUS_NAME)?
                .build()
                .await
        };
        match built.await {
            Ok(connection) => {
                tracing::info!(bus = %address, "serving {BUS_NAME} on the system bus");
                // The connection serves as long as it lives: for the daemon's life.
                app.run(Some(connection)).await;
            }
            Err(e) => {
                tracing::warn!(
                    bus = %address,
                    "no D-Bus service ({BUS_NAME}): {e}; `lwm2md status` and applications \
                     will not reach this daemon"
                );
                app.run(None).await;
            }
        }
    });
    rx
}

/// The client side of `org.lwm2md.Daemon1`, for `lwm2md status`.
#[zbus::proxy(
    interface = "org.lwm2md.Daemon1",
    default_service = "org.lwm2md.Daemon",
    default_path = "/org/lwm2md/Daemon",
    gen_blocking = false
)]
pub trait Daemon1Client {
    #[zbus(property)]
    fn version(&self) -> zbus::Result<String>;
    #[zbus(property)]
    fn endpoint(&self) -> zbus::Result<String>;
    #[zbus(property)]
    fn servers(&self) -> zbus::Result<Vec<ServerStatus>>;
    fn read_resource(&self, path: &str) -> zbus::Result<OwnedValue>;
    fn send(&self, paths: Vec<String>) -> zbus::Result<u32>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_status_signature() {
        assert_eq!(ServerStatus::SIGNATURE.to_string(), "(qsbxuxsu)");
    }

    #[test]
    fn values_map_to_their_dbus_types() {
        assert_eq!(variant(&Value::Integer(-3)), Variant::I64(-3));
        assert_eq!(variant(&Value::Unsigned(3)), Variant::U64(3));
        assert_eq!(variant(&Value::Boolean(true)), Variant::Bool(true));
        assert_eq!(variant(&Value::String("x".into())).to_string(), "\"x\"");
        assert_eq!(
            variant(&Value::Opaque(vec![1, 2]))
                .value_signature()
                .to_string(),
            "ay"
        );
        assert_eq!(
            variant(&Value::ObjLnk(3, 0)).value_signature().to_string(),
            "(qq)"
        );
    }

    #[test]
    fn book_keeps_the_last_success_and_error() {
        let mut book = StatusBook::default();
        book.on_event(
            &Event::RegistrationFailed {
                short_server_id: 1,
                reason: "timeout".into(),
            },
            10,
        );
        assert_eq!(book.servers.get(&1), Some(&(0, "timeout".to_string())));
        book.on_event(
            &Event::Registered {
                short_server_id: 1,
                location: "rd/1".into(),
            },
            20,
        );
        assert_eq!(book.servers.get(&1), Some(&(20, String::new())));
        book.on_event(&Event::Updated { short_server_id: 1 }, 30);
        assert_eq!(book.servers.get(&1), Some(&(30, String::new())));
    }
}
