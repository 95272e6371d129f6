//! The sans-IO LwM2M client engine: registration with each server and device
//! management over the CoAP message layer. No sockets, no clock, no threads: the daemon
//! (or a test) feeds datagrams and time in and takes datagrams, deadlines and actions out.

pub mod attributes;
pub mod dm;
mod notify;
pub mod observe;
pub mod options;
pub mod registration;
mod send;

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
        Engine {
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
            config,
        }
    }

    pub fn handle_datagram(&mut self, now: Instant, from: SocketAddr, data: &[u8]) {
        if let Some(request) = self.coap.handle_datagram(now, from, data) {
            self.handle_request(now, request);
        }
        self.process(now);
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        self.coap.handle_timeout(now);
        self.expire_streams(now);
        self.process(now);
    }

    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.coap.poll_transmit()
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        self.sessions
            .iter()
            .filter_map(Session::deadline)
            .chain(self.coap.poll_timeout())
            .chain(self.observation_deadline())
            .chain(self.send_deadline())
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
        obj.write(i, r, value, false)?;
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
        for idx in 0..self.sessions.len() {
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
                        let old = s.advertised.clone().unwrap_or_else(|| adv.clone());
                        let req = registration::update_request(&s.location, &old, &adv);
                        s.state = State::Updating(self.coap.send_request(now, s.addr, req, true));
                        s.update_pending = false;
                        s.update_at = None;
                        s.advertised = Some(adv);
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
        let max_wait = self.config.coap.max_transmit_wait();
        let Some(s) = self.sessions.iter_mut().find(|s| matches!(s.state, State::Registering(r) | State::Updating(r) | State::Deregistering(r) if r == id)) else {
            return;
        };
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
                    s.retry_delay = registration::FIRST_RETRY;
                    // A new registration ends the server's observations (Core TS §6.2.1).
                    self.observations.retain(|o| o.server != ssid);
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
                    tracing::warn!(server = %s.uri, "registration failed: {reason}; retrying in {:?}", s.retry_delay);
                    s.retry_later(now);
                    self.events.push_back(Event::RegistrationFailed {
                        short_server_id: ssid,
                        reason,
                    });
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
                    tracing::debug!(server = %s.uri, "registration updated");
                    self.events.push_back(Event::Updated {
                        short_server_id: ssid,
                    });
                }
                code => {
                    // 4.04: the server forgot us; anything else or silence: it may have.
                    tracing::info!(server = %s.uri, "update failed ({code:?}); registering again");
                    s.register_again(now);
                }
            },
            State::Deregistering(_) => {
                s.state = State::Stopped;
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
        let response = self.dm_response(now, &request);
        self.coap.respond(now, &request, response);
        let actions: Vec<Action> = std::mem::take(&mut self.pending_actions);
        for action in actions {
            self.apply(now, action);
        }
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
            other => self.actions.push_back(other),
        }
    }

    fn disable_timeout(&self, short_server_id: u16) -> Duration {
        let secs = match self.server_resource(short_server_id, server::DISABLE_TIMEOUT) {
            Some(Value::Integer(n)) => u64::try_from(n).ok(),
            _ => None,
        };
        Duration::from_secs(secs.unwrap_or(86400))
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
            // A Write, Create or Delete may change the lifetime, binding or object list.
            for s in &mut self.sessions {
                s.recheck = true;
            }
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
