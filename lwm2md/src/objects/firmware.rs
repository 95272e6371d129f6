//! Object 5, Firmware Update: the state machine of the Core TS (Idle → Downloading →
//! Downloaded → Updating → Idle).
//!
//! The object holds no file and runs no installer: a pushed package goes piece by piece
//! into a [`PackageSink`] (the staging file), and everything slow — checking a package,
//! downloading from a URI, installing — is a [`FirmwareAction`] for the backend, which
//! reports back by writing State, Update Result, Package Name and Version from the
//! device side (`by_server = false`).

use std::collections::BTreeMap;
use std::io;

use crate::model::{registry, Action, Chunk, DmError, Object, ObjectDef};
use crate::objects::device::Clock;
use crate::value::{ResourceValue, Value};

pub const PACKAGE: u16 = 0;
pub const PACKAGE_URI: u16 = 1;
pub const UPDATE: u16 = 2;
pub const STATE: u16 = 3;
pub const UPDATE_RESULT: u16 = 5;
pub const PKG_NAME: u16 = 6;
pub const PKG_VERSION: u16 = 7;
pub const PROTOCOL_SUPPORT: u16 = 8;
pub const DELIVERY_METHOD: u16 = 9;
pub const CANCEL: u16 = 10;
pub const SEVERITY: u16 = 11;
pub const LAST_STATE_CHANGE_TIME: u16 = 12;
pub const MAXIMUM_DEFER_PERIOD: u16 = 13;

/// Longest Package URI (the registry's range 0..255).
const MAX_URI: usize = 255;

/// State (/5/0/3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Idle = 0,
    Downloading = 1,
    Downloaded = 2,
    Updating = 3,
}

impl State {
    pub fn from_code(code: i64) -> Option<State> {
        Some(match code {
            0 => State::Idle,
            1 => State::Downloading,
            2 => State::Downloaded,
            3 => State::Updating,
            _ => return None,
        })
    }
}

/// Update Result (/5/0/5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpdateResult {
    Initial = 0,
    Success = 1,
    NotEnoughSpace = 2,
    OutOfMemory = 3,
    ConnectionLost = 4,
    IntegrityCheckFailure = 5,
    UnsupportedPackage = 6,
    InvalidUri = 7,
    UpdateFailed = 8,
    UnsupportedProtocol = 9,
    Cancelled = 10,
    Deferred = 11,
}

impl UpdateResult {
    pub fn from_code(code: i64) -> Option<UpdateResult> {
        use UpdateResult::*;
        Some(match code {
            0 => Initial,
            1 => Success,
            2 => NotEnoughSpace,
            3 => OutOfMemory,
            4 => ConnectionLost,
            5 => IntegrityCheckFailure,
            6 => UnsupportedPackage,
            7 => InvalidUri,
            8 => UpdateFailed,
            9 => UnsupportedProtocol,
            10 => Cancelled,
            11 => Deferred,
            _ => return None,
        })
    }

    /// The result a failed local write of the package means.
    pub fn from_io(e: &io::Error) -> UpdateResult {
        match e.kind() {
            io::ErrorKind::StorageFull
            | io::ErrorKind::QuotaExceeded
            | io::ErrorKind::FileTooLarge => UpdateResult::NotEnoughSpace,
            io::ErrorKind::OutOfMemory => UpdateResult::OutOfMemory,
            _ => UpdateResult::UpdateFailed,
        }
    }
}

/// Firmware Update Protocol Support (/5/0/8) values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Protocol {
    Coap = 0,
    Coaps = 1,
    Http = 2,
    Https = 3,
}

impl Protocol {
    fn of_scheme(scheme: &str) -> Option<Protocol> {
        Some(match scheme.to_ascii_lowercase().as_str() {
            "coap" => Protocol::Coap,
            "coaps" => Protocol::Coaps,
            "http" => Protocol::Http,
            "https" => Protocol::Https,
            _ => return None,
        })
    }
}

/// Where a pushed package is written as it arrives (the staging file, or a test's
/// buffer). Writes are sequential; `begin` starts a package over.
pub trait PackageSink: Send {
    fn begin(&mut self) -> io::Result<()>;
    fn write_at(&mut self, offset: u64, data: &[u8]) -> io::Result<()>;
    /// The package is complete at `len` bytes: make it durable.
    fn finish(&mut self, len: u64) -> io::Result<()>;
    /// Drops whatever was written.
    fn discard(&mut self);
}

/// Work for the firmware backend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FirmwareAction {
    /// A pushed package is stored in full (`len` bytes): check it, then report State 2
    /// (Downloaded) with its name and version, or State 0 with Update Result 5 or 6.
    Check { len: u64 },
    /// Download the package from a URI (pull), then check it as above.
    Fetch { uri: String },
    /// Execute Update: install the downloaded package.
    Install,
    /// The package was dropped (reset or Cancel): stop any transfer, clean the staging
    /// area.
    Discard,
    /// The server set Severity or Maximum Defer Period: keep them across restarts.
    Policy { severity: i64, max_defer: u64 },
}

pub struct Firmware {
    clock: Clock,
    sink: Box<dyn PackageSink>,
    protocols: Vec<Protocol>,
    max_size: u64,
    state: State,
    result: UpdateResult,
    uri: String,
    name: String,
    version: String,
    severity: i64,
    last_change: i64,
    max_defer: u64,
    /// Bytes of a pushed package received so far, while one is being pushed.
    pushed: Option<u64>,
    /// The server dropped the package (reset or Cancel) and nothing started since: a
    /// report the backend sends about it afterwards (a check that was running) is stale.
    dropped: bool,
}

impl Firmware {
    /// `protocols`: the URI schemes a pull can use (none: push only); `max_size`: the
    /// largest package accepted, in bytes.
    pub fn new(
        clock: Clock,
        sink: Box<dyn PackageSink>,
        mut protocols: Vec<Protocol>,
        max_size: u64,
    ) -> Firmware {
        protocols.sort();
        protocols.dedup();
        Firmware {
            last_change: clock(),
            clock,
            sink,
            protocols,
            max_size,
            state: State::Idle,
            result: UpdateResult::Initial,
            uri: String::new(),
            name: String::new(),
            version: String::new(),
            // The registry's default: Mandatory.
            severity: 1,
            max_defer: 0,
            pushed: None,
            dropped: false,
        }
    }

    pub fn state(&self) -> State {
        self.state
    }

    pub fn result(&self) -> UpdateResult {
        self.result
    }

    fn set_state(&mut self, state: State) {
        if state != self.state {
            self.state = state;
            self.last_change = (self.clock)();
        }
    }

    /// Back to Idle with a result; the package, if any, is dropped.
    fn reset(&mut self, result: UpdateResult) -> Vec<Action> {
        self.dropped = true;
        self.sink.discard();
        self.pushed = None;
        self.uri.clear();
        self.name.clear();
        self.version.clear();
        self.result = result;
        self.set_state(State::Idle);
        vec![Action::Firmware(FirmwareAction::Discard)]
    }

    /// A push that failed locally: Idle with the result the failure means.
    fn push_failed(&mut self, result: UpdateResult) {
        self.sink.discard();
        self.pushed = None;
        self.result = result;
        self.set_state(State::Idle);
    }

    fn write_uri(&mut self, uri: &str) -> Result<Vec<Action>, DmError> {
        if uri.is_empty() {
            return self.reset_by_server();
        }
        if self.state != State::Idle {
            return Err(DmError::MethodNotAllowed);
        }
        let Some((scheme, rest)) = uri.split_once("://") else {
            self.result = UpdateResult::InvalidUri;
            return Ok(Vec::new());
        };
        let host_ok = rest
            .split(['/', '?', '#'])
            .next()
            .is_some_and(|authority| !authority.is_empty());
        let valid = uri.len() <= MAX_URI
            && host_ok
            && !scheme.is_empty()
            && scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
            && uri.chars().all(|c| c.is_ascii_graphic());
        if !valid {
            self.result = UpdateResult::InvalidUri;
            return Ok(Vec::new());
        }
        match Protocol::of_scheme(scheme) {
            Some(p) if self.protocols.contains(&p) => {}
            _ => {
                self.result = UpdateResult::UnsupportedProtocol;
                return Ok(Vec::new());
            }
        }
        self.uri = uri.to_string();
        self.result = UpdateResult::Initial;
        self.dropped = false;
        self.set_state(State::Downloading);
        Ok(vec![Action::Firmware(FirmwareAction::Fetch {
            uri: uri.to_string(),
        })])
    }

    fn reset_by_server(&mut self) -> Result<Vec<Action>, DmError> {
        // An installation under way cannot be taken back.
        if self.state == State::Updating {
            return Err(DmError::MethodNotAllowed);
        }
        Ok(self.reset(UpdateResult::Initial))
    }

    /// A piece of a pushed package.
    fn push(
        &mut self,
        offset: u64,
        data: &[u8],
        last: bool,
        size: Option<u64>,
    ) -> Result<Vec<Action>, DmError> {
        let len = u64::try_from(data.len()).unwrap_or(u64::MAX);
        if offset == 0 {
            // A new package, or the client starting its upload over.
            if last && (data.is_empty() || data == [0]) {
                return self.reset_by_server();
            }
            let restart = self.state == State::Downloading && self.pushed.is_some();
            if self.state != State::Idle && !restart {
                return Err(DmError::MethodNotAllowed);
            }
            if size.is_some_and(|s| s > self.max_size) {
                self.push_failed(UpdateResult::NotEnoughSpace);
                return Err(DmError::TooLarge { max: self.max_size });
            }
            if let Err(e) = self.sink.begin() {
                self.push_failed(UpdateResult::from_io(&e));
                return Err(DmError::Internal(format!("staging the package: {e}")));
            }
            self.name.clear();
            self.version.clear();
            self.uri.clear();
            self.result = UpdateResult::Initial;
            self.dropped = false;
            self.pushed = Some(0);
            self.set_state(State::Downloading);
        } else if self.state != State::Downloading || self.pushed != Some(offset) {
            return Err(DmError::Incomplete);
        }
        let end = offset.saturating_add(len);
        if end > self.max_size {
            self.push_failed(UpdateResult::NotEnoughSpace);
            return Err(DmError::TooLarge { max: self.max_size });
        }
        if let Err(e) = self.sink.write_at(offset, data) {
            self.push_failed(UpdateResult::from_io(&e));
            return Err(DmError::Internal(format!("staging the package: {e}")));
        }
        self.pushed = Some(end);
        if !last {
            return Ok(Vec::new());
        }
        if let Err(e) = self.sink.finish(end) {
            self.push_failed(UpdateResult::from_io(&e));
            return Err(DmError::Internal(format!("staging the package: {e}")));
        }
        self.pushed = None;
        // Still Downloading until the backend has checked the package.
        Ok(vec![Action::Firmware(FirmwareAction::Check { len: end })])
    }

    fn policy(&self) -> Vec<Action> {
        vec![Action::Firmware(FirmwareAction::Policy {
            severity: self.severity,
            max_defer: self.max_defer,
        })]
    }

    /// A report from the backend.
    fn device_write(&mut self, resource: u16, value: Value) -> Result<(), DmError> {
        let bad = || DmError::BadRequest(format!("bad value for /5/0/{resource}"));
        if self.dropped && matches!(resource, STATE | UPDATE_RESULT | PKG_NAME | PKG_VERSION) {
            tracing::debug!("report on /5/0/{resource} about a dropped package ignored");
            return Ok(());
        }
        match (resource, value) {
            (STATE, Value::Integer(n)) => {
                let s = State::from_code(n).ok_or_else(bad)?;
                if s != State::Downloading {
                    self.pushed = None;
                }
                self.set_state(s);
            }
            (UPDATE_RESULT, Value::Integer(n)) => {
                self.result = UpdateResult::from_code(n).ok_or_else(bad)?;
            }
            (PKG_NAME, Value::String(s)) => self.name = s,
            (PKG_VERSION, Value::String(s)) => self.version = s,
            (PACKAGE_URI, Value::String(s)) => self.uri = s,
            (SEVERITY, Value::Integer(n)) => self.severity = n,
            (MAXIMUM_DEFER_PERIOD, Value::Unsigned(n)) => self.max_defer = n,
            (LAST_STATE_CHANGE_TIME, Value::Time(t)) => self.last_change = t,
            _ => return Err(bad()),
        }
        Ok(())
    }
}

impl Object for Firmware {
    fn def(&self) -> &'static ObjectDef {
        &registry::FIRMWARE_UPDATE
    }

    fn instances(&self) -> Vec<u16> {
        vec![0]
    }

    fn read(&self, instance: u16, resource: u16) -> Option<ResourceValue> {
        if instance != 0 {
            return None;
        }
        let v = match resource {
            PACKAGE_URI => Value::String(self.uri.clone()),
            STATE => Value::Integer(self.state as i64),
            UPDATE_RESULT => Value::Integer(self.result as i64),
            PKG_NAME => Value::String(self.name.clone()),
            PKG_VERSION => Value::String(self.version.clone()),
            PROTOCOL_SUPPORT if !self.protocols.is_empty() => {
                let map: BTreeMap<u16, Value> = (0u16..)
                    .zip(self.protocols.iter().map(|&p| Value::Integer(p as i64)))
                    .collect();
                return Some(ResourceValue::Multiple(map));
            }
            DELIVERY_METHOD => Value::Integer(if self.protocols.is_empty() { 1 } else { 2 }),
            SEVERITY => Value::Integer(self.severity),
            LAST_STATE_CHANGE_TIME => Value::Time(self.last_change),
            MAXIMUM_DEFER_PERIOD => Value::Unsigned(self.max_defer),
            _ => return None,
        };
        Some(ResourceValue::Single(v))
    }

    fn has_resource(&self, instance: u16, resource: u16) -> bool {
        match resource {
            PACKAGE | UPDATE | CANCEL => instance == 0,
            _ => self.read(instance, resource).is_some(),
        }
    }

    fn write(
        &mut self,
        instance: u16,
        resource: u16,
        value: ResourceValue,
        by_server: bool,
    ) -> Result<Vec<Action>, DmError> {
        if instance != 0 {
            return Err(DmError::NotFound);
        }
        let ResourceValue::Single(value) = value else {
            return Err(DmError::BadRequest(format!(
                "/5/0/{resource} is a single-instance resource"
            )));
        };
        if !by_server {
            self.device_write(resource, value)?;
            return Ok(Vec::new());
        }
        match (resource, value) {
            (PACKAGE, Value::Opaque(data)) => self.push(0, &data, true, None),
            (PACKAGE_URI, Value::String(uri)) => self.write_uri(&uri),
            (SEVERITY, Value::Integer(n)) if (0..=2).contains(&n) => {
                self.severity = n;
                Ok(self.policy())
            }
            (SEVERITY, Value::Integer(n)) => Err(DmError::BadRequest(format!(
                "severity {n} is not 0, 1 or 2"
            ))),
            (MAXIMUM_DEFER_PERIOD, Value::Unsigned(n)) => {
                self.max_defer = n;
                Ok(self.policy())
            }
            _ => Err(DmError::MethodNotAllowed),
        }
    }

    fn streams(&self, instance: u16, resource: u16) -> bool {
        instance == 0 && resource == PACKAGE
    }

    fn write_chunk(
        &mut self,
        instance: u16,
        resource: u16,
        chunk: Chunk<'_>,
    ) -> Result<Vec<Action>, DmError> {
        if !self.streams(instance, resource) {
            return Err(DmError::MethodNotAllowed);
        }
        match chunk {
            Chunk::Data {
                offset,
                data,
                last,
                size,
            } => self.push(offset, data, last, size),
            Chunk::Abort => {
                if self.state == State::Downloading && self.pushed.is_some() {
                    tracing::warn!("firmware push stopped midway");
                    self.push_failed(UpdateResult::ConnectionLost);
                }
                Ok(Vec::new())
            }
        }
    }

    fn execute(
        &mut self,
        instance: u16,
        resource: u16,
        _args: &str,
    ) -> Result<Vec<Action>, DmError> {
        if instance != 0 {
            return Err(DmError::NotFound);
        }
        match resource {
            UPDATE if self.state == State::Downloaded => {
                self.result = UpdateResult::Initial;
                self.set_state(State::Updating);
                Ok(vec![Action::Firmware(FirmwareAction::Install)])
            }
            CANCEL if matches!(self.state, State::Downloading | State::Downloaded) => {
                Ok(self.reset(UpdateResult::Cancelled))
            }
            UPDATE | CANCEL => Err(DmError::MethodNotAllowed),
            _ => Err(DmError::NotFound),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    fn clock() -> i64 {
        1_700_000_000
    }

    /// A sink that keeps the package in memory and can be made to fail.
    #[derive(Default)]
    struct Staged {
        data: Vec<u8>,
        finished: Option<u64>,
        discarded: usize,
        full_at: Option<u64>,
    }

    #[derive(Clone, Default)]
    struct MemSink(Arc<Mutex<Staged>>);

    impl PackageSink for MemSink {
        fn begin(&mut self) -> io::Result<()> {
            let mut s = self.0.lock().unwrap();
            s.data.clear();
            s.finished = None;
            Ok(())
        }
        fn write_at(&mut self, offset: u64, data: &[u8]) -> io::Result<()> {
            let mut s = self.0.lock().unwrap();
            let end = offset + data.len() as u64;
            if s.full_at.is_some_and(|f| end > f) {
                return Err(io::Error::from(io::ErrorKind::StorageFull));
            }
            assert_eq!(offset, s.data.len() as u64);
            s.data.extend_from_slice(data);
            Ok(())
        }
        fn finish(&mut self, len: u64) -> io::Result<()> {
            self.0.lock().unwrap().finished = Some(len);
            Ok(())
        }
        fn discard(&mut self) {
            let mut s = self.0.lock().unwrap();
            s.data.clear();
            s.discarded += 1;
        }
    }

    fn fw(protocols: Vec<Protocol>) -> (Firmware, MemSink) {
        let sink = MemSink::default();
        let f = Firmware::new(clock, Box::new(sink.clone()), protocols, 1000);
        (f, sink)
    }

    fn int(f: &Firmware, r: u16) -> i64 {
        match f.read(0, r) {
            Some(ResourceValue::Single(Value::Integer(n))) => n,
            other => panic!("/5/0/{r}: {other:?}"),
        }
    }

    fn state_result(f: &Firmware) -> (i64, i64) {
        (int(f, STATE), int(f, UPDATE_RESULT))
    }

    fn server_write(f: &mut Firmware, r: u16, v: Value) -> Result<Vec<Action>, DmError> {
        f.write(0, r, ResourceValue::Single(v), true)
    }

    fn report(f: &mut Firmware, r: u16, v: Value) {
        f.write(0, r, ResourceValue::Single(v), false).unwrap();
    }

    fn chunk(
        f: &mut Firmware,
        offset: u64,
        data: &[u8],
        last: bool,
    ) -> Result<Vec<Action>, DmError> {
        f.write_chunk(
            0,
            PACKAGE,
            Chunk::Data {
                offset,
                data,
                last,
                size: None,
            },
        )
    }

    fn fw_action(a: FirmwareAction) -> Vec<Action> {
        vec![Action::Firmware(a)]
    }

    /// Pushes a package and has the backend accept it.
    fn downloaded(f: &mut Firmware) {
        chunk(f, 0, &[1; 16], false).unwrap();
        assert_eq!(
            chunk(f, 16, &[2; 4], true).unwrap(),
            fw_action(FirmwareAction::Check { len: 20 })
        );
        assert_eq!(state_result(f), (1, 0));
        report(f, PKG_NAME, Value::String("rootfs".into()));
        report(f, PKG_VERSION, Value::String("2.0".into()));
        report(f, STATE, Value::Integer(2));
    }

    #[test]
    fn push_update_success_cycle() {
        let (mut f, sink) = fw(vec![]);
        assert_eq!(state_result(&f), (0, 0));
        downloaded(&mut f);
        assert_eq!(
            sink.0.lock().unwrap().data,
            [[1; 16].as_slice(), &[2; 4]].concat()
        );
        assert_eq!(sink.0.lock().unwrap().finished, Some(20));
        assert_eq!(state_result(&f), (2, 0));
        assert_eq!(
            f.read(0, PKG_VERSION),
            Some(ResourceValue::Single(Value::String("2.0".into())))
        );
        assert_eq!(
            f.execute(0, UPDATE, "").unwrap(),
            fw_action(FirmwareAction::Install)
        );
        assert_eq!(state_result(&f), (3, 0));
        // After the reboot and the commit, the backend reports success.
        report(&mut f, UPDATE_RESULT, Value::Integer(1));
        report(&mut f, STATE, Value::Integer(0));
        assert_eq!(state_result(&f), (0, 1));
    }

    #[test]
    fn update_is_only_accepted_in_downloaded() {
        let (mut f, _) = fw(vec![]);
        assert_eq!(f.execute(0, UPDATE, ""), Err(DmError::MethodNotAllowed));
        chunk(&mut f, 0, &[1; 16], false).unwrap();
        assert_eq!(f.execute(0, UPDATE, ""), Err(DmError::MethodNotAllowed));
        chunk(&mut f, 16, &[1; 1], true).unwrap();
        // Checked by the backend yet: still Downloading.
        assert_eq!(f.execute(0, UPDATE, ""), Err(DmError::MethodNotAllowed));
        report(&mut f, STATE, Value::Integer(2));
        f.execute(0, UPDATE, "").unwrap();
        assert_eq!(f.execute(0, UPDATE, ""), Err(DmError::MethodNotAllowed));
    }

    #[test]
    fn failed_update_returns_to_downloaded_with_result_8() {
        let (mut f, _) = fw(vec![]);
        downloaded(&mut f);
        f.execute(0, UPDATE, "").unwrap();
        report(&mut f, UPDATE_RESULT, Value::Integer(8));
        report(&mut f, STATE, Value::Integer(2));
        assert_eq!(state_result(&f), (2, 8));
        // And may be tried again.
        f.execute(0, UPDATE, "").unwrap();
        assert_eq!(state_result(&f), (3, 0));
    }

    #[test]
    fn empty_uri_or_null_package_resets_to_idle() {
        for reset in [
            (PACKAGE_URI, Value::String(String::new())),
            (PACKAGE, Value::Opaque(vec![0])),
            (PACKAGE, Value::Opaque(Vec::new())),
        ] {
            let (mut f, sink) = fw(vec![]);
            downloaded(&mut f);
            let discarded = sink.0.lock().unwrap().discarded;
            let actions = server_write(&mut f, reset.0, reset.1.clone()).unwrap();
            assert_eq!(actions, fw_action(FirmwareAction::Discard), "{reset:?}");
            assert_eq!(state_result(&f), (0, 0));
            assert_eq!(sink.0.lock().unwrap().discarded, discarded + 1);
            assert_eq!(
                f.read(0, PKG_NAME),
                Some(ResourceValue::Single(Value::String(String::new())))
            );
            // From Idle, after a failure: the result goes back to 0, nothing starts.
            chunk(&mut f, 0, &[1; 16], false).unwrap();
            f.write_chunk(0, PACKAGE, Chunk::Abort).unwrap();
            assert_eq!(state_result(&f), (0, 4));
            assert_eq!(
                server_write(&mut f, reset.0, reset.1.clone()).unwrap(),
                fw_action(FirmwareAction::Discard)
            );
            assert_eq!(state_result(&f), (0, 0));
        }
        // A NULL byte sent block-wise as a single block resets too.
        let (mut f, _) = fw(vec![]);
        chunk(&mut f, 0, &[0], true).unwrap();
        assert_eq!(state_result(&f), (0, 0));
    }

    #[test]
    fn reports_about_a_dropped_package_are_ignored() {
        let (mut f, _) = fw(vec![]);
        chunk(&mut f, 0, &[1; 16], true).unwrap();
        // The server resets while the backend checks the package...
        server_write(&mut f, PACKAGE_URI, Value::String(String::new())).unwrap();
        // ...and the check's result arrives afterwards.
        report(&mut f, PKG_NAME, Value::String("stale".into()));
        report(&mut f, STATE, Value::Integer(2));
        assert_eq!(state_result(&f), (0, 0));
        assert_eq!(
            f.read(0, PKG_NAME),
            Some(ResourceValue::Single(Value::String(String::new())))
        );
        // A new package is reported on again.
        downloaded(&mut f);
        assert_eq!(state_result(&f), (2, 0));
        // As after a Cancel.
        f.execute(0, CANCEL, "").unwrap();
        report(&mut f, UPDATE_RESULT, Value::Integer(5));
        assert_eq!(state_result(&f), (0, 10));
    }

    #[test]
    fn no_reset_while_updating() {
        let (mut f, _) = fw(vec![]);
        downloaded(&mut f);
        f.execute(0, UPDATE, "").unwrap();
        assert_eq!(
            server_write(&mut f, PACKAGE_URI, Value::String(String::new())),
            Err(DmError::MethodNotAllowed)
        );
        assert_eq!(f.execute(0, CANCEL, ""), Err(DmError::MethodNotAllowed));
        assert_eq!(state_result(&f), (3, 0));
    }

    #[test]
    fn cancel_gives_result_10() {
        let (mut f, _) = fw(vec![Protocol::Http]);
        assert_eq!(f.execute(0, CANCEL, ""), Err(DmError::MethodNotAllowed));
        server_write(&mut f, PACKAGE_URI, Value::String("http://h/fw.img".into())).unwrap();
        assert_eq!(state_result(&f), (1, 0));
        assert_eq!(
            f.execute(0, CANCEL, "").unwrap(),
            fw_action(FirmwareAction::Discard)
        );
        assert_eq!(state_result(&f), (0, 10));
        let (mut f, _) = fw(vec![]);
        downloaded(&mut f);
        f.execute(0, CANCEL, "").unwrap();
        assert_eq!(state_result(&f), (0, 10));
    }

    #[test]
    fn uri_results_7_and_9() {
        let (mut f, _) = fw(vec![Protocol::Coap, Protocol::Http]);
        for bad in ["no-scheme", "http://", "http:// spaces in/x", "://x/y"] {
            assert_eq!(
                server_write(&mut f, PACKAGE_URI, Value::String(bad.into())).unwrap(),
                vec![],
                "{bad}"
            );
            assert_eq!(state_result(&f), (0, 7), "{bad}");
        }
        let long = format!("http://h/{}", "x".repeat(300));
        server_write(&mut f, PACKAGE_URI, Value::String(long)).unwrap();
        assert_eq!(state_result(&f), (0, 7));
        for unsupported in ["ftp://h/x", "https://h/x", "coaps://h/x"] {
            server_write(&mut f, PACKAGE_URI, Value::String(unsupported.into())).unwrap();
            assert_eq!(state_result(&f), (0, 9), "{unsupported}");
        }
        assert_eq!(
            server_write(&mut f, PACKAGE_URI, Value::String("coap://[::1]/fw".into())).unwrap(),
            fw_action(FirmwareAction::Fetch {
                uri: "coap://[::1]/fw".into()
            })
        );
        assert_eq!(state_result(&f), (1, 0));
        // A second download is refused while one runs.
        assert_eq!(
            server_write(&mut f, PACKAGE_URI, Value::String("coap://h/2".into())),
            Err(DmError::MethodNotAllowed)
        );
        // The download dies: connection lost.
        report(&mut f, UPDATE_RESULT, Value::Integer(4));
        report(&mut f, STATE, Value::Integer(0));
        assert_eq!(state_result(&f), (0, 4));
    }

    #[test]
    fn protocols_and_delivery_method() {
        let (f, _) = fw(vec![]);
        assert_eq!(int(&f, DELIVERY_METHOD), 1);
        assert_eq!(f.read(0, PROTOCOL_SUPPORT), None);
        let (f, _) = fw(vec![Protocol::Https, Protocol::Coap, Protocol::Https]);
        assert_eq!(int(&f, DELIVERY_METHOD), 2);
        let expected: BTreeMap<u16, Value> =
            [(0, Value::Integer(0)), (1, Value::Integer(3))].into();
        assert_eq!(
            f.read(0, PROTOCOL_SUPPORT),
            Some(ResourceValue::Multiple(expected))
        );
        assert!(f.has_resource(0, UPDATE) && f.has_resource(0, CANCEL));
    }

    #[test]
    fn pushed_package_too_large_or_disk_full_gives_result_2() {
        let (mut f, _) = fw(vec![]);
        let announced = f.write_chunk(
            0,
            PACKAGE,
            Chunk::Data {
                offset: 0,
                data: &[0; 16],
                last: false,
                size: Some(1001),
            },
        );
        assert_eq!(announced, Err(DmError::TooLarge { max: 1000 }));
        assert_eq!(state_result(&f), (0, 2));
        // Not announced: found out when the limit is crossed.
        let mut offset = 0;
        let outcome = loop {
            match chunk(&mut f, offset, &[7; 256], false) {
                Ok(_) => offset += 256,
                Err(e) => break e,
            }
        };
        assert_eq!(outcome, DmError::TooLarge { max: 1000 });
        assert_eq!(offset, 768);
        assert_eq!(state_result(&f), (0, 2));

        let (mut f, sink) = fw(vec![]);
        sink.0.lock().unwrap().full_at = Some(32);
        chunk(&mut f, 0, &[1; 16], false).unwrap();
        chunk(&mut f, 16, &[1; 16], false).unwrap();
        assert!(matches!(
            chunk(&mut f, 32, &[1; 16], false),
            Err(DmError::Internal(_))
        ));
        assert_eq!(state_result(&f), (0, 2));
        assert!(sink.0.lock().unwrap().data.is_empty());
    }

    #[test]
    fn pushed_blocks_must_continue_the_package() {
        let (mut f, _) = fw(vec![]);
        // Nothing started: a later block has nothing to continue.
        assert_eq!(chunk(&mut f, 16, &[1; 16], false), Err(DmError::Incomplete));
        chunk(&mut f, 0, &[1; 16], false).unwrap();
        assert_eq!(chunk(&mut f, 48, &[1; 16], false), Err(DmError::Incomplete));
        // The client starts over.
        chunk(&mut f, 0, &[2; 16], false).unwrap();
        chunk(&mut f, 16, &[2; 16], true).unwrap();
        report(&mut f, STATE, Value::Integer(2));
        // A new push is refused until the package is used or dropped.
        assert_eq!(
            chunk(&mut f, 0, &[3; 16], true),
            Err(DmError::MethodNotAllowed)
        );
    }

    #[test]
    fn stalled_push_gives_result_4() {
        let (mut f, _) = fw(vec![]);
        chunk(&mut f, 0, &[1; 16], false).unwrap();
        f.write_chunk(0, PACKAGE, Chunk::Abort).unwrap();
        assert_eq!(state_result(&f), (0, 4));
    }

    #[test]
    fn integrity_failure_reported_by_the_backend_returns_to_idle() {
        let (mut f, _) = fw(vec![]);
        chunk(&mut f, 0, &[1; 16], true).unwrap();
        report(&mut f, UPDATE_RESULT, Value::Integer(5));
        report(&mut f, STATE, Value::Integer(0));
        assert_eq!(state_result(&f), (0, 5));
        // A new push may follow.
        chunk(&mut f, 0, &[1; 16], true).unwrap();
        assert_eq!(state_result(&f), (1, 0));
        report(&mut f, UPDATE_RESULT, Value::Integer(6));
        report(&mut f, STATE, Value::Integer(0));
        assert_eq!(state_result(&f), (0, 6));
        // Deferred: the package stays, the result says why nothing happened.
        downloaded(&mut f);
        f.execute(0, UPDATE, "").unwrap();
        report(&mut f, UPDATE_RESULT, Value::Integer(11));
        report(&mut f, STATE, Value::Integer(2));
        assert_eq!(state_result(&f), (2, 11));
    }

    #[test]
    fn severity_and_defer_period() {
        let (mut f, _) = fw(vec![]);
        assert_eq!(int(&f, SEVERITY), 1);
        // Each change goes to the runner, which keeps them across restarts.
        assert_eq!(
            server_write(&mut f, SEVERITY, Value::Integer(0)).unwrap(),
            fw_action(FirmwareAction::Policy {
                severity: 0,
                max_defer: 0
            })
        );
        assert_eq!(int(&f, SEVERITY), 0);
        assert!(server_write(&mut f, SEVERITY, Value::Integer(3)).is_err());
        assert_eq!(
            server_write(&mut f, MAXIMUM_DEFER_PERIOD, Value::Unsigned(3600)).unwrap(),
            fw_action(FirmwareAction::Policy {
                severity: 0,
                max_defer: 3600
            })
        );
        assert_eq!(
            f.read(0, MAXIMUM_DEFER_PERIOD),
            Some(ResourceValue::Single(Value::Unsigned(3600)))
        );
        // Read-only resources stay the device's.
        assert_eq!(
            server_write(&mut f, STATE, Value::Integer(2)),
            Err(DmError::MethodNotAllowed)
        );
    }

    #[test]
    fn last_state_change_time_follows_state_changes() {
        static NOW: std::sync::atomic::AtomicI64 = std::sync::atomic::AtomicI64::new(100);
        fn ticking() -> i64 {
            NOW.load(std::sync::atomic::Ordering::SeqCst)
        }
        let mut f = Firmware::new(ticking, Box::new(MemSink::default()), vec![], 1000);
        let t = |f: &Firmware| f.read(0, LAST_STATE_CHANGE_TIME);
        assert_eq!(t(&f), Some(ResourceValue::Single(Value::Time(100))));
        NOW.store(200, std::sync::atomic::Ordering::SeqCst);
        chunk(&mut f, 0, &[1; 16], false).unwrap();
        assert_eq!(t(&f), Some(ResourceValue::Single(Value::Time(200))));
        NOW.store(300, std::sync::atomic::Ordering::SeqCst);
        // No change of state, no new time.
        chunk(&mut f, 16, &[1; 16], false).unwrap();
        assert_eq!(t(&f), Some(ResourceValue::Single(Value::Time(200))));
    }
}
