//! `org.lwm2md.Application1`: local applications own resources (`app = true` in a
//! `[[resource]]` table) through the daemon's bus object `/org/lwm2md/Daemon`.
//!
//! An application sets the values of what it owns (`SetValue`), creates and deletes
//! instances of objects it owns whole, and is told of a server's Write or Execute by the
//! `Write` and `Execute` signals; it answers each with `Answer(request_id, code)`. The
//! request ID is the engine's ticket of the bound action, and the answer becomes the
//! CoAP response. No answer within the table's `timeout` (10 s by default) gives 5.03
//! Service Unavailable and a log line: the application may be gone from the bus.
//! Reading values and Send on demand are `org.lwm2md.Daemon1`'s `ReadResource` and
//! `Send`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::{mpsc, oneshot};
use zbus::object_server::SignalEmitter;
use zbus::zvariant::Value as Variant;

use crate::binding::AppOwned;
use crate::dbus_api::{Request, OBJECT_PATH};
use crate::feed::{Feed, FeedSender};
use crate::model::{BoundOp, BoundRequest, DmError};
use crate::path::Path;
use crate::value::{ResourceType, ResourceValue, Value};

pub const INTERFACE: &str = "org.lwm2md.Application1";

/// Server requests that may wait for the bus task; beyond that the server gets 5.03.
const QUEUE: usize = 16;

type Pending = Arc<Mutex<HashMap<u64, oneshot::Sender<Result<(), DmError>>>>>;

/// The daemon loop's side: hands server Writes and Executes of app-owned resources over.
pub struct AppRequests {
    owned: Arc<AppOwned>,
    tx: mpsc::Sender<BoundRequest>,
}

impl AppRequests {
    /// Whether an application owns this resource.
    pub fn owns(&self, path: &Path) -> bool {
        self.owned.resource(path).is_some()
    }

    /// Passes a bound request to the application; its outcome comes back as `Feed::Done`.
    pub fn dispatch(&self, request: BoundRequest) -> Result<(), DmError> {
        let path = request.path;
        self.tx.try_send(request).map_err(|_| {
            tracing::warn!("{path}: too many requests waiting for the application");
            DmError::Unavailable(format!("{path}: the application is busy"))
        })
    }
}

/// The bus side: the interface and the task that signals requests to applications.
pub struct App {
    owned: Arc<AppOwned>,
    rx: mpsc::Receiver<BoundRequest>,
    feed: FeedSender,
    pending: Pending,
}

/// Both ends, for what `owned` lists; outcomes go back through `feed`.
pub fn channel(owned: AppOwned, feed: FeedSender) -> (AppRequests, App) {
    let owned = Arc::new(owned);
    let (tx, rx) = mpsc::channel(QUEUE);
    (
        AppRequests {
            owned: owned.clone(),
            tx,
        },
        App {
            owned,
            rx,
            feed,
            pending: Arc::default(),
        },
    )
}

impl App {
    /// The interface object to serve, sharing this side's pending requests.
    pub fn interface(&self, requests: mpsc::Sender<Request>) -> Application1 {
        Application1 {
            requests,
            owned: self.owned.clone(),
            pending: self.pending.clone(),
        }
    }

    /// Signals each request to the applications and reports its outcome, for the
    /// daemon's life. Without a connection every request fails at once with 5.03.
    pub async fn run(mut self, connection: Option<zbus::Connection>) {
        while let Some(request) = self.rx.recv().await {
            let Some(conn) = &connection else {
                self.done(request.ticket, Err(unavailable("no system bus")))
                    .await;
                continue;
            };
            let timeout = self
                .owned
                .resource(&request.path)
                .map_or(crate::binding::DEFAULT_TIMEOUT, |(_, t)| t);
            let (tx, rx) = oneshot::channel();
            lock(&self.pending).insert(request.ticket, tx);
            if let Err(e) = signal(conn, &request).await {
                tracing::warn!(path = %request.path, "signalling the application: {e}");
                lock(&self.pending).remove(&request.ticket);
                self.done(request.ticket, Err(unavailable("no application")))
                    .await;
                continue;
            }
            let pending = self.pending.clone();
            let feed = self.feed.clone();
            let BoundRequest { ticket, path, .. } = request;
            tokio::spawn(async move {
                let result = match tokio::time::timeout(timeout, rx).await {
                    Ok(Ok(result)) => result,
                    _ => {
                        lock(&pending).remove(&ticket);
                        tracing::warn!(
                            %path,
                            request_id = ticket,
                            "no answer from the application in {} s: 5.03",
                            timeout.as_secs()
                        );
                        Err(unavailable("the application did not answer"))
                    }
                };
                let _ = feed.send(Feed::Done { ticket, result }).await;
            });
        }
    }

    async fn done(&self, ticket: u64, result: Result<(), DmError>) {
        let _ = self.feed.send(Feed::Done { ticket, result }).await;
    }
}

fn unavailable(why: &str) -> DmError {
    DmError::Unavailable(why.to_string())
}

fn lock(
    pending: &Pending,
) -> std::sync::MutexGuard<'_, HashMap<u64, oneshot::Sender<Result<(), DmError>>>> {
    // The map holds no invariant a panicking holder could break.
    pending.lock().unwrap_or_else(|e| e.into_inner())
}

async fn signal(conn: &zbus::Connection, request: &BoundRequest) -> zbus::Result<()> {
    let emitter = SignalEmitter::new(conn, OBJECT_PATH)?;
    let path = request.path.to_string();
    match &request.op {
        BoundOp::Write(v) => {
            Application1::write(&emitter, request.ticket, &path, crate::dbus_api::variant(v)).await
        }
        BoundOp::Execute(args) => {
            Application1::execute(&emitter, request.ticket, &path, args).await
        }
    }
}

#[derive(Debug, zbus::DBusError)]
#[zbus(prefix = "org.lwm2md.Application1.Error")]
pub enum AppError {
    #[zbus(error)]
    ZBus(zbus::Error),
    /// The path is not an LwM2M path of the expected depth.
    BadPath(String),
    /// No `[[resource]]` table gives this resource (or object) to an application.
    NotOwned(String),
    /// The instance does not exist (or no longer does).
    NotFound(String),
    /// The instance exists already.
    Exists(String),
    /// The value's D-Bus type does not fit the resource's type.
    TypeMismatch(String),
    /// `Answer` named no request waiting for one: answered already, timed out, or never
    /// asked.
    UnknownRequest(String),
    /// `Answer` gave a code that is not a success (2.xx) or one of the error codes.
    BadCode(String),
    /// The daemon could not do it (it is stopping).
    Failed(String),
}

/// `org.lwm2md.Application1`.
pub struct Application1 {
    requests: mpsc::Sender<Request>,
    owned: Arc<AppOwned>,
    pending: Pending,
}

impl Application1 {
    async fn ask<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<T>) -> Request,
    ) -> Result<T, AppError> {
        let (tx, rx) = oneshot::channel();
        let stopping = || AppError::Failed("the daemon is stopping".into());
        self.requests.send(make(tx)).await.map_err(|_| stopping())?;
        rx.await.map_err(|_| stopping())
    }

    /// An instance path (`/33000/1`) of an object an application owns whole.
    fn owned_instance(&self, path: &str) -> Result<Path, AppError> {
        let parsed = parse(path)?;
        let (Some(o), Some(_), None) = (
            parsed.object_id(),
            parsed.instance_id(),
            parsed.resource_id(),
        ) else {
            return Err(AppError::BadPath(format!("{path}: name an instance")));
        };
        if !self.owned.owns_object(o) {
            return Err(AppError::NotOwned(format!(
                "{path}: object {o} is not an application's (app = true on /{o})"
            )));
        }
        Ok(parsed)
    }
}

fn parse(path: &str) -> Result<Path, AppError> {
    path.parse()
        .map_err(|e| AppError::BadPath(format!("{path}: {e}")))
}

fn instance_error(path: &str, e: DmError) -> AppError {
    match e {
        DmError::NotFound => AppError::NotFound(path.to_owned()),
        DmError::BadRequest(why) => AppError::Exists(why),
        DmError::MethodNotAllowed => {
            AppError::NotOwned(format!("{path}: a single-instance object"))
        }
        other => AppError::Failed(format!("{path}: {other}")),
    }
}

#[zbus::interface(name = "org.lwm2md.Application1")]
impl Application1 {
    /// Sets an app-owned resource (`/33000/0/1`) to a value of its type: integers and
    /// times any D-Bus integer type, unsigned a non-negative one, floats `d` (or an
    /// integer), booleans `b`, strings and CoRE links `s`, opaque `ay`, object links
    /// `(qq)`. Observers are notified as for any change.
    async fn set_value(&self, path: &str, value: Variant<'_>) -> Result<(), AppError> {
        let parsed = parse(path)?;
        let Some((rdef, _)) = self.owned.resource(&parsed) else {
            return Err(AppError::NotOwned(format!(
                "{path}: no [[resource]] table with app = true owns it"
            )));
        };
        if rdef.multiple {
            return Err(AppError::TypeMismatch(format!(
                "{path}: {} has multiple instances; only single resources can be set",
                rdef.name
            )));
        }
        let v = from_variant(&value, rdef.ty).map_err(|why| {
            AppError::TypeMismatch(format!("{path} ({}, {:?}): {why}", rdef.name, rdef.ty))
        })?;
        self.ask(|tx| Request::SetValue(parsed, ResourceValue::Single(v), tx))
            .await?
            .map_err(|e| match e {
                DmError::NotFound => AppError::NotFound(format!("{path}: no such instance")),
                other => AppError::Failed(format!("{path}: {other}")),
            })
    }

    /// Creates an instance (`/33000/1`) of an object the application owns whole; the
    /// servers are told with a Registration Update.
    async fn create_instance(&self, path: &str) -> Result<(), AppError> {
        let parsed = self.owned_instance(path)?;
        self.ask(|tx| Request::CreateInstance(parsed, tx))
            .await?
            .map_err(|e| instance_error(path, e))
    }

    /// Deletes an instance the application created, telling the servers likewise.
    async fn delete_instance(&self, path: &str) -> Result<(), AppError> {
        let parsed = self.owned_instance(path)?;
        self.ask(|tx| Request::DeleteInstance(parsed, tx))
            .await?
            .map_err(|e| instance_error(path, e))
    }

    /// Answers a `Write` or `Execute` signal: `code` is "2.04" (any 2.xx) for success,
    /// or the CoAP error the server is to get: 4.00, 4.01, 4.04, 4.05, 4.06, 4.15, 5.00
    /// or 5.03.
    async fn answer(&self, request_id: u64, code: &str) -> Result<(), AppError> {
        let result = outcome(code)
            .ok_or_else(|| AppError::BadCode(format!("{code}: use 2.04 or an error code")))?;
        let waiting = lock(&self.pending).remove(&request_id);
        match waiting.map(|tx| tx.send(result)) {
            Some(Ok(())) => Ok(()),
            _ => Err(AppError::UnknownRequest(format!(
                "request {request_id} is not waiting for an answer"
            ))),
        }
    }

    /// A server wrote `value` (typed as `ReadResource` gives it) to an app-owned
    /// resource. The cached value does not change until the application sets it.
    #[zbus(signal)]
    pub async fn write(
        emitter: &SignalEmitter<'_>,
        request_id: u64,
        path: &str,
        value: Variant<'_>,
    ) -> zbus::Result<()>;

    /// A server executed an app-owned resource with these arguments (Core TS 5.4.5
    /// syntax, possibly empty).
    #[zbus(signal)]
    pub async fn execute(
        emitter: &SignalEmitter<'_>,
        request_id: u64,
        path: &str,
        arguments: &str,
    ) -> zbus::Result<()>;
}

/// An application's answer code as the outcome of the request.
fn outcome(code: &str) -> Option<Result<(), DmError>> {
    let refused = || "refused by the application".to_string();
    let e = match code.trim() {
        c if c
            .strip_prefix("2.")
            .is_some_and(|d| d.len() == 2 && d.bytes().all(|b| b.is_ascii_digit())) =>
        {
            return Some(Ok(()))
        }
        "4.00" => DmError::BadRequest(refused()),
        "4.01" => DmError::Unauthorized,
        "4.04" => DmError::NotFound,
        "4.05" => DmError::MethodNotAllowed,
        "4.06" => DmError::NotAcceptable,
        "4.15" => DmError::UnsupportedContentFormat,
        "5.00" => DmError::Internal(refused()),
        "5.03" => DmError::Unavailable(refused()),
        _ => return None,
    };
    Some(Err(e))
}

/// A D-Bus value as a value of the resource's type.
fn from_variant(v: &Variant<'_>, ty: ResourceType) -> Result<Value, String> {
    let v = match v {
        // A variant inside the variant (`v` in busctl): unwrap it.
        Variant::Value(inner) => inner.as_ref(),
        other => other,
    };
    let integer = || -> Option<i128> {
        Some(match v {
            Variant::U8(n) => (*n).into(),
            Variant::I16(n) => (*n).into(),
            Variant::U16(n) => (*n).into(),
            Variant::I32(n) => (*n).into(),
            Variant::U32(n) => (*n).into(),
            Variant::I64(n) => (*n).into(),
            Variant::U64(n) => (*n).into(),
            _ => return None,
        })
    };
    let sig = v.value_signature().to_string();
    let mismatch = || format!("a value of D-Bus type {sig} does not fit");
    match ty {
        ResourceType::Integer | ResourceType::Time => {
            let n = integer().ok_or_else(mismatch)?;
            let n = i64::try_from(n).map_err(|_| format!("{n} is out of range"))?;
            Ok(match ty {
                ResourceType::Time => Value::Time(n),
                _ => Value::Integer(n),
            })
        }
        ResourceType::Unsigned => {
            let n = integer().ok_or_else(mismatch)?;
            u64::try_from(n)
                .map(Value::Unsigned)
                .map_err(|_| format!("{n} is out of range"))
        }
        ResourceType::Float => match (v, integer()) {
            (Variant::F64(x), _) if x.is_finite() => Ok(Value::Float(*x)),
            (Variant::F64(x), _) => Err(format!("{x} is not a finite number")),
            // Integers that a double represents exactly.
            (_, Some(n)) if n.unsigned_abs() <= 1 << 53 => Ok(Value::Float(n as f64)),
            _ => Err(mismatch()),
        },
        ResourceType::Boolean => match v {
            Variant::Bool(b) => Ok(Value::Boolean(*b)),
            _ => Err(mismatch()),
        },
        ResourceType::String | ResourceType::CoreLnk => match v {
            Variant::Str(s) if ty == ResourceType::String => Ok(Value::String(s.to_string())),
            Variant::Str(s) => Ok(Value::CoreLnk(s.to_string())),
            _ => Err(mismatch()),
        },
        ResourceType::Opaque => match v {
            Variant::Array(_) if sig == "ay" => {
                Vec::<u8>::try_from(v.try_clone().map_err(|e| e.to_string())?)
                    .map(Value::Opaque)
                    .map_err(|e| e.to_string())
            }
            _ => Err(mismatch()),
        },
        ResourceType::ObjLnk => match v {
            Variant::Structure(_) if sig == "(qq)" => {
                <(u16, u16)>::try_from(v.try_clone().map_err(|e| e.to_string())?)
                    .map(|(o, i)| Value::ObjLnk(o, i))
                    .map_err(|e| e.to_string())
            }
            _ => Err(mismatch()),
        },
        ResourceType::None => Err("an executable resource has no value".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variants_convert_to_the_resource_type() {
        let ok = |v: Variant<'static>, ty| from_variant(&v, ty).unwrap();
        assert_eq!(
            ok(Variant::I32(-4), ResourceType::Integer),
            Value::Integer(-4)
        );
        assert_eq!(
            ok(Variant::U8(4), ResourceType::Unsigned),
            Value::Unsigned(4)
        );
        assert_eq!(ok(Variant::I64(7), ResourceType::Time), Value::Time(7));
        assert_eq!(
            ok(Variant::F64(1.5), ResourceType::Float),
            Value::Float(1.5)
        );
        assert_eq!(ok(Variant::U32(3), ResourceType::Float), Value::Float(3.0));
        assert_eq!(
            ok(Variant::Bool(true), ResourceType::Boolean),
            Value::Boolean(true)
        );
        assert_eq!(
            ok(Variant::from("eco"), ResourceType::String),
            Value::String("eco".into())
        );
        assert_eq!(
            ok(Variant::from(vec![1u8, 2]), ResourceType::Opaque),
            Value::Opaque(vec![1, 2])
        );
        assert_eq!(
            ok(Variant::from((3u16, 0u16)), ResourceType::ObjLnk),
            Value::ObjLnk(3, 0)
        );
        assert_eq!(
            ok(
                Variant::Value(Box::new(Variant::I64(9))),
                ResourceType::Integer
            ),
            Value::Integer(9)
        );
        let bad = |v: Variant<'static>, ty| from_variant(&v, ty).unwrap_err();
        assert!(bad(Variant::from("1"), ResourceType::Integer).contains("type s"));
        assert!(bad(Variant::I32(-1), ResourceType::Unsigned).contains("out of range"));
        assert!(bad(Variant::U64(u64::MAX), ResourceType::Integer).contains("out of range"));
        assert!(bad(Variant::F64(f64::NAN), ResourceType::Float).contains("finite"));
        assert!(bad(Variant::I32(1), ResourceType::Boolean).contains("type i"));
        assert!(bad(Variant::from(vec![1u16]), ResourceType::Opaque).contains("aq"));
        assert!(bad(Variant::from((3u32, 0u16)), ResourceType::ObjLnk).contains("(uq)"));
        assert!(bad(Variant::Bool(true), ResourceType::None).contains("executable"));
    }

    #[tokio::test]
    async fn without_a_bus_requests_fail_at_once_with_5_03() {
        let (feed, mut outcomes) = crate::feed::channel();
        let (requests, app) = channel(AppOwned::default(), feed);
        tokio::spawn(app.run(None));
        requests
            .dispatch(BoundRequest {
                ticket: 5,
                path: Path::resource(33000, 0, 1),
                op: BoundOp::Execute(String::new()),
            })
            .unwrap();
        let done = tokio::time::timeout(std::time::Duration::from_secs(60), outcomes.recv())
            .await
            .unwrap();
        assert!(
            matches!(
                done,
                Some(Feed::Done {
                    ticket: 5,
                    result: Err(DmError::Unavailable(_))
                })
            ),
            "{done:?}"
        );
    }

    #[test]
    fn answer_codes() {
        assert_eq!(outcome("2.04"), Some(Ok(())));
        assert_eq!(outcome("2.00"), Some(Ok(())));
        assert_eq!(outcome("4.05"), Some(Err(DmError::MethodNotAllowed)));
        assert!(matches!(outcome("4.00"), Some(Err(DmError::BadRequest(_)))));
        assert!(matches!(
            outcome("5.03"),
            Some(Err(DmError::Unavailable(_)))
        ));
        for bad in ["", "2", "2.0x", "3.00", "4.99", "204", "2.041"] {
            assert_eq!(outcome(bad), None, "{bad}");
        }
    }
}
