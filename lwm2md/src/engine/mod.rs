//! The sans-IO LwM2M client engine: registration with each server and device
//! management over the CoAP message layer. No sockets, no clock, no threads: the daemon
//! (or a test) feeds datagrams and time in and takes datagrams, deadlines and actions out.

mod access;
pub mod attributes;
pub mod bootstrap;
pub mod dm;
mod notify;
pub mod observe;
pub mod options;
pub mod registration;
pub mod resume;
pub mod retry;
mod send;

#[cfg(test)]
mod bootstrap_tests;
#[cfg(test)]
mod tests;

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use coap_lite::{CoapOption, MessageClass, Packet, ResponseType};

use crate::coap::block::{
    self, Block1Assembler, Block1Error, Block1Key, Block1Progress, Block2Error, BlockOption,
};
use crate::coap::block_stream::{Block1Streams, StreamStep};
use crate::coap::{CoapParams, Event as CoapEvent, IncomingRequest, MessageLayer, Transmit};
use crate::codec::link::{encode_links, Link};
use crate::codec::ContentFormat;
use crate::model::{Action, Chunk, DmError, Object};
use crate::objects::server;
use crate::path::Path;
use crate::value::{ResourceValue, Value};
use attributes::AttributeStore;
use dm::{DmRequest, DmResponse, Objects};
use observe::Observation;
use options::{add_string_options, encode_uint, string_options, uint_option};
use registration::{Advertised, Session, State};
pub use send::SendSpec;

/// The LwM2M enabler version lwm2md registers with.
pub const LWM2M_VERSION: &str = "1.1";

/// The content formats announced at registration (`ct` on the root link): those a
/// Read can be answered in, so that the server picks one of them.
pub const ANNOUNCED_FORMATS: &str = "0 42 110 112 11542 11544";

/// A server account the engine registers with.
#[derive(Debug, Clone)]
pub struct ServerSpec {
    pub short_server_id: u16,
    pub addr: SocketAddr,
    pub uri: String,
}

#[derive(Debug, Clone)]
pub struct EngineConfig {
    pub endpoint: String,
    pub preferred_format: ContentFormat,
    pub coap: CoapParams,
    /// Largest block sent in Block2 responses, in bytes (16..=1024).
    pub block_size: usize,
    /// Largest Block1 upload accepted, in bytes.
    pub max_upload: usize,
    pub servers: Vec<ServerSpec>,
    /// Scheduled Sends.
    pub send: Vec<SendSpec>,
    /// Unix seconds now: the base time of Sent values.
    pub wall_clock: fn() -> i64,
    /// The address of a `coap://` or `coaps://` URI of an account provisioned at run time.
    pub resolve: fn(&str) -> Option<SocketAddr>,
    pub limits: Limits,
}

/// Bounds on what servers can make the client keep.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Observations per server; beyond, a GET with Observe is answered as a plain Read
    /// (RFC 7641 allows that) and a warning is logged.
    pub observations_per_server: usize,
    /// Notifications stored per observation while the server is unreachable; beyond,
    /// the oldest are dropped (the latest state always survives).
    pub stored_per_observation: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            observations_per_server: 256,
            stored_per_observation: 64,
        }
    }
}

/// Registration changes, for the daemon's status line and logs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    Registered {
        short_server_id: u16,
        location: String,
    },
    Updated {
        short_server_id: u16,
    },
    RegistrationFailed {
        short_server_id: u16,
        reason: String,
    },
    Deregistered {
        short_server_id: u16,
    },
    /// A bootstrap server changed the accounts (Bootstrap-Finish accepted), or the
    /// bootstrap account was purged: what `Engine::provisioning` returns is new.
    Provisioned,
    /// A client-initiated bootstrap is starting (or scheduled, after a hold-off).
    BootstrapStarted,
    /// A bootstrap attempt failed.
    BootstrapFailed,
}

pub struct Engine {
    config: EngineConfig,
    coap: MessageLayer,
    objects: Objects,
    sessions: Vec<Session>,
    block1: Block1Assembler,
    /// Block1 uploads handed to their object block by block (firmware packages).
    block1_streams: Block1Streams,
    actions: VecDeque<Action>,
    events: VecDeque<Event>,
    /// Servers disabled by Execute /1/x/4 and when they may be contacted again.
    disabled_until: std::collections::BTreeMap<u16, Instant>,
    /// `shutdown` was called: de-register, never register again.
    stopping: bool,
    /// Actions of the request being handled, applied once its response is out.
    pending_actions: Vec<Action>,
    attributes: AttributeStore,
    observations: Vec<Observation>,
    /// When each scheduled Send is next due (same order as `config.send`).
    send_due: Vec<Instant>,
    /// Sends awaiting an answer, with the server they went to.
    sends_in_flight: Vec<(crate::coap::RequestId, u16)>,
    bootstrap: bootstrap::Bootstrap,
    /// Requests whose response waits for bound actions (`Action::Bound`).
    deferred: Vec<Deferred>,
    next_ticket: u64,
    /// The time of the latest input, for what `poll_transmit` records.
    now: Instant,
    /// Bumped whenever an observation starts or ends (see `observers_version`).
    observer_generation: u64,
    /// Bumped whenever a notification is stored or a stored one sent, and whenever a
    /// registration exchange ends (see `reporting_version`).
    stored_generation: u64,
    registration_generation: u64,
}

/// A response held until the bound actions of its request are done.
struct Deferred {
    request: IncomingRequest,
    response: Packet,
    waiting: Vec<u64>,
    error: Option<DmError>,
    /// The most a backend may take (MAX_TRANSMIT_SPAN, the span a server retransmits
    /// over): one that has not answered by then gets 5.00 said for it, and its late
    /// answer is ignored.
    deadline: Instant,
    /// When to acknowledge a confirmable request with an empty ACK and answer it later
    /// in a separate response (RFC 7252 §5.2.2); `None` once acknowledged.
    ack_at: Option<Instant>,
    acknowledged: bool,
}

impl Engine {
    /// `seed` feeds the message layer's token and message-ID generator.
    pub fn new(
        config: EngineConfig,
        objects: Vec<Box<dyn Object>>,
        seed: u64,
        now: Instant,
    ) -> Engine {
        let sessions = config
            .servers
            .iter()
            .map(|s| Session::new(s.short_server_id, s.addr, s.uri.clone(), now))
            .collect();
        let mut engine = Engine {
            coap: MessageLayer::new(config.coap.clone(), seed),
            block1: Block1Assembler::new(config.max_upload, config.coap.exchange_lifetime()),
            block1_streams: Block1Streams::new(config.coap.exchange_lifetime()),
            objects: objects.into_iter().map(|o| (o.def().id, o)).collect(),
            sessions,
            actions: VecDeque::new(),
            events: VecDeque::new(),
            disabled_until: Default::default(),
            pending_actions: Vec::new(),
            stopping: false,
            attributes: AttributeStore::default(),
            observations: Vec::new(),
            send_due: config.send.iter().map(|s| now + s.interval).collect(),
            sends_in_flight: Vec::new(),
            deferred: Vec::new(),
            next_ticket: 0,
            now,
            observer_generation: 0,
            stored_generation: 0,
            registration_generation: 0,
            bootstrap: Default::default(),
            config,
        };
        if engine.sessions.is_empty() {
            let delay = engine.bootstrap_hold_off();
            engine.start_bootstrap(now, delay, "no server account");
        }
        engine
    }

    pub fn handle_datagram(&mut self, now: Instant, from: SocketAddr, data: &[u8]) {
        self.now = now;
        let idle = self.queue_idle();
        if let Some(s) = self.sessions.iter_mut().find(|s| s.addr == from) {
            if s.asleep {
                // Queue mode: not listening. The server keeps its requests until the
                // client's next Update.
                tracing::debug!(server = %s.uri, "queue mode: datagram ignored while asleep");
                return;
            }
            s.touch(now, idle);
        }
        if let Some(request) = self.coap.handle_datagram(now, from, data) {
            self.handle_request(now, request);
        }
        self.process(now);
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        self.now = now;
        self.coap.handle_timeout(now);
        self.acknowledge_deferred(now);
        self.expire_deferred(now);
        self.expire_streams(now);
        self.process(now);
    }

    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        let t = self.coap.poll_transmit()?;
        let (now, idle) = (self.now, self.queue_idle());
        if let Some(s) = self.sessions.iter_mut().find(|s| s.addr == t.peer) {
            s.touch(now, idle);
        }
        Some(t)
    }

    /// Queue mode: how long the client listens after its last exchange with a server
    /// (Transport TS §6.4: at least MAX_TRANSMIT_WAIT).
    fn queue_idle(&self) -> Duration {
        self.config.coap.max_transmit_wait()
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        // Sessions wait while a bootstrap runs (see `process`).
        let paused = self.bootstrap.is_active() && !self.stopping;
        self.sessions
            .iter()
            .filter(|_| !paused)
            .filter_map(Session::deadline)
            .chain(self.coap.poll_timeout())
            .chain(self.observation_deadline())
            .chain(self.send_deadline())
            .chain(self.deferred.iter().map(|d| d.deadline))
            .chain(self.deferred.iter().filter_map(|d| d.ack_at))
            .chain(self.bootstrap.deadline())
            .chain(self.block1_streams.poll_timeout())
            .min()
    }

    /// Work for the backends (reboot, set the clock, ...).
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// Sets a value from the device side (a backend's reading). The value is stored
    /// whatever the resource's operations are.
    pub fn set_value(&mut self, path: Path, value: ResourceValue) -> Result<(), DmError> {
        let (Some(o), Some(i), Some(r)) =
            (path.object_id(), path.instance_id(), path.resource_id())
        else {
            return Err(DmError::BadRequest(format!("{path} is not a resource")));
        };
        let obj = self.objects.get_mut(&o).ok_or(DmError::NotFound)?;
        // Only a new instance or a Server object value (lifetime, binding) can change what
        // an Update carries; samples of other values must not rebuild the object list.
        let recheck = o == server::OBJECT_ID || !obj.instances().contains(&i);
        obj.write(i, r, value, false)?;
        if recheck {
            for s in &mut self.sessions {
                s.recheck = true;
            }
        }
        self.values_changed(&path);
        Ok(())
    }

    /// Makes a resource absent (the backend lost its value), as `set_value` sets one.
    pub fn clear_value(&mut self, path: Path) -> Result<(), DmError> {
        let (Some(o), Some(i), Some(r)) =
            (path.object_id(), path.instance_id(), path.resource_id())
        else {
            return Err(DmError::BadRequest(format!("{path} is not a resource")));
        };
        let obj = self.objects.get_mut(&o).ok_or(DmError::NotFound)?;
        obj.remove_value(i, r)?;
        for s in &mut self.sessions {
            s.recheck = true;
        }
        self.values_changed(&path);
        Ok(())
    }

    /// Reads values under a path, as a server would see them.
    pub fn read(&self, path: &Path) -> Result<Vec<crate::codec::Record>, DmError> {
        dm::collect(&self.objects, path)
    }

    /// `(short server ID, server URI, registered)` for each server account.
    pub fn registrations(&self) -> Vec<(u16, &str, bool)> {
        self.sessions
            .iter()
            .map(|s| (s.short_server_id, s.uri.as_str(), s.is_registered()))
            .collect()
    }

    /// When the next Update to a server is due, while registered.
    pub fn next_update(&self, short_server_id: u16) -> Option<Instant> {
        self.sessions
            .iter()
            .find(|s| s.short_server_id == short_server_id && s.is_registered())
            .and_then(|s| s.update_at)
    }

    /// How many observations a server holds.
    pub fn observation_count(&self, short_server_id: u16) -> usize {
        self.observations
            .iter()
            .filter(|o| o.server == short_server_id)
            .count()
    }

    /// Starts de-registering from every server (SIGTERM). `is_stopped` tells when done.
    pub fn shutdown(&mut self, now: Instant) {
        self.stopping = true;
        for s in &mut self.sessions {
            s.update_pending = false;
            if matches!(s.state, State::Registering(_)) {
                // The server may already have registered us: wait for its answer, then
                // de-register (see `handle_coap_event`).
                continue;
            }
            if s.is_registered() {
                deregister(&mut self.coap, s, now);
            } else if !matches!(s.state, State::Deregistering(_)) {
                s.state = State::Stopped;
            }
        }
    }

    /// All sessions are de-registered (or gave up trying) after `shutdown`.
    pub fn is_stopped(&self) -> bool {
        self.sessions.iter().all(|s| s.state == State::Stopped)
    }

    /// Registration state machines and the message layer's events.
    fn process(&mut self, now: Instant) {
        while let Some(ev) = self.coap.poll_event() {
            self.handle_coap_event(now, ev);
        }
        for s in &mut self.sessions {
            let idle_over = s.awake_until.is_some_and(|t| t <= now);
            if s.state == State::Registered && idle_over && !self.coap.is_busy(s.addr) {
                tracing::debug!(server = %s.uri, "queue mode: sleeping");
                s.asleep = true;
                s.awake_until = None;
            }
        }
        self.bootstrap_step(now);
        // While a bootstrap server provisions us, no server is contacted.
        let sessions = if self.bootstrap.is_active() && !self.stopping {
            0
        } else {
            self.sessions.len()
        };
        for idx in 0..sessions {
            let s = &self.sessions[idx];
            let wanted = match s.state {
                State::Unregistered { retry_at } => retry_at <= now,
                State::Registered => {
                    s.recheck || s.update_pending || s.update_at.is_some_and(|t| t <= now)
                }
                _ => false,
            };
            // Building the object list costs an allocation: only when it may be sent.
            let adv = if wanted {
                Some(self.advertised(s.short_server_id))
            } else {
                None
            };
            let s = &mut self.sessions[idx];
            match (s.state, adv) {
                (State::Unregistered { .. }, Some(adv)) => {
                    let req =
                        registration::register_request(&self.config.endpoint, LWM2M_VERSION, &adv);
                    tracing::debug!(server = %s.uri, "registering");
                    s.state = State::Registering(self.coap.send_request(now, s.addr, req, true));
                    s.advertised = Some(adv);
                    s.recheck = false;
                }
                (State::Disabled { until }, _) if until <= now => {
                    s.state = State::Unregistered { retry_at: now }
                }
                (State::Registered, Some(adv)) => {
                    let changed = s.advertised.as_ref() != Some(&adv);
                    let due = s.update_at.is_some_and(|t| t <= now);
                    s.recheck = false;
                    if changed || due || s.update_pending {
                        send_update(&mut self.coap, s, adv, now);
                    }
                }
                _ => {}
            }
        }
        self.send_scheduled(now);
        self.notify_due(now);
    }

    fn handle_coap_event(&mut self, now: Instant, ev: CoapEvent) {
        let (id, response) = match ev {
            CoapEvent::Response { id, response, .. } => (id, Some(response)),
            CoapEvent::Timeout { id, .. } | CoapEvent::Reset { id, .. } => {
                if self.notification_failed(id) {
                    return;
                }
                (id, None)
            }
        };
        if self.send_answered(id, response.as_ref().map(|r| r.header.code)) {
            return;
        }
        if self.bootstrap_answered(now, id, response.as_ref()) {
            return;
        }
        let max_wait = self.config.coap.max_transmit_wait();
        let Some(idx) = self.sessions.iter().position(|s| matches!(s.state, State::Registering(r) | State::Updating(r) | State::Deregistering(r) if r == id)) else {
            return;
        };
        self.registration_generation += 1;
        let rules = self.retry_rules(self.sessions[idx].short_server_id);
        let mut exhausted = false;
        let s = &mut self.sessions[idx];
        let code = response.as_ref().map(|r| r.header.code);
        let ssid = s.short_server_id;
        match s.state {
            State::Registering(_) => match (code, response) {
                (Some(MessageClass::Response(ResponseType::Created)), Some(resp)) => {
                    s.location =
                        string_options(&resp, CoapOption::LocationPath).unwrap_or_default();
                    if s.location.is_empty() {
                        tracing::warn!(server = %s.uri, "registration accepted without a Location-Path");
                    }
                    let lifetime = s
                        .advertised
                        .as_ref()
                        .map_or(crate::config::DEFAULT_LIFETIME, |a| a.lifetime);
                    s.state = State::Registered;
                    s.retry = Default::default();
                    // A new registration ends the server's observations (Core TS §6.2.1).
                    self.observations.retain(|o| o.server != ssid);
                    self.observer_generation += 1;
                    s.schedule_update(now, lifetime, max_wait);
                    tracing::info!(server = %s.uri, location = %s.location.join("/"), "registered");
                    self.events.push_back(Event::Registered {
                        short_server_id: ssid,
                        location: s.location.join("/"),
                    });
                    if self.stopping {
                        deregister(&mut self.coap, s, now);
                    }
                }
                (code, _) => {
                    if self.stopping {
                        s.state = State::Stopped;
                        return;
                    }
                    let reason = code.map_or_else(
                        || "no answer".to_string(),
                        |c| format!("server answered {c}"),
                    );
                    let (delay, schedule) = match rules.next(&mut s.retry) {
                        retry::Retry::Attempt(d) => (
                            d,
                            format!(
                                "attempt {} of {} in {} s",
                                s.retry.attempts + 1,
                                rules.retry_count,
                                d.as_secs()
                            ),
                        ),
                        retry::Retry::Sequence(d) => (
                            d,
                            format!(
                                "communication sequence {} of {} failed; the next in {} s",
                                s.retry.sequences,
                                rules.sequence_retry_count,
                                d.as_secs()
                            ),
                        ),
                        retry::Retry::Exhausted => {
                            exhausted = true;
                            let d = rules.sequence_delay;
                            let then = match rules.bootstrap_on_failure {
                                true => "bootstrapping",
                                false => "starting over",
                            };
                            (d, format!("every communication sequence failed; {then}"))
                        }
                    };
                    tracing::warn!(server = %s.uri, "registration failed: {reason}; {schedule}");
                    let reason = format!("{reason}; {schedule}");
                    s.retry_later(now, delay);
                    self.events.push_back(Event::RegistrationFailed {
                        short_server_id: ssid,
                        reason,
                    });
                    if exhausted {
                        let bootstrapping = rules.bootstrap_on_failure
                            && self.start_bootstrap(now, Duration::ZERO, "registration failed");
                        if !bootstrapping {
                            tracing::warn!(
                                "trying that server again after the sequence delay ({:?})",
                                rules.sequence_delay
                            );
                        }
                    }
                }
            },
            State::Updating(_) => match code {
                Some(MessageClass::Response(ResponseType::Changed)) => {
                    let lifetime = s
                        .advertised
                        .as_ref()
                        .map_or(crate::config::DEFAULT_LIFETIME, |a| a.lifetime);
                    s.state = State::Registered;
                    s.schedule_update(now, lifetime, max_wait);
                    if std::mem::take(&mut s.resumed) {
                        // For this run, that is what a Register would have been.
                        tracing::info!(server = %s.uri, location = %s.location.join("/"), "registered (the previous run's registration)");
                        self.events.push_back(Event::Registered {
                            short_server_id: ssid,
                            location: s.location.join("/"),
                        });
                    } else {
                        tracing::debug!(server = %s.uri, "registration updated");
                        self.events.push_back(Event::Updated {
                            short_server_id: ssid,
                        });
                    }
                    self.release_held(now, ssid);
                }
                None if !self.stopping && s.update_lost(now) => {
                    // Offline (or the server lost our DTLS session): the registration
                    // stays valid until its lifetime ends; notifications are held.
                    tracing::warn!(server = %s.uri, "update got no answer; retrying in {:?}", s.update_retry / 2);
                    self.events.push_back(Event::RegistrationFailed {
                        short_server_id: ssid,
                        reason: "update got no answer".into(),
                    });
                }
                code => {
                    // 4.04: the server forgot us; any other refusal: it may have.
                    tracing::info!(server = %s.uri, "update failed ({code:?}); registering again");
                    s.register_again(now);
                    self.observations.retain(|o| o.server != ssid);
                    self.observer_generation += 1;
                }
            },
            State::Deregistering(_) => {
                s.state = State::Stopped;
                if code.is_some() {
                    // Gone on the server's side too: nothing left to resume.
                    s.expires_at = None;
                }
                tracing::info!(server = %s.uri, "de-registered");
                self.events.push_back(Event::Deregistered {
                    short_server_id: ssid,
                });
            }
            _ => {}
        }
        // A Disable de-registers without stopping: come back after the Disable Timeout.
        if let Some(until) = self.disabled_until.remove(&ssid) {
            if let Some(s) = self
                .sessions
                .iter_mut()
                .find(|s| s.short_server_id == ssid && s.state == State::Stopped)
            {
                s.state = State::Disabled { until };
            }
        }
    }

    /// Queue mode: something is due for a sleeping server. It is told first with an
    /// Update (Transport TS §6.4); reports wait for its answer.
    fn wake(&mut self, now: Instant, short_server_id: u16) {
        let Some(idx) = self
            .sessions
            .iter()
            .position(|s| s.short_server_id == short_server_id && s.asleep)
        else {
            return;
        };
        let adv = self.advertised(short_server_id);
        let s = &mut self.sessions[idx];
        tracing::debug!(server = %s.uri, "queue mode: waking up");
        s.asleep = false;
        s.reconnecting = true;
        if s.state == State::Registered {
            send_update(&mut self.coap, s, adv, now);
        }
    }

    /// Lifetime and binding from the server's instance of object 1, and the object list.
    fn advertised(&self, short_server_id: u16) -> Advertised {
        let lifetime = match self.server_resource(short_server_id, server::LIFETIME) {
            Some(Value::Integer(lt)) => u32::try_from(lt).unwrap_or(u32::MAX).max(1),
            _ => crate::config::DEFAULT_LIFETIME,
        };
        let binding = match self.server_resource(short_server_id, server::BINDING) {
            Some(Value::String(b)) => b,
            _ => "U".to_string(),
        };
        Advertised {
            lifetime,
            binding,
            objects: self.object_list(),
        }
    }

    /// A single-instance resource of the Server object instance (/1/x) whose Short
    /// Server ID is `short_server_id`.
    fn server_resource(&self, short_server_id: u16, resource: u16) -> Option<Value> {
        let obj = self.objects.get(&1)?;
        let me = Some(ResourceValue::Single(Value::Integer(
            short_server_id.into(),
        )));
        let instance = obj
            .instances()
            .into_iter()
            .find(|&i| obj.read(i, server::SHORT_SERVER_ID) == me)?;
        match obj.read(instance, resource)? {
            ResourceValue::Single(v) => Some(v),
            ResourceValue::Multiple(_) => None,
        }
    }

    /// The Register payload: `</>;rt="oma.lwm2m";ct="..."` then each object (except Security)
    /// with its version where not 1.0, and its instances.
    fn object_list(&self) -> String {
        let mut links = vec![Link {
            target: "/".into(),
            attrs: vec![
                ("rt".into(), Some("oma.lwm2m".into())),
                ("ct".into(), Some(ANNOUNCED_FORMATS.to_string())),
            ],
        }];
        for (id, obj) in self.objects.iter().filter(|(id, _)| **id != 0) {
            let def = obj.def();
            let instances = obj.instances();
            if def.version != "1.0" || instances.is_empty() {
                links.push(dm::object_link(*id, def.version));
            }
            links.extend(instances.into_iter().map(|i| Link {
                target: Path::instance(*id, i).to_string(),
                attrs: Vec::new(),
            }));
        }
        encode_links(&links)
    }

    fn handle_request(&mut self, now: Instant, request: IncomingRequest) {
        if self.is_bootstrap_server(request.peer) {
            self.bootstrap_request(now, &request);
            return;
        }
        let response = self.dm_response(now, &request);
        let mut actions: Vec<Action> = std::mem::take(&mut self.pending_actions);
        let mut waiting = Vec::new();
        for action in &mut actions {
            if let Action::Bound(b) = action {
                self.next_ticket = self.next_ticket.wrapping_add(1);
                b.ticket = self.next_ticket;
                waiting.push(b.ticket);
            }
        }
        if waiting.is_empty() {
            self.coap.respond(now, &request, response);
        } else {
            // A quick backend's answer goes piggybacked. A slower one's goes separately,
            // after an empty ACK sent before the server's first retransmission (half of
            // ACK_TIMEOUT), so the server stops retransmitting and waits for it.
            self.deferred.push(Deferred {
                request,
                response,
                waiting,
                error: None,
                deadline: now + self.config.coap.max_transmit_span(),
                ack_at: Some(now + self.config.coap.ack_timeout / 2),
                acknowledged: false,
            });
        }
        for action in actions {
            self.apply(now, action);
        }
    }

    fn acknowledge_deferred(&mut self, now: Instant) {
        for d in &mut self.deferred {
            if d.ack_at.is_some_and(|t| t <= now) {
                d.ack_at = None;
                d.acknowledged = self.coap.acknowledge(now, &d.request);
                if d.acknowledged {
                    tracing::debug!(peer = %d.request.peer, "backend still working: empty ACK, separate response to follow");
                }
            }
        }
    }

    fn expire_deferred(&mut self, now: Instant) {
        while let Some(idx) = self.deferred.iter().position(|d| d.deadline <= now) {
            let d = self.deferred.swap_remove(idx);
            tracing::warn!(tickets = ?d.waiting, "no outcome from the backend in time: 5.00");
            self.finish_deferred(now, d, Some(DmError::Internal("no outcome in time".into())));
        }
    }

    fn finish_deferred(&mut self, now: Instant, mut d: Deferred, error: Option<DmError>) {
        if let Some(e) = error.or(d.error.take()) {
            d.response.clear_all_options();
            d.response.payload.clear();
            d.response.header.code = MessageClass::Response(dm::error_code(&e));
        }
        if d.acknowledged {
            self.coap.respond_separately(now, &d.request, d.response);
        } else {
            self.coap.respond(now, &d.request, d.response);
        }
    }

    /// The outcome of an `Action::Bound`: once every bound action of a request is done,
    /// its response goes out, with the first error's code if one failed.
    pub fn complete_action(&mut self, now: Instant, ticket: u64, result: Result<(), DmError>) {
        let Some(idx) = self
            .deferred
            .iter()
            .position(|d| d.waiting.contains(&ticket))
        else {
            return;
        };
        let Some(d) = self.deferred.get_mut(idx) else {
            return;
        };
        d.waiting.retain(|t| *t != ticket);
        if let Err(e) = result {
            d.error.get_or_insert(e);
        }
        if !d.waiting.is_empty() {
            return;
        }
        let d = self.deferred.swap_remove(idx);
        self.finish_deferred(now, d, None);
    }

    /// Creates an instance on the device's own behalf (a local application). Servers
    /// learn of it from a Registration Update, observers of the object from a
    /// notification.
    pub fn create_instance(&mut self, now: Instant, path: Path) -> Result<(), DmError> {
        self.change_instance(now, path, |object, i| object.create_local(i))
    }

    /// Deletes an instance on the device's own behalf, as `create_instance` creates one.
    pub fn delete_instance(&mut self, now: Instant, path: Path) -> Result<(), DmError> {
        self.change_instance(now, path, |object, i| object.delete_local(i))
    }

    fn change_instance(
        &mut self,
        now: Instant,
        path: Path,
        change: impl FnOnce(&mut dyn Object, u16) -> Result<(), DmError>,
    ) -> Result<(), DmError> {
        let (Some(o), Some(i), None) = (path.object_id(), path.instance_id(), path.resource_id())
        else {
            return Err(DmError::BadRequest(format!("{path} is not an instance")));
        };
        let object = self.objects.get_mut(&o).ok_or(DmError::NotFound)?;
        change(object.as_mut(), i)?;
        // Access Control follows, as for a server's Create or Delete.
        if object.instances().contains(&i) {
            self.sync_factory_access();
        } else {
            self.access_deleted(path);
        }
        self.instances_changed(now, o);
        Ok(())
    }

    fn instances_changed(&mut self, now: Instant, object: u16) {
        self.now = now;
        for s in &mut self.sessions {
            s.recheck = true;
        }
        self.values_changed(&Path::object(object));
        self.process(now);
    }

    /// Engine-level actions are carried out here; the rest go to the daemon.
    fn apply(&mut self, now: Instant, action: Action) {
        match action {
            Action::UpdateRegistration { short_server_id } => {
                if let Some(s) = self
                    .sessions
                    .iter_mut()
                    .find(|s| s.short_server_id == short_server_id)
                {
                    match s.state {
                        State::Registered => s.update_at = Some(now),
                        State::Updating(_) | State::Registering(_) => s.update_pending = true,
                        _ => {}
                    }
                }
            }
            Action::DisableServer { short_server_id } => {
                let timeout = self.disable_timeout(short_server_id);
                if let Some(s) = self
                    .sessions
                    .iter_mut()
                    .find(|s| s.short_server_id == short_server_id)
                {
                    tracing::info!(server = %s.uri, "disabled for {timeout:?}");
                    self.disabled_until.insert(short_server_id, now + timeout);
                    s.update_pending = false;
                    if s.is_registered() {
                        deregister(&mut self.coap, s, now);
                    } else {
                        s.state = State::Disabled {
                            until: now + timeout,
                        };
                    }
                }
            }
            Action::RequestBootstrap => {
                self.start_bootstrap(now, Duration::ZERO, "Bootstrap-Request Trigger executed");
            }
            other => self.actions.push_back(other),
        }
    }

    /// The retry rules (/1/x/16–20) of a server account.
    fn retry_rules(&self, short_server_id: u16) -> retry::RetryRules {
        let Some(obj) = self.objects.get(&1) else {
            return Default::default();
        };
        let me = Some(ResourceValue::Single(Value::Integer(
            short_server_id.into(),
        )));
        obj.instances()
            .into_iter()
            .find(|&i| obj.read(i, server::SHORT_SERVER_ID) == me)
            .map_or_else(Default::default, |i| retry::RetryRules::of(obj.as_ref(), i))
    }

    fn disable_timeout(&self, short_server_id: u16) -> Duration {
        let secs = match self.server_resource(short_server_id, server::DISABLE_TIMEOUT) {
            Some(Value::Integer(n)) => u64::try_from(n).ok(),
            _ => None,
        };
        retry::delay_secs(secs.unwrap_or(86400))
    }

    /// Builds the response to a request from a server, running the DM operation.
    fn dm_response(&mut self, now: Instant, request: &IncomingRequest) -> Packet {
        let packet = &request.packet;
        let mut response = Packet::new();
        let MessageClass::Request(method) = packet.header.code else {
            response.header.code = MessageClass::Response(ResponseType::BadRequest);
            return response;
        };
        let dm = match self.parse_request(request) {
            Ok(dm) => dm,
            Err(code) => {
                response.header.code = MessageClass::Response(code);
                return response;
            }
        };
        let (block1, requested_block2) = match (
            block::block1(packet).transpose(),
            block::block2(packet).transpose(),
        ) {
            (Ok(b1), Ok(b2)) => (b1, b2),
            _ => {
                response.header.code = MessageClass::Response(ResponseType::BadOption);
                return response;
            }
        };
        if let Some(b) = block1 {
            if let Some((i, r)) = self.streamed_target(method, &dm) {
                return self.stream_block(now, request, dm.path, (i, r), b);
            }
        }
        // Block1: collect an upload before running the operation on the whole payload.
        let assembled;
        let payload: &[u8] = match block1 {
            None => &packet.payload,
            Some(b) => {
                let key = Block1Key {
                    peer: request.peer,
                    path: dm.path.to_string(),
                };
                match self.block1.push(now, key, b, &packet.payload) {
                    Ok(Block1Progress::Continue) => {
                        response.header.code = MessageClass::Response(ResponseType::Continue);
                        block::set_block1(&mut response, BlockOption { more: true, ..b });
                        return response;
                    }
                    Ok(Block1Progress::Complete(data)) => {
                        block::set_block1(&mut response, b);
                        assembled = data;
                        &assembled
                    }
                    Err(Block1Error::OutOfOrder) => {
                        response.header.code =
                            MessageClass::Response(ResponseType::RequestEntityIncomplete);
                        return response;
                    }
                    Err(Block1Error::TooLarge { max }) => {
                        response.header.code =
                            MessageClass::Response(ResponseType::RequestEntityTooLarge);
                        block::set_size1(&mut response, u32::try_from(max).unwrap_or(u32::MAX));
                        return response;
                    }
                }
            }
        };
        let req = DmRequest {
            server: dm.server,
            method,
            path: dm.path,
            queries: &dm.queries,
            accept: dm.accept,
            content_format: dm.content_format,
            payload,
        };
        if method != coap_lite::RequestType::Get {
            // A Write, Create or Delete may change the lifetime, binding or object list,
            // and the Server object's default periods that observations follow.
            for s in &mut self.sessions {
                s.recheck = true;
            }
            self.observer_generation += 1;
        }
        self.sync_factory_access();
        if self.access_denied(&req) {
            response.header.code = MessageClass::Response(ResponseType::Unauthorized);
            return response;
        }
        let mut actions = Vec::new();
        let result: DmResponse = dm::dispatch(
            &mut self.objects,
            &mut self.attributes,
            &req,
            self.config.preferred_format,
            &mut actions,
        );
        self.pending_actions.extend(actions);
        match (result.code, result.location) {
            (ResponseType::Created, Some(created)) => self.access_created(dm.server, created),
            (ResponseType::Deleted, _) => self.access_deleted(dm.path),
            _ => {}
        }
        response.header.code = MessageClass::Response(result.code);
        let succeeded = matches!(
            result.code,
            ResponseType::Changed
                | ResponseType::Created
                | ResponseType::Deleted
                | ResponseType::Content
        );
        let fetch = method == coap_lite::RequestType::Fetch;
        let observable = fetch
            || (method == coap_lite::RequestType::Get
                && req.accept != Some(ContentFormat::LinkFormat.code()));
        if observable {
            // Observe (RFC 7641): 0 registers interest, 1 cancels it. A bad value is ignored.
            match uint_option(packet, CoapOption::Observe) {
                Ok(Some(0)) if succeeded && requested_block2.is_none_or(|b| b.num == 0) => {
                    let format = result
                        .content_format
                        .and_then(ContentFormat::from_code)
                        .unwrap_or(self.config.preferred_format);
                    // Observe-Composite: the paths the FETCH named (already decoded once
                    // by the Read-Composite that succeeded).
                    let composite = match fetch {
                        true => req
                            .content_format
                            .and_then(ContentFormat::from_code)
                            .and_then(|f| crate::codec::composite::decode_paths(f, payload).ok())
                            .unwrap_or_default(),
                        false => Vec::new(),
                    };
                    let accepted = !fetch || !composite.is_empty();
                    if accepted {
                        if let Some(seq) =
                            self.establish(now, dm.server, request, dm.path, composite, format)
                        {
                            response.add_option(CoapOption::Observe, encode_uint(seq));
                        }
                    }
                }
                Ok(Some(1)) => self.cancel_observation(request.peer, packet.get_token()),
                _ => {}
            }
        } else if succeeded && method != coap_lite::RequestType::Get {
            self.values_changed(&dm.path);
        }
        if let Some(cf) = result.content_format {
            response.add_option(CoapOption::ContentFormat, encode_uint(cf.into()));
        }
        if let Some(loc) = result.location {
            let segments: Vec<String> = loc.ids().iter().map(u16::to_string).collect();
            add_string_options(
                &mut response,
                CoapOption::LocationPath,
                segments.iter().map(String::as_str),
            );
        }
        // Block2: large representations (or a server asking for small blocks) go in pieces.
        match block::block2_slice(&result.payload, requested_block2, self.config.block_size) {
            Ok(None) => response.payload = result.payload,
            Ok(Some((slice, option))) => {
                block::set_block2(&mut response, option);
                if option.num == 0 {
                    block::set_size2(
                        &mut response,
                        u32::try_from(result.payload.len()).unwrap_or(u32::MAX),
                    );
                }
                response.payload = slice.to_vec();
            }
            Err(e) => {
                response.clear_all_options();
                response.header.code = MessageClass::Response(match e {
                    Block2Error::OutOfRange { .. } => ResponseType::BadOption,
                    Block2Error::NotAddressable => ResponseType::RequestEntityTooLarge,
                });
            }
        }
        response
    }

    /// The LwM2M parts of a request: path, queries, Accept, Content-Format. Requests from
    /// addresses that are not our servers are refused.
    fn parse_request(&self, request: &IncomingRequest) -> Result<ParsedRequest, ResponseType> {
        let Some(server) = self
            .sessions
            .iter()
            .find(|s| s.addr == request.peer && s.is_registered())
            .map(|s| s.short_server_id)
        else {
            tracing::debug!(peer = %request.peer, "request from a peer we are not registered with");
            return Err(ResponseType::Unauthorized);
        };
        let packet = &request.packet;
        let segments =
            string_options(packet, CoapOption::UriPath).map_err(|_| ResponseType::BadRequest)?;
        let path = Path::from_segments(segments.iter().map(String::as_str)).map_err(|e| {
            tracing::debug!("bad request path: {e}");
            ResponseType::NotFound
        })?;
        let queries =
            string_options(packet, CoapOption::UriQuery).map_err(|_| ResponseType::BadRequest)?;
        let accept =
            uint_option(packet, CoapOption::Accept).map_err(|_| ResponseType::BadOption)?;
        let content_format =
            uint_option(packet, CoapOption::ContentFormat).map_err(|_| ResponseType::BadOption)?;
        let to_u16 = |v: Option<u32>| {
            v.map(|n| u16::try_from(n).map_err(|_| ResponseType::BadOption))
                .transpose()
        };
        Ok(ParsedRequest {
            server,
            path,
            queries,
            accept: to_u16(accept)?,
            content_format: to_u16(content_format)?,
        })
    }
}

/// Sends an Update carrying what changed since the server was last told.
fn send_update(coap: &mut MessageLayer, s: &mut Session, adv: Advertised, now: Instant) {
    let old = s.advertised.clone().unwrap_or_else(|| adv.clone());
    let req = registration::update_request(&s.location, &old, &adv);
    s.state = State::Updating(coap.send_request(now, s.addr, req, true));
    s.update_pending = false;
    s.update_at = None;
    s.advertised = Some(adv);
}

impl Engine {
    /// The instance and resource a Block1 request writes piece by piece, when its object
    /// streams that resource and the payload is the raw value (opaque or no format).
    fn streamed_target(
        &self,
        method: coap_lite::RequestType,
        dm: &ParsedRequest,
    ) -> Option<(u16, u16)> {
        use coap_lite::RequestType::{Post, Put};
        if !matches!(method, Put | Post)
            || !matches!(dm.content_format, None | Some(42))
            || dm.path.len() != 3
        {
            return None;
        }
        let (o, i, r) = (
            dm.path.object_id()?,
            dm.path.instance_id()?,
            dm.path.resource_id()?,
        );
        let obj = self.objects.get(&o).filter(|_| o != 0)?;
        let writable = obj.def().resource(r)?.operations.writable();
        (writable && obj.instances().contains(&i) && obj.streams(i, r)).then_some((i, r))
    }

    /// One block of a streamed upload: placed by `block1_streams`, handed to the object.
    fn stream_block(
        &mut self,
        now: Instant,
        request: &IncomingRequest,
        path: Path,
        (instance, resource): (u16, u16),
        b: BlockOption,
    ) -> Packet {
        let mut response = Packet::new();
        let key = Block1Key {
            peer: request.peer,
            path: path.to_string(),
        };
        let data = &request.packet.payload;
        let code = match self.block1_streams.accept(now, &key, b, data.len()) {
            Err(_) => {
                // The object's upload (if any) cannot be completed any more.
                if let Some(obj) = path.object_id().and_then(|o| self.objects.get_mut(&o)) {
                    let _ = obj.write_chunk(instance, resource, Chunk::Abort);
                }
                self.values_changed(&path.parent());
                ResponseType::RequestEntityIncomplete
            }
            Ok(StreamStep::Duplicate) => ResponseType::Continue,
            Ok(StreamStep::Write { offset }) => {
                let chunk = Chunk::Data {
                    offset,
                    data,
                    last: !b.more,
                    size: (offset == 0)
                        .then(|| block::size1(&request.packet))
                        .flatten()
                        .map(u64::from),
                };
                let result = match path.object_id().and_then(|o| self.objects.get_mut(&o)) {
                    Some(obj) => obj.write_chunk(instance, resource, chunk),
                    None => Err(DmError::NotFound),
                };
                if offset == 0 || !b.more || result.is_err() {
                    self.values_changed(&path.parent());
                }
                match result {
                    Ok(actions) => {
                        self.pending_actions.extend(actions);
                        if b.more {
                            ResponseType::Continue
                        } else {
                            ResponseType::Changed
                        }
                    }
                    Err(e) => {
                        tracing::debug!(%path, "streamed write refused: {e}");
                        self.block1_streams.cancel(&key);
                        if let DmError::TooLarge { max } = e {
                            block::set_size1(&mut response, u32::try_from(max).unwrap_or(u32::MAX));
                        }
                        dm::error_code(&e)
                    }
                }
            }
        };
        response.header.code = MessageClass::Response(code);
        if matches!(code, ResponseType::Continue | ResponseType::Changed) {
            block::set_block1(&mut response, b);
        }
        response
    }

    /// Streamed uploads whose next block did not come: their objects are told.
    fn expire_streams(&mut self, now: Instant) {
        for key in self.block1_streams.expire(now) {
            let Ok(path) = key.path.parse::<Path>() else {
                continue;
            };
            tracing::warn!(%path, peer = %key.peer, "streamed upload abandoned");
            if let (Some(o), Some(i), Some(r)) =
                (path.object_id(), path.instance_id(), path.resource_id())
            {
                if let Some(obj) = self.objects.get_mut(&o) {
                    let _ = obj.write_chunk(i, r, Chunk::Abort);
                }
                self.values_changed(&path.parent());
            }
        }
    }
}

/// Sends the De-register of a session.
fn deregister(coap: &mut MessageLayer, s: &mut Session, now: Instant) {
    let id = coap.send_request(
        now,
        s.addr,
        registration::deregister_request(&s.location),
        true,
    );
    s.state = State::Deregistering(id);
}

struct ParsedRequest {
    server: u16,
    path: Path,
    queries: Vec<String>,
    accept: Option<u16>,
    content_format: Option<u16>,
}
