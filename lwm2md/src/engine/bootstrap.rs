//! The bootstrap interface (Core TS §6.1, Transport TS §6.1): Bootstrap-Request to the
//! bootstrap account, then Bootstrap-Write, -Read, -Discover and -Delete from the
//! bootstrap server until its Bootstrap-Finish; the server accounts it leaves behind are
//! checked and registered with.
//!
//! With the Bootstrap-Pack (Core TS 1.2 §6.1.7.7, enabled by the daemon's configuration)
//! the client first asks `GET /bspack?ep=` and receives the whole provisioning as one
//! SenML pack, applied and checked as a Bootstrap-Finish would be; a bootstrap server
//! that has no such resource (4.04, 4.05) gets the classic Bootstrap-Request instead.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use coap_lite::{CoapOption, MessageClass, Packet, RequestType, ResponseType};

use super::dm::{self, error_code};
use super::options::{add_string_options, encode_uint, string_options, uint_option};
use super::registration::Session;
use super::{Engine, Event};
use crate::coap::block::{block2, set_block2, BlockOption};
use crate::coap::{IncomingRequest, RequestId};
use crate::codec::{self, ContentFormat, Record};
use crate::config::{parse_server_uri, Scheme};
use crate::dtls::{CertificateUsage, Certificates, Credentials, RawPublicKey};
use crate::model::{DmError, Object};
use crate::objects::{security, server};
use crate::path::Path;
use crate::value::{ResourceType, ResourceValue, Value};

/// The wait before a new Bootstrap-Request after a failed bootstrap, doubling up to the
/// maximum.
pub const FIRST_RETRY: Duration = Duration::from_secs(60);
pub const MAX_RETRY: Duration = Duration::from_secs(3600);

/// The Access Control object.
const ACCESS_CONTROL: u16 = 2;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Not bootstrapping.
    Idle,
    /// A Bootstrap-Request is sent at this instant.
    Due(Instant),
    /// `POST /bs` (or `GET /bspack` when `pack`) awaits its answer.
    Requesting {
        id: RequestId,
        peer: SocketAddr,
        pack: bool,
    },
    /// The bootstrap server is provisioning; without Bootstrap-Finish by `deadline` the
    /// bootstrap has failed.
    Provisioning { peer: SocketAddr, deadline: Instant },
}

#[derive(Debug)]
pub struct Bootstrap {
    pub phase: Phase,
    retry_delay: Duration,
    /// When the bootstrap account is purged (Bootstrap-Server Account Timeout, /0/x/12).
    purge_at: Option<Instant>,
    /// Objects 0, 1 and 2 as they were before the bootstrap server started writing:
    /// put back when the bootstrap fails, so that no partial provisioning stays.
    snapshot: Option<Vec<Record>>,
    /// Ask for a Bootstrap-Pack before sending a Bootstrap-Request.
    pub pack: bool,
    /// The blocks of a Bootstrap-Pack received so far (Block2).
    pack_body: Vec<u8>,
    /// The Access Control the factory bootstrap (the configuration) grants, until a
    /// bootstrap server provisions its own.
    pub factory_acl: Option<super::access::FactoryAcl>,
}

impl Default for Bootstrap {
    fn default() -> Self {
        Bootstrap {
            phase: Phase::Idle,
            retry_delay: FIRST_RETRY,
            purge_at: None,
            snapshot: None,
            pack: false,
            pack_body: Vec::new(),
            factory_acl: None,
        }
    }
}

impl Bootstrap {
    pub fn is_active(&self) -> bool {
        self.phase != Phase::Idle
    }

    pub fn deadline(&self) -> Option<Instant> {
        let phase = match self.phase {
            Phase::Due(t) => Some(t),
            Phase::Provisioning { deadline, .. } => Some(deadline),
            _ => None,
        };
        phase.into_iter().chain(self.purge_at).min()
    }

    fn peer(&self) -> Option<SocketAddr> {
        match self.phase {
            Phase::Requesting { peer, .. } | Phase::Provisioning { peer, .. } => Some(peer),
            _ => None,
        }
    }
}

/// A server account as the Security object (and the Server object) describe it.
#[derive(Clone, PartialEq, Eq)]
pub struct Account {
    /// Instance of the Security object.
    pub security_instance: u16,
    pub uri: String,
    pub bootstrap: bool,
    /// 0 for the bootstrap account.
    pub short_server_id: u16,
    /// The DTLS credentials of a `coaps://` account (Security Mode 0 or 2).
    pub credentials: Option<Credentials>,
}

impl std::fmt::Debug for Account {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The key never reaches a log line.
        f.debug_struct("Account")
            .field("security_instance", &self.security_instance)
            .field("uri", &self.uri)
            .field("bootstrap", &self.bootstrap)
            .field("short_server_id", &self.short_server_id)
            .field("credentials", &self.credentials)
            .finish()
    }
}

fn single(obj: &dyn Object, instance: u16, resource: u16) -> Option<Value> {
    match obj.read(instance, resource)? {
        ResourceValue::Single(v) => Some(v),
        ResourceValue::Multiple(_) => None,
    }
}

fn integer(obj: &dyn Object, instance: u16, resource: u16) -> Option<i64> {
    match single(obj, instance, resource)? {
        Value::Integer(n) => Some(n),
        Value::Unsigned(n) => i64::try_from(n).ok(),
        _ => None,
    }
}

fn opaque(obj: &dyn Object, instance: u16, resource: u16) -> Vec<u8> {
    match single(obj, instance, resource) {
        Some(Value::Opaque(b)) => b,
        Some(Value::String(s)) => s.into_bytes(),
        _ => Vec::new(),
    }
}

/// Checks one Security instance; `Err` says why it cannot be used.
fn account(objects: &dm::Objects, instance: u16) -> Result<Account, String> {
    let sec = objects.get(&0).ok_or("no Security object")?;
    let uri = match single(sec.as_ref(), instance, security::SERVER_URI) {
        Some(Value::String(u)) => u,
        _ => return Err(format!("/0/{instance}: no server URI")),
    };
    let bootstrap = matches!(
        single(sec.as_ref(), instance, security::BOOTSTRAP_SERVER),
        Some(Value::Boolean(true))
    );
    let short_server_id = match (
        bootstrap,
        integer(sec.as_ref(), instance, security::SHORT_SERVER_ID),
    ) {
        (true, _) => 0,
        (false, Some(n)) => u16::try_from(n)
            .ok()
            .filter(|n| (1..=65534).contains(n))
            .ok_or_else(|| format!("/0/{instance}: Short Server ID {n} out of range"))?,
        (false, None) => return Err(format!("/0/{instance}: no Short Server ID")),
    };
    let (scheme, host, _) =
        parse_server_uri(&uri).map_err(|e| format!("/0/{instance}: URI {uri:?}: {e}"))?;
    let mode = integer(sec.as_ref(), instance, security::SECURITY_MODE);
    let credentials = match (scheme, mode) {
        (Scheme::Coap, Some(security::MODE_NOSEC)) => None,
        (Scheme::Coaps, Some(security::MODE_PSK)) => {
            let identity = opaque(sec.as_ref(), instance, security::PUBLIC_KEY_OR_IDENTITY);
            let key = opaque(sec.as_ref(), instance, security::SECRET_KEY);
            if identity.is_empty() || key.is_empty() {
                return Err(format!("/0/{instance}: PSK mode without identity or key"));
            }
            Some(Credentials::Psk { identity, key })
        }
        (Scheme::Coaps, Some(security::MODE_CERTIFICATE)) => {
            let certificate = opaque(sec.as_ref(), instance, security::PUBLIC_KEY_OR_IDENTITY);
            let private_key = opaque(sec.as_ref(), instance, security::SECRET_KEY);
            if certificate.is_empty() || private_key.is_empty() {
                return Err(format!(
                    "/0/{instance}: certificate mode without certificate or key"
                ));
            }
            let server = opaque(sec.as_ref(), instance, security::SERVER_PUBLIC_KEY);
            let usage = integer(sec.as_ref(), instance, security::CERTIFICATE_USAGE)
                .map(|u| {
                    CertificateUsage::from_code(u)
                        .ok_or_else(|| format!("/0/{instance}: Certificate Usage {u} unknown"))
                })
                .transpose()?
                .unwrap_or(CertificateUsage::DomainIssuedCertificate);
            let sni = match single(sec.as_ref(), instance, security::SNI) {
                Some(Value::String(s)) if !s.is_empty() => s,
                _ => host,
            };
            Some(Credentials::Certificate(Certificates {
                chain: vec![certificate],
                private_key,
                server_certificate: (!server.is_empty()).then_some(server),
                usage,
                trust_store: None,
                sni: Some(sni),
            }))
        }
        (Scheme::Coap, m) => {
            return Err(format!(
                "/0/{instance}: coap:// needs Security Mode 3 (NoSec), not {m:?}"
            ))
        }
        (Scheme::Coaps, Some(security::MODE_RPK)) if !crate::dtls::RAW_PUBLIC_KEYS => {
            return Err(format!(
                "/0/{instance}: Security Mode 1: {}",
                crate::dtls::raw_public_keys_unavailable()
            ))
        }
        (Scheme::Coaps, Some(security::MODE_RPK)) => {
            let private_key = opaque(sec.as_ref(), instance, security::SECRET_KEY);
            let server_public_key = opaque(sec.as_ref(), instance, security::SERVER_PUBLIC_KEY);
            if private_key.is_empty() || server_public_key.is_empty() {
                return Err(format!(
                    "/0/{instance}: raw public key mode without our private key (/0/{instance}/5) \
                     or the server's public key (/0/{instance}/4)"
                ));
            }
            Some(Credentials::RawPublicKey(RawPublicKey {
                private_key,
                server_public_key,
            }))
        }
        (Scheme::Coaps, m) => {
            return Err(format!(
                "/0/{instance}: coaps:// supports Security Modes 0 (PSK), 1 (raw public key) and 2 (certificate), not {m:?}"
            ))
        }
    };
    Ok(Account {
        security_instance: instance,
        uri,
        bootstrap,
        short_server_id,
        credentials,
    })
}

/// The Server object instance of a Short Server ID.
fn server_instance(objects: &dm::Objects, short_server_id: u16) -> Option<u16> {
    let srv = objects.get(&1)?;
    srv.instances().into_iter().find(|&i| {
        integer(srv.as_ref(), i, server::SHORT_SERVER_ID) == Some(short_server_id.into())
    })
}

/// Every usable account (the bootstrap one included), and why the others are not.
pub fn accounts(objects: &dm::Objects) -> (Vec<Account>, Vec<String>) {
    let mut good = Vec::new();
    let mut bad = Vec::new();
    let instances = objects.get(&0).map(|o| o.instances()).unwrap_or_default();
    for i in instances {
        match account(objects, i) {
            Ok(a) if a.bootstrap && good.iter().any(|g: &Account| g.bootstrap) => {
                bad.push(format!("/0/{i}: a second bootstrap account"))
            }
            Ok(a) if !a.bootstrap && server_instance(objects, a.short_server_id).is_none() => bad
                .push(format!(
                    "/0/{i}: no Server object instance with Short Server ID {}",
                    a.short_server_id
                )),
            Ok(a)
                if good
                    .iter()
                    .any(|g| !a.bootstrap && g.short_server_id == a.short_server_id) =>
            {
                bad.push(format!(
                    "/0/{i}: Short Server ID {} used twice",
                    a.short_server_id
                ))
            }
            Ok(a) => good.push(a),
            Err(why) => bad.push(why),
        }
    }
    (good, bad)
}

/// All values of objects 0, 1 and 2: what a bootstrap server provisions and what is
/// persisted. Read straight from the objects (the Security object is never readable
/// through DM).
pub fn provisioned_records(objects: &dm::Objects) -> Vec<Record> {
    let mut out = Vec::new();
    for o in [0, 1, ACCESS_CONTROL] {
        let Some(obj) = objects.get(&o) else { continue };
        for i in obj.instances() {
            for r in obj.def().resources {
                match obj.read(i, r.id) {
                    Some(ResourceValue::Single(value)) => out.push(Record {
                        path: Path::resource(o, i, r.id),
                        value,
                    }),
                    Some(ResourceValue::Multiple(map)) => {
                        out.extend(map.into_iter().map(|(ri, value)| Record {
                            path: Path::resource_instance(o, i, r.id, ri),
                            value,
                        }))
                    }
                    None => {}
                }
            }
        }
    }
    out
}

/// The declared type of a resource path, from the objects present.
pub fn resource_type(objects: &dm::Objects, path: &Path) -> Option<ResourceType> {
    let obj = objects.get(&path.object_id()?)?;
    obj.def().resource(path.resource_id()?).map(|r| r.ty)
}

/// Writes records into objects, creating instances that do not exist (Bootstrap-Write
/// semantics: create or replace, read-only resources included). Checked whole first.
pub fn write_records(objects: &mut dm::Objects, records: Vec<Record>) -> Result<(), DmError> {
    let mut values: BTreeMap<(u16, u16, u16), ResourceValue> = BTreeMap::new();
    for rec in records {
        let (Some(o), Some(i), Some(r)) = (
            rec.path.object_id(),
            rec.path.instance_id(),
            rec.path.resource_id(),
        ) else {
            return Err(DmError::BadRequest(format!(
                "{} is not a resource",
                rec.path
            )));
        };
        let obj = objects.get(&o).ok_or(DmError::NotFound)?;
        let rdef = obj.def().resource(r).ok_or(DmError::NotFound)?;
        if rdef.operations.executable() {
            return Err(DmError::MethodNotAllowed);
        }
        if !obj.def().multiple && i != 0 && !obj.instances().contains(&i) {
            return Err(DmError::BadRequest(format!(
                "object {o} has a single instance"
            )));
        }
        match (rdef.multiple, rec.path.resource_instance_id()) {
            (false, None) => {
                values.insert((o, i, r), ResourceValue::Single(rec.value));
            }
            (true, Some(ri)) => {
                if let ResourceValue::Multiple(map) = values
                    .entry((o, i, r))
                    .or_insert_with(|| ResourceValue::Multiple(BTreeMap::new()))
                {
                    map.insert(ri, rec.value);
                }
            }
            (false, Some(_)) | (true, None) => {
                return Err(DmError::BadRequest(format!(
                    "{} does not match the resource's multiplicity",
                    rec.path
                )))
            }
        }
    }
    for ((o, i, r), value) in values {
        let obj = objects.get_mut(&o).ok_or(DmError::NotFound)?;
        if !obj.instances().contains(&i) {
            obj.create(i)?;
        }
        // Values from the bootstrap server or the state file: trusted like the
        // configuration, so read-only resources (Short Server ID) may be set.
        obj.write(i, r, value, false)?;
    }
    Ok(())
}

/// Removes every instance of objects 0, 1 and 2 (before a restore).
pub fn clear_provisioning(objects: &mut dm::Objects) {
    for o in [0, 1, ACCESS_CONTROL] {
        if let Some(obj) = objects.get_mut(&o) {
            for i in obj.instances() {
                let _ = obj.delete(i);
            }
        }
    }
}

/// The address of a URI whose host is an IP literal (no name lookup).
pub fn resolve_literal(uri: &str) -> Option<SocketAddr> {
    let (_, host, port) = parse_server_uri(uri).ok()?;
    let ip: std::net::IpAddr = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse()
        .ok()?;
    Some(SocketAddr::new(ip, port))
}

fn response(code: ResponseType) -> Packet {
    let mut p = Packet::new();
    p.header.code = MessageClass::Response(code);
    p
}

impl Engine {
    /// Starts a client-initiated bootstrap after `delay`, when there is a bootstrap
    /// account. Returns whether one will run.
    pub(super) fn start_bootstrap(&mut self, now: Instant, delay: Duration, why: &str) -> bool {
        let has_account = accounts(&self.objects).0.iter().any(|a| a.bootstrap);
        if !has_account {
            tracing::warn!("{why}, and there is no bootstrap account");
            return false;
        }
        if self.bootstrap.is_active() {
            return true;
        }
        tracing::info!("{why}: bootstrapping in {delay:?}");
        self.bootstrap.phase = super::bootstrap::Phase::Due(now + delay);
        self.events.push_back(Event::BootstrapStarted);
        true
    }

    /// The Client Hold Off Time (/0/x/11) of the bootstrap account.
    pub(super) fn bootstrap_hold_off(&self) -> Duration {
        let Some(a) = accounts(&self.objects).0.into_iter().find(|a| a.bootstrap) else {
            return Duration::ZERO;
        };
        let secs = self.objects.get(&0).and_then(|o| {
            integer(
                o.as_ref(),
                a.security_instance,
                security::CLIENT_HOLD_OFF_TIME,
            )
        });
        super::retry::delay_secs(secs.and_then(|s| u64::try_from(s).ok()).unwrap_or(0))
    }

    /// Sends the Bootstrap-Request when due, gives up on a silent bootstrap server,
    /// purges the bootstrap account when its timeout ends.
    pub(super) fn bootstrap_step(&mut self, now: Instant) {
        if self.bootstrap.purge_at.is_some_and(|t| t <= now) {
            self.bootstrap.purge_at = None;
            self.purge_bootstrap_account();
        }
        match self.bootstrap.phase {
            Phase::Due(t) if t <= now => {
                let Some(a) = accounts(&self.objects).0.into_iter().find(|a| a.bootstrap) else {
                    tracing::warn!("bootstrap: the bootstrap account is gone");
                    self.bootstrap.phase = Phase::Idle;
                    return;
                };
                let Some(peer) = (self.config.resolve)(&a.uri) else {
                    tracing::warn!(server = %a.uri, "bootstrap: cannot resolve the bootstrap server");
                    self.bootstrap_failed(now);
                    return;
                };
                self.send_bootstrap_request(now, peer, &a.uri, self.bootstrap.pack, None);
                if self.bootstrap.snapshot.is_none() {
                    self.bootstrap.snapshot = Some(provisioned_records(&self.objects));
                }
            }
            Phase::Provisioning { deadline, .. } if deadline <= now => {
                tracing::warn!("bootstrap: no Bootstrap-Finish in time");
                self.bootstrap_failed(now);
            }
            _ => {}
        }
    }

    /// `POST /bs?ep=&pct=` (Bootstrap-Request) or, with `pack`, `GET /bspack?ep=`
    /// (Bootstrap-Pack-Request, Transport TS 1.2 §6.1) asking for SenML.
    /// `block`: the next block of a pack that comes in several (RFC 7959 Block2).
    fn send_bootstrap_request(
        &mut self,
        now: Instant,
        peer: SocketAddr,
        uri: &str,
        pack: bool,
        block: Option<BlockOption>,
    ) {
        let mut req = Packet::new();
        let mut queries = vec![format!("ep={}", self.config.endpoint)];
        match block {
            Some(b) => set_block2(&mut req, b),
            None => self.bootstrap.pack_body.clear(),
        }
        if pack {
            req.header.code = MessageClass::Request(RequestType::Get);
            add_string_options(&mut req, CoapOption::UriPath, ["bspack"]);
            let accept = match self.config.preferred_format {
                ContentFormat::SenmlJson => ContentFormat::SenmlJson,
                _ => ContentFormat::SenmlCbor,
            };
            req.add_option(CoapOption::Accept, encode_uint(accept.code().into()));
            if block.is_none() {
                tracing::info!(server = %uri, "Bootstrap-Pack-Request");
            }
        } else {
            req.header.code = MessageClass::Request(RequestType::Post);
            add_string_options(&mut req, CoapOption::UriPath, ["bs"]);
            queries.push(format!("pct={}", self.config.preferred_format.code()));
            tracing::info!(server = %uri, "Bootstrap-Request");
        }
        add_string_options(
            &mut req,
            CoapOption::UriQuery,
            queries.iter().map(String::as_str),
        );
        let id = self.coap.send_request(now, peer, req, true);
        self.bootstrap.phase = Phase::Requesting { id, peer, pack };
    }

    /// Applies a Bootstrap-Pack: its records are written as Bootstrap-Writes would, then
    /// the accounts are checked as at Bootstrap-Finish. `Err` says why it was refused.
    fn apply_bootstrap_pack(&mut self, response: &Packet, body: &[u8]) -> Result<(), String> {
        let format = uint_option(response, CoapOption::ContentFormat)
            .map_err(|_| "malformed Content-Format".to_string())?
            .and_then(|c| u16::try_from(c).ok())
            .and_then(ContentFormat::from_code)
            .filter(|f| {
                matches!(
                    f,
                    ContentFormat::SenmlCbor | ContentFormat::SenmlJson | ContentFormat::LwM2mCbor
                )
            })
            .ok_or("not SenML CBOR, SenML JSON or LwM2M CBOR")?;
        let objects = &self.objects;
        let ty = |p: &Path| resource_type(objects, p);
        let records = codec::decode(format, &Path::ROOT, body, &ty).map_err(|e| e.to_string())?;
        if records.is_empty() {
            return Err("empty pack".into());
        }
        tracing::debug!(values = records.len(), "Bootstrap-Pack");
        write_records(&mut self.objects, records).map_err(|e| e.to_string())?;
        let (good, bad) = accounts(&self.objects);
        for why in &bad {
            tracing::warn!("bootstrap: unusable account: {why}");
        }
        if !good.iter().any(|a| !a.bootstrap) {
            let mut reason = "no usable LwM2M server account".to_string();
            if !bad.is_empty() {
                reason.push_str(": ");
                reason.push_str(&bad.join("; "));
            }
            return Err(reason);
        }
        Ok(())
    }

    fn bootstrap_uri(&self) -> String {
        accounts(&self.objects)
            .0
            .into_iter()
            .find(|a| a.bootstrap)
            .map(|a| a.uri)
            .unwrap_or_default()
    }

    /// Takes one 2.05 of a Bootstrap-Pack-Request: the whole pack once its last block
    /// is in, `None` while more blocks are to come.
    fn pack_block(&mut self, response: &Packet) -> Result<Option<Vec<u8>>, String> {
        let Some(block) = block2(response) else {
            return Ok(Some(response.payload.clone()));
        };
        let block = block.map_err(|e| format!("Block2: {e}"))?;
        let body = &mut self.bootstrap.pack_body;
        if block.offset() != body.len() as u64 {
            return Err(format!(
                "Block2 {} does not follow the {} bytes received",
                block.num,
                body.len()
            ));
        }
        if body.len().saturating_add(response.payload.len()) > self.config.max_upload {
            return Err(format!("larger than {} bytes", self.config.max_upload));
        }
        body.extend_from_slice(&response.payload);
        if block.more {
            return Ok(None);
        }
        Ok(Some(std::mem::take(body)))
    }

    fn bootstrap_failed(&mut self, now: Instant) {
        self.events.push_back(Event::BootstrapFailed);
        if let Some(before) = self.bootstrap.snapshot.take() {
            clear_provisioning(&mut self.objects);
            if let Err(e) = write_records(&mut self.objects, before) {
                tracing::error!("restoring the accounts after a failed bootstrap: {e}");
            }
        }
        if !self.sessions.is_empty() {
            // The accounts we have keep working (their registrations go on, with their
            // own retry schedule) rather than waiting on a bootstrap server that fails.
            tracing::warn!("bootstrap failed; continuing with the existing server accounts");
            self.bootstrap.phase = Phase::Idle;
            return;
        }
        let delay = self.bootstrap.retry_delay;
        tracing::warn!("bootstrap failed; trying again in {delay:?}");
        self.bootstrap.phase = Phase::Due(now + delay);
        self.bootstrap.retry_delay = (delay * 2).min(MAX_RETRY);
    }

    /// The answer to the Bootstrap-Request, if `id` is it.
    pub(super) fn bootstrap_answered(
        &mut self,
        now: Instant,
        id: RequestId,
        response: Option<&Packet>,
    ) -> bool {
        let Phase::Requesting {
            id: ours,
            peer,
            pack,
        } = self.bootstrap.phase
        else {
            return false;
        };
        if ours != id {
            return false;
        }
        let code = response.map(|r| r.header.code);
        if pack {
            match (code, response) {
                (Some(MessageClass::Response(ResponseType::Content)), Some(resp)) => {
                    let body = match self.pack_block(resp) {
                        Ok(Some(body)) => body,
                        Ok(None) => {
                            let next = block2(resp).and_then(Result::ok).and_then(|b| {
                                BlockOption::new(b.num.checked_add(1)?, false, b.szx).ok()
                            });
                            match next {
                                Some(next) => {
                                    let uri = self.bootstrap_uri();
                                    self.send_bootstrap_request(now, peer, &uri, true, Some(next));
                                }
                                None => {
                                    tracing::warn!("Bootstrap-Pack refused: too many blocks");
                                    self.bootstrap_failed(now);
                                }
                            }
                            return true;
                        }
                        Err(why) => {
                            tracing::warn!("Bootstrap-Pack refused: {why}");
                            self.bootstrap.pack_body.clear();
                            self.bootstrap_failed(now);
                            return true;
                        }
                    };
                    match self.apply_bootstrap_pack(resp, &body) {
                        Ok(()) => self.finish_bootstrap(now),
                        Err(why) => {
                            tracing::warn!("Bootstrap-Pack refused: {why}");
                            self.bootstrap_failed(now);
                        }
                    }
                }
                (
                    Some(MessageClass::Response(
                        ResponseType::NotFound | ResponseType::MethodNotAllowed,
                    )),
                    _,
                ) => {
                    // A bootstrap server before LwM2M 1.2: provisioning by requests.
                    let uri = self.bootstrap_uri();
                    tracing::info!(
                        server = %uri,
                        "the bootstrap server has no Bootstrap-Pack ({}); falling back to the Bootstrap-Request",
                        code.map_or_else(String::new, |c| c.to_string())
                    );
                    self.send_bootstrap_request(now, peer, &uri, false, None);
                }
                (other, _) => {
                    tracing::warn!("Bootstrap-Pack-Request refused ({other:?})");
                    self.bootstrap_failed(now);
                }
            }
            return true;
        }
        match code {
            Some(MessageClass::Response(ResponseType::Changed)) => {
                tracing::info!("bootstrap server accepted the Bootstrap-Request");
                self.bootstrap.phase = Phase::Provisioning {
                    peer,
                    deadline: now + self.config.coap.exchange_lifetime(),
                };
            }
            other => {
                tracing::warn!("Bootstrap-Request refused ({other:?})");
                self.bootstrap_failed(now);
            }
        }
        true
    }

    /// Whether a request comes from the bootstrap server while it provisions us.
    pub(super) fn is_bootstrap_server(&self, peer: SocketAddr) -> bool {
        self.bootstrap.peer() == Some(peer)
    }

    /// Handles a request of the bootstrap server.
    pub(super) fn bootstrap_request(&mut self, now: Instant, request: &IncomingRequest) {
        // The server's writes may overtake the answer to the Bootstrap-Request.
        self.bootstrap.phase = Phase::Provisioning {
            peer: request.peer,
            deadline: now + self.config.coap.exchange_lifetime(),
        };
        let (resp, finished) = match self.bootstrap_operation(&request.packet) {
            Ok(r) => r,
            Err(e) => {
                tracing::debug!("bootstrap operation refused: {e}");
                let mut r = response(error_code(&e));
                if let DmError::NotAcceptable | DmError::BadRequest(_) = e {
                    r.payload = e.to_string().into_bytes();
                }
                (r, false)
            }
        };
        self.coap.respond(now, request, resp);
        if finished {
            self.finish_bootstrap(now);
        }
    }

    fn bootstrap_operation(&mut self, packet: &Packet) -> Result<(Packet, bool), DmError> {
        let MessageClass::Request(method) = packet.header.code else {
            return Err(DmError::BadRequest("not a request".into()));
        };
        let bad_option = |_| DmError::BadRequest("malformed option".into());
        let segments = string_options(packet, CoapOption::UriPath).map_err(bad_option)?;
        if method == RequestType::Post && segments == ["bs"] {
            return self.bootstrap_finish();
        }
        let path = Path::from_segments(segments.iter().map(String::as_str))
            .map_err(|_| DmError::NotFound)?;
        let accept = uint_option(packet, CoapOption::Accept).map_err(bad_option)?;
        let content_format = uint_option(packet, CoapOption::ContentFormat).map_err(bad_option)?;
        let link_format = u32::from(ContentFormat::LinkFormat.code());
        match method {
            RequestType::Get if accept == Some(link_format) => self.bootstrap_discover(&path),
            RequestType::Get => self.bootstrap_read(&path, accept),
            RequestType::Put => self.bootstrap_write(&path, content_format, &packet.payload),
            RequestType::Delete => self.bootstrap_delete(&path),
            _ => Err(DmError::MethodNotAllowed),
        }
        .map(|p| (p, false))
    }

    fn bootstrap_write(
        &mut self,
        path: &Path,
        content_format: Option<u32>,
        payload: &[u8],
    ) -> Result<Packet, DmError> {
        if path.is_root() || path.len() > 3 {
            return Err(DmError::MethodNotAllowed);
        }
        let format = content_format
            .and_then(|c| u16::try_from(c).ok())
            .and_then(ContentFormat::from_code)
            .ok_or(DmError::UnsupportedContentFormat)?;
        if !self
            .objects
            .contains_key(&path.object_id().unwrap_or_default())
        {
            return Err(DmError::NotFound);
        }
        let objects = &self.objects;
        let ty = |p: &Path| resource_type(objects, p);
        let records = codec::decode(format, path, payload, &ty)
            .map_err(|e| DmError::BadRequest(e.to_string()))?;
        tracing::debug!(%path, values = records.len(), "Bootstrap-Write");
        write_records(&mut self.objects, records)?;
        Ok(response(ResponseType::Changed))
    }

    fn bootstrap_read(&self, path: &Path, accept: Option<u32>) -> Result<Packet, DmError> {
        // Only the Server and Access Control objects may be read (Core TS §6.1.7.5).
        if !matches!(path.object_id(), Some(1 | ACCESS_CONTROL)) {
            return Err(DmError::Unauthorized);
        }
        let records = dm::collect(&self.objects, path)?;
        let format = match accept {
            Some(c) => u16::try_from(c)
                .ok()
                .and_then(ContentFormat::from_code)
                .ok_or(DmError::NotAcceptable)?,
            None => self.config.preferred_format,
        };
        let payload = codec::encode(format, path, &records).map_err(|_| DmError::NotAcceptable)?;
        let mut r = response(ResponseType::Content);
        r.add_option(CoapOption::ContentFormat, encode_uint(format.code().into()));
        r.payload = payload;
        Ok(r)
    }

    /// Bootstrap-Discover of `/` or `/o`: objects, instances, and the `ssid` and `uri`
    /// of accounts (Core TS §5.2.7.3).
    fn bootstrap_discover(&self, path: &Path) -> Result<Packet, DmError> {
        if path.len() > 1 {
            return Err(DmError::BadRequest(
                "Bootstrap-Discover applies to / or an object".into(),
            ));
        }
        let mut out = Vec::new();
        if path.is_root() {
            out.push(format!("</>;lwm2m=\"{}\"", super::LWM2M_VERSION));
        }
        let wanted = |o: u16| path.object_id().is_none_or(|p| p == o);
        if path
            .object_id()
            .is_some_and(|o| !self.objects.contains_key(&o))
        {
            return Err(DmError::NotFound);
        }
        for (&o, obj) in self.objects.iter().filter(|(o, _)| wanted(**o)) {
            let version = obj.def().version;
            out.push(match version {
                "1.0" => format!("</{o}>"),
                v => format!("</{o}>;ver={v}"),
            });
            for i in obj.instances() {
                let mut link = format!("</{o}/{i}>");
                let ssid = match o {
                    0 => integer(obj.as_ref(), i, security::SHORT_SERVER_ID),
                    1 => integer(obj.as_ref(), i, server::SHORT_SERVER_ID),
                    _ => None,
                };
                let bootstrap = o == 0
                    && matches!(
                        single(obj.as_ref(), i, security::BOOTSTRAP_SERVER),
                        Some(Value::Boolean(true))
                    );
                if let (Some(ssid), false) = (ssid, bootstrap) {
                    link.push_str(&format!(";ssid={ssid}"));
                }
                if o == 0 {
                    if let Some(Value::String(uri)) = single(obj.as_ref(), i, security::SERVER_URI)
                    {
                        let escaped = uri.replace('\\', "\\\\").replace('"', "\\\"");
                        link.push_str(&format!(";uri=\"{escaped}\""));
                    }
                }
                out.push(link);
            }
        }
        let mut r = response(ResponseType::Content);
        r.add_option(
            CoapOption::ContentFormat,
            encode_uint(ContentFormat::LinkFormat.code().into()),
        );
        r.payload = out.join(",").into_bytes();
        Ok(r)
    }

    /// Bootstrap-Delete of `/`, `/o` or `/o/i`; the bootstrap account stays.
    fn bootstrap_delete(&mut self, path: &Path) -> Result<Packet, DmError> {
        if path.len() > 2 {
            return Err(DmError::BadRequest(
                "Bootstrap-Delete applies to /, an object or an instance".into(),
            ));
        }
        let keep = accounts(&self.objects)
            .0
            .into_iter()
            .find(|a| a.bootstrap)
            .map(|a| a.security_instance);
        let targets: Vec<u16> = match path.object_id() {
            None => self.objects.keys().copied().collect(),
            Some(o) if self.objects.contains_key(&o) => vec![o],
            Some(_) => return Err(DmError::NotFound),
        };
        for o in targets {
            let Some(obj) = self.objects.get_mut(&o) else {
                continue;
            };
            let instances: Vec<u16> = match path.instance_id() {
                Some(i) if o == 0 && Some(i) == keep => {
                    return Err(DmError::BadRequest(
                        "the bootstrap account cannot be deleted".into(),
                    ))
                }
                Some(i) if !obj.instances().contains(&i) => return Err(DmError::NotFound),
                Some(i) => vec![i],
                None => obj.instances(),
            };
            for i in instances {
                if o == 0 && Some(i) == keep {
                    continue;
                }
                match obj.delete(i) {
                    Ok(()) => {}
                    // Objects that cannot lose instances (Device) keep them on `/`.
                    Err(_) if path.is_root() => {}
                    Err(DmError::MethodNotAllowed) => {
                        return Err(DmError::BadRequest(format!(
                            "instances of object {o} cannot be deleted"
                        )))
                    }
                    Err(e) => return Err(e),
                }
            }
        }
        tracing::debug!(%path, "Bootstrap-Delete");
        Ok(response(ResponseType::Deleted))
    }

    /// Bootstrap-Finish: 2.04 when at least one server account can be used, else 4.06
    /// with the reasons.
    fn bootstrap_finish(&mut self) -> Result<(Packet, bool), DmError> {
        let (good, bad) = accounts(&self.objects);
        for why in &bad {
            tracing::warn!("bootstrap: unusable account: {why}");
        }
        if !good.iter().any(|a| !a.bootstrap) {
            let mut reason = "no usable LwM2M server account".to_string();
            if !bad.is_empty() {
                reason.push_str(": ");
                reason.push_str(&bad.join("; "));
            }
            tracing::warn!("Bootstrap-Finish refused: {reason}");
            let mut r = response(ResponseType::NotAcceptable);
            r.payload = reason.into_bytes();
            return Ok((r, false));
        }
        Ok((response(ResponseType::Changed), true))
    }

    fn finish_bootstrap(&mut self, now: Instant) {
        tracing::info!("bootstrap finished");
        self.bootstrap.factory_acl = None;
        self.bootstrap.phase = Phase::Idle;
        self.bootstrap.snapshot = None;
        self.bootstrap.retry_delay = FIRST_RETRY;
        let timeout = accounts(&self.objects)
            .0
            .into_iter()
            .find(|a| a.bootstrap)
            .and_then(|a| {
                let obj = self.objects.get(&0)?;
                integer(
                    obj.as_ref(),
                    a.security_instance,
                    security::BOOTSTRAP_ACCOUNT_TIMEOUT,
                )
            })
            .and_then(|s| u64::try_from(s).ok())
            .filter(|&s| s > 0);
        self.bootstrap.purge_at = timeout.map(|s| now + super::retry::delay_secs(s));
        self.reload_accounts(now);
        self.events.push_back(Event::Provisioned);
    }

    fn purge_bootstrap_account(&mut self) {
        let Some(a) = accounts(&self.objects).0.into_iter().find(|a| a.bootstrap) else {
            return;
        };
        if let Some(obj) = self.objects.get_mut(&0) {
            let _ = obj.delete(a.security_instance);
        }
        tracing::info!(server = %a.uri, "bootstrap account purged (its account timeout ended)");
        self.events.push_back(Event::Provisioned);
    }

    /// Rebuilds the registration sessions from the Security and Server objects. With no
    /// usable server account, bootstraps.
    pub fn reload_accounts(&mut self, now: Instant) {
        let (good, bad) = accounts(&self.objects);
        for why in bad {
            tracing::warn!("unusable server account: {why}");
        }
        let mut sessions = Vec::new();
        for a in good.into_iter().filter(|a| !a.bootstrap) {
            match (self.config.resolve)(&a.uri) {
                Some(addr) => sessions.push(Session::new(a.short_server_id, addr, a.uri, now)),
                None => {
                    tracing::warn!(server = %a.uri, "cannot resolve the server; account left out")
                }
            }
        }
        self.observations.clear();
        self.observer_generation += 1;
        self.sessions = sessions;
        if !self.sessions.is_empty() {
            self.bootstrap.phase = Phase::Idle;
        } else {
            let delay = self.bootstrap_hold_off();
            self.start_bootstrap(now, delay, "no usable server account");
        }
    }

    /// Whether client-initiated bootstraps start with a Bootstrap-Pack-Request.
    pub fn use_bootstrap_pack(&mut self, pack: bool) {
        self.bootstrap.pack = pack;
    }

    /// A bootstrap is under way (or scheduled).
    pub fn is_bootstrapping(&self) -> bool {
        self.bootstrap.is_active()
    }

    /// The accounts with their addresses, for the daemon's DTLS sessions.
    pub fn accounts(&self) -> Vec<(Account, SocketAddr)> {
        accounts(&self.objects)
            .0
            .into_iter()
            .filter_map(|a| Some(((self.config.resolve)(&a.uri)?, a)))
            .map(|(addr, a)| (a, addr))
            .collect()
    }

    /// What a bootstrap server provisioned (objects 0, 1, 2), to be persisted.
    pub fn provisioning(&self) -> Vec<Record> {
        provisioned_records(&self.objects)
    }

    /// Replaces objects 0, 1 and 2 with persisted records and registers with what they
    /// describe. On error nothing is changed.
    pub fn restore(&mut self, now: Instant, records: Vec<Record>) -> Result<(), DmError> {
        let before = provisioned_records(&self.objects);
        clear_provisioning(&mut self.objects);
        if let Err(e) = write_records(&mut self.objects, records) {
            clear_provisioning(&mut self.objects);
            let _ = write_records(&mut self.objects, before);
            return Err(e);
        }
        self.bootstrap.snapshot = None;
        self.bootstrap.factory_acl = None;
        self.reload_accounts(now);
        Ok(())
    }

    /// The declared type of a resource path (to decode persisted records).
    pub fn resource_type(&self, path: &Path) -> Option<ResourceType> {
        resource_type(&self.objects, path)
    }
}
