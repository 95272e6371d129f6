//! The object model: object and resource definitions, and the `Object` trait that
//! object modules implement.

pub mod ddf;
pub mod registry;
pub mod registry_connectivity;

use crate::path::Path;
use crate::value::{ResourceType, ResourceValue, Value};

/// Operations a resource allows, as in the registry's `Operations` element.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operations {
    None,
    R,
    W,
    RW,
    E,
}

impl Operations {
    pub fn readable(self) -> bool {
        matches!(self, Operations::R | Operations::RW)
    }
    pub fn writable(self) -> bool {
        matches!(self, Operations::W | Operations::RW)
    }
    pub fn executable(self) -> bool {
        self == Operations::E
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResourceDef {
    pub id: u16,
    pub name: &'static str,
    pub operations: Operations,
    pub multiple: bool,
    pub mandatory: bool,
    pub ty: ResourceType,
    /// The registry's range or enumeration text, empty when unconstrained.
    pub range: &'static str,
    pub units: &'static str,
}

#[derive(Debug)]
pub struct ObjectDef {
    pub id: u16,
    pub name: &'static str,
    /// Object version advertised at registration when it is not "1.0".
    pub version: &'static str,
    pub multiple: bool,
    pub mandatory: bool,
    pub resources: &'static [ResourceDef],
}

impl ObjectDef {
    pub fn resource(&self, id: u16) -> Option<&'static ResourceDef> {
        self.resources.iter().find(|r| r.id == id)
    }
}

/// Why a device-management operation failed; each maps to one CoAP response code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DmError {
    /// 4.00: the payload or arguments are malformed or out of range.
    BadRequest(String),
    /// 4.01: the server may not access this object.
    Unauthorized,
    /// 4.04: no such object, instance or resource.
    NotFound,
    /// 4.05: the operation is not allowed on this target.
    MethodNotAllowed,
    /// 4.06: the requested content format cannot represent the target.
    NotAcceptable,
    /// 4.15: the payload's content format is not supported.
    UnsupportedContentFormat,
    /// 5.00: a local failure (backend, storage).
    Internal(String),
    /// 4.13: the payload is larger than the target accepts (`max` bytes).
    TooLarge { max: u64 },
    /// 4.08: a streamed write's block does not continue what was received.
    Incomplete,
    /// 5.03: whoever carries the operation out (a local application) did not answer.
    Unavailable(String),
}

impl std::fmt::Display for DmError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DmError::BadRequest(why) => write!(f, "bad request: {why}"),
            DmError::Unauthorized => write!(f, "unauthorized"),
            DmError::NotFound => write!(f, "not found"),
            DmError::MethodNotAllowed => write!(f, "method not allowed"),
            DmError::NotAcceptable => write!(f, "not acceptable"),
            DmError::UnsupportedContentFormat => write!(f, "unsupported content format"),
            DmError::Internal(why) => write!(f, "internal error: {why}"),
            DmError::TooLarge { max } => write!(f, "larger than {max} bytes"),
            DmError::Incomplete => write!(f, "block does not continue the transfer"),
            DmError::Unavailable(why) => write!(f, "service unavailable: {why}"),
        }
    }
}

impl std::error::Error for DmError {}

/// Work an object hands to the outside world when it is written or executed. The engine
/// queues these for the daemon (`Engine::poll_action`); the CoAP response does not wait.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Execute /3/0/4.
    Reboot,
    /// Execute /3/0/5.
    FactoryReset,
    /// Write /3/0/13: set the system clock to these Unix seconds.
    SetTime(i64),
    /// Write /3/0/15: set the system time zone (IANA name).
    SetTimezone(String),
    /// Execute /1/x/8. Consumed by the engine: sends an Update to that server.
    UpdateRegistration { short_server_id: u16 },
    /// Execute /1/x/4. Consumed by the engine: de-registers for the Disable Timeout.
    DisableServer { short_server_id: u16 },
    /// Execute /1/x/9. Consumed by the engine: starts a client-initiated bootstrap.
    RequestBootstrap,
    /// Object 5: work for the firmware backend.
    Firmware(crate::objects::firmware::FirmwareAction),
    /// A Write or Execute of a resource bound to something outside the daemon (a file,
    /// a command). Its outcome is the response: the engine holds the response until
    /// `Engine::complete_action` reports it.
    Bound(BoundRequest),
    /// Objects 7, 10, 11: for the connectivity backend task.
    Connectivity(ConnectivityAction),
}

/// What a server asked of a bound resource.
#[derive(Debug, Clone, PartialEq)]
pub struct BoundRequest {
    /// Set by the engine when it holds the response; objects leave it 0.
    pub ticket: u64,
    pub path: Path,
    pub op: BoundOp,
}

#[derive(Debug, Clone, PartialEq)]
pub enum BoundOp {
    Write(Value),
    /// Execute with its arguments (Core TS 5.4.5 syntax, checked).
    Execute(String),
}

/// Work for the connectivity backend.
#[derive(Debug, Clone, PartialEq)]
pub enum ConnectivityAction {
    /// Execute /7/0/6: zero the statistics and collect from now on.
    StartStatistics,
    /// Execute /7/0/7: stop collecting, keep the figures.
    StopStatistics,
    /// Write /7/0/8: collection period in seconds, 0 for none.
    CollectionPeriod(u32),
    /// An enabled APN profile (object 11) was written: connect with its settings.
    Connect {
        profile: u16,
        settings: backends::modem::ApnSettings,
    },
    /// An APN profile was disabled or deleted while it was the active one: disconnect.
    Disconnect { profile: u16 },
    /// A server wrote a PSM or eDRX resource of object 10.
    PowerSaving(backends::modem::at::PowerSavingChange),
}

/// One piece of a streamed write (a Block1 upload delivered as it arrives).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Chunk<'a> {
    Data {
        /// Byte offset of `data` in the whole body.
        offset: u64,
        data: &'a [u8],
        /// This is the final piece.
        last: bool,
        /// The whole body's size, when the client announced it (Size1).
        size: Option<u64>,
    },
    /// The upload stopped (the next block did not come in time).
    Abort,
}

/// An LwM2M object: its definition and its instances. The engine checks operations,
/// types and paths against `def()` before calling in, so implementations only store
/// and act.
pub trait Object: Send {
    fn def(&self) -> &'static ObjectDef;

    /// Instance IDs in ascending order.
    fn instances(&self) -> Vec<u16>;

    /// The current value of a resource, `None` when the instance or resource is absent.
    fn read(&self, instance: u16, resource: u16) -> Option<ResourceValue>;

    /// Whether a resource exists in an instance (Discover lists it). Executable resources
    /// have no value to read, so objects that implement some say so by overriding this.
    fn has_resource(&self, instance: u16, resource: u16) -> bool {
        self.read(instance, resource).is_some()
    }

    /// Sets a writable resource (for multiple resources the whole set of instances).
    /// `by_server` is false when the value comes from the device itself (backends,
    /// configuration) rather than from an LwM2M server.
    fn write(
        &mut self,
        instance: u16,
        resource: u16,
        value: ResourceValue,
        by_server: bool,
    ) -> Result<Vec<Action>, DmError>;

    /// Whether Block1 writes of this resource are handed over piece by piece
    /// (`write_chunk`) instead of being reassembled in memory first.
    fn streams(&self, instance: u16, resource: u16) -> bool {
        let _ = (instance, resource);
        false
    }

    /// A piece of a streamed write (see `streams`). Pieces arrive in order; a piece at
    /// offset 0 starts the body over.
    fn write_chunk(
        &mut self,
        instance: u16,
        resource: u16,
        chunk: Chunk<'_>,
    ) -> Result<Vec<Action>, DmError> {
        let _ = (instance, resource, chunk);
        Err(DmError::MethodNotAllowed)
    }

    /// Executes a resource with the Execute arguments (Core TS 5.4.5 syntax, unparsed).
    fn execute(
        &mut self,
        instance: u16,
        resource: u16,
        args: &str,
    ) -> Result<Vec<Action>, DmError> {
        let _ = (instance, resource, args);
        Err(DmError::MethodNotAllowed)
    }

    /// Makes a resource absent again (a backend no longer knows its value). Objects
    /// whose values come from backends implement it.
    fn remove_value(&mut self, instance: u16, resource: u16) -> Result<(), DmError> {
        let _ = (instance, resource);
        Err(DmError::MethodNotAllowed)
    }

    /// Creates an empty instance; the engine then writes the Create payload into it.
    fn create(&mut self, instance: u16) -> Result<(), DmError> {
        let _ = instance;
        Err(DmError::MethodNotAllowed)
    }

    fn delete(&mut self, instance: u16) -> Result<(), DmError> {
        let _ = instance;
        Err(DmError::MethodNotAllowed)
    }

    /// Creates an instance on the device's own behalf (a local application), where the
    /// server may not.
    fn create_local(&mut self, instance: u16) -> Result<(), DmError> {
        let _ = instance;
        Err(DmError::MethodNotAllowed)
    }

    /// Deletes an instance on the device's own behalf.
    fn delete_local(&mut self, instance: u16) -> Result<(), DmError> {
        let _ = instance;
        Err(DmError::MethodNotAllowed)
    }
}
