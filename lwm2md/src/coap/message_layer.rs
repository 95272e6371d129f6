//! The CoAP message layer (RFC 7252 §4, §5.2): confirmable retransmission, matching of
//! ACKs, resets and responses, request deduplication, NSTART.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use coap_lite::{MessageClass, MessageType, Packet, ResponseType};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

/// MAX_LATENCY of RFC 7252 §4.8.2.
const MAX_LATENCY: Duration = Duration::from_secs(100);

/// Most remembered incoming messages; the oldest is forgotten beyond this.
const DEDUP_CAPACITY: usize = 256;

const TOKEN_LEN: usize = 8;

const VERSION: u8 = 1;
const TYPE_CON: u8 = 0;
const TYPE_NON: u8 = 1;
const TYPE_ACK: u8 = 2;
const TYPE_RST: u8 = 3;

/// Critical options a request may carry and the engine understands.
const REQUEST_CRITICAL: [u16; 9] = [1, 3, 5, 7, 11, 15, 17, 23, 27];
/// Proxy-Uri and Proxy-Scheme: we are no proxy.
const PROXY_OPTIONS: [u16; 2] = [35, 39];
/// Critical options a response may carry and the engine understands (Block2, Block1).
const RESPONSE_CRITICAL: [u16; 2] = [23, 27];

/// Transmission parameters (RFC 7252 §4.8).
#[derive(Clone, Debug, PartialEq)]
pub struct CoapParams {
    pub ack_timeout: Duration,
    pub ack_random_factor: f64,
    pub max_retransmit: u32,
    pub nstart: usize,
}

impl Default for CoapParams {
    fn default() -> Self {
        Self {
            ack_timeout: Duration::from_secs(2),
            ack_random_factor: 1.5,
            max_retransmit: 4,
            nstart: 1,
        }
    }
}

impl CoapParams {
    /// Time from the first transmission of a CON to when its message ID may be reused
    /// (247 s with the defaults).
    pub fn exchange_lifetime(&self) -> Duration {
        self.max_transmit_span()
            .saturating_add(MAX_LATENCY.saturating_mul(2))
            .saturating_add(self.ack_timeout)
    }

    /// Time from the first transmission of a CON to when the sender gives up (93 s with
    /// the defaults).
    pub fn max_transmit_wait(&self) -> Duration {
        self.scaled_ack_timeout((self.doublings(1) - 1.0) * self.random_factor())
    }

    /// Time from the first to the last transmission of a CON (45 s with the defaults).
    pub fn max_transmit_span(&self) -> Duration {
        self.scaled_ack_timeout((self.doublings(0) - 1.0) * self.random_factor())
    }

    /// 2^(MAX_RETRANSMIT + extra).
    fn doublings(&self, extra: u32) -> f64 {
        let exp = self.max_retransmit.saturating_add(extra).min(1100);
        2f64.powi(exp as i32)
    }

    /// A factor below 1 (or not a number) would make the random range empty.
    fn random_factor(&self) -> f64 {
        if self.ack_random_factor.is_finite() && self.ack_random_factor >= 1.0 {
            self.ack_random_factor
        } else {
            1.0
        }
    }

    fn scaled_ack_timeout(&self, multiple: f64) -> Duration {
        Duration::try_from_secs_f64(self.ack_timeout.as_secs_f64() * multiple)
            .unwrap_or(Duration::MAX)
    }

    fn nstart(&self) -> usize {
        self.nstart.max(1)
    }
}

/// Identifies a request sent with [`MessageLayer::send_request`].
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct RequestId(u64);

/// A datagram to send.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Transmit {
    pub peer: SocketAddr,
    pub data: Vec<u8>,
}

/// A request from a peer, to be answered with [`MessageLayer::respond`].
#[derive(Clone, Debug)]
pub struct IncomingRequest {
    pub peer: SocketAddr,
    pub packet: Packet,
}

/// What became of a request we sent.
#[derive(Clone, Debug)]
pub enum Event {
    Response {
        id: RequestId,
        peer: SocketAddr,
        response: Packet,
    },
    /// No ACK/response after MAX_RETRANSMIT retransmissions (or no separate response
    /// within EXCHANGE_LIFETIME after an empty ACK, or no response to a NON request within
    /// MAX_TRANSMIT_WAIT). Also reported at once for a request that cannot be encoded.
    Timeout { id: RequestId, peer: SocketAddr },
    /// The peer answered our message with RST.
    Reset { id: RequestId, peer: SocketAddr },
}

enum State {
    /// CON sent, no ACK yet.
    Unacknowledged {
        bytes: Vec<u8>,
        retransmissions: u32,
        timeout: Duration,
    },
    /// NON sent, awaiting its response.
    NonConfirmable,
    /// Empty ACK received, awaiting the separate response. No longer counts against
    /// NSTART (RFC 7252 §4.7).
    AwaitingSeparate,
}

struct Exchange {
    id: RequestId,
    peer: SocketAddr,
    mid: u16,
    token: [u8; TOKEN_LEN],
    token_len: usize,
    /// A notification (or a separate response) expects no response, only an ACK (CON)
    /// or nothing (NON).
    notification: bool,
    state: State,
    deadline: Instant,
}

impl Exchange {
    fn token(&self) -> &[u8] {
        self.token.get(..self.token_len).unwrap_or_default()
    }

    fn counts_for_nstart(&self) -> bool {
        !self.notification && !matches!(self.state, State::AwaitingSeparate)
    }
}

struct Queued {
    id: RequestId,
    peer: SocketAddr,
    packet: Packet,
    confirmable: bool,
}

/// A message received from a peer, remembered to recognise its duplicates.
struct Seen {
    peer: SocketAddr,
    mid: u16,
    expires: Instant,
    /// What was sent back, replayed for a duplicate; `None` while the application is
    /// still working on the request.
    reply: Option<Vec<u8>>,
}

/// The CoAP message layer of one endpoint, sans-IO.
pub struct MessageLayer {
    params: CoapParams,
    rng: SmallRng,
    next_mid: u16,
    next_id: u64,
    exchanges: Vec<Exchange>,
    queue: VecDeque<Queued>,
    seen: VecDeque<Seen>,
    transmits: VecDeque<Transmit>,
    events: VecDeque<Event>,
    /// The latest non-confirmable notifications, so that a RST to one of them can be
    /// told to the engine. Bounded and without deadlines: a stream of notifications
    /// keeps no per-message state and causes no wake-ups.
    recent_non: VecDeque<(SocketAddr, u16, RequestId)>,
}

/// How many non-confirmable notifications a RST can still be matched to.
const RECENT_NON: usize = 64;

impl MessageLayer {
    pub fn new(params: CoapParams, seed: u64) -> Self {
        let mut rng = SmallRng::seed_from_u64(seed);
        let next_mid = rng.next_u32() as u16;
        Self {
            params,
            rng,
            next_mid,
            next_id: 0,
            exchanges: Vec::new(),
            queue: VecDeque::new(),
            seen: VecDeque::new(),
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            recent_non: VecDeque::new(),
        }
    }

    /// Sends a request as CON (or NON if `!confirmable`). The layer assigns the message
    /// ID and a fresh random 8-byte token (overwriting the packet's). NSTART per peer:
    /// if an exchange with that peer is outstanding the request is queued and sent when
    /// it completes.
    pub fn send_request(
        &mut self,
        now: Instant,
        peer: SocketAddr,
        mut request: Packet,
        confirmable: bool,
    ) -> RequestId {
        let id = RequestId(self.next_id);
        self.next_id = self.next_id.wrapping_add(1);
        request.set_token(self.fresh_token().to_vec());
        let queued = Queued {
            id,
            peer,
            packet: request,
            confirmable,
        };
        if self.outstanding(peer) < self.params.nstart() {
            self.start(now, queued);
        } else {
            self.queue.push_back(queued);
        }
        id
    }

    /// Sends a response outside of a request's exchange: an Observe notification
    /// (RFC 7641) carrying the observer's `token`, with a new MID, right away (not
    /// queued behind NSTART). A CON notification is retransmitted like a request; its
    /// ACK ends it silently, RST gives [`Event::Reset`] (the observer is gone), no ACK
    /// gives [`Event::Timeout`]. A NON notification keeps no timer; a RST to one of the
    /// latest 64 gives [`Event::Reset`]; otherwise nothing is reported.
    pub fn send_notification(
        &mut self,
        now: Instant,
        peer: SocketAddr,
        token: &[u8],
        mut notification: Packet,
        confirmable: bool,
    ) -> RequestId {
        let id = RequestId(self.next_id);
        self.next_id = self.next_id.wrapping_add(1);
        let token = token.get(..TOKEN_LEN).unwrap_or(token);
        notification.set_token(token.to_vec());
        if let Some(index) = self.exchanges.iter().position(|e| {
            e.notification
                && e.peer == peer
                && e.token() == token
                && matches!(e.state, State::Unacknowledged { .. })
        }) {
            self.supersede(index, id, notification);
        } else {
            self.transmit_new(now, id, peer, notification, confirmable, true);
        }
        id
    }

    /// RFC 7641 §4.5.2: while a confirmable notification to an observer is unacknowledged,
    /// a newer one takes its place instead of going out beside it. The old one is not
    /// retransmitted again; the new one (confirmable, new MID) goes out at the old one's
    /// next retransmission time with its counter and timeout, so the observer never
    /// has more than one outstanding and a superseded state is never sent twice.
    fn supersede(&mut self, index: usize, id: RequestId, mut notification: Packet) {
        let mid = self.alloc_mid();
        notification.header.message_id = mid;
        notification.header.set_type(MessageType::Confirmable);
        let Some(exchange) = self.exchanges.get_mut(index) else {
            return;
        };
        let Ok(new_bytes) = notification.to_bytes_unlimited() else {
            self.events.push_back(Event::Timeout {
                id,
                peer: exchange.peer,
            });
            return;
        };
        if let State::Unacknowledged { bytes, .. } = &mut exchange.state {
            *bytes = new_bytes;
        }
        exchange.id = id;
        exchange.mid = mid;
    }

    /// Feeds one received datagram. Returns a new incoming request for the application;
    /// everything else (ACKs, RSTs, responses to our requests, duplicates, malformed
    /// datagrams) is handled inside and yields `None`.
    pub fn handle_datagram(
        &mut self,
        now: Instant,
        peer: SocketAddr,
        data: &[u8],
    ) -> Option<IncomingRequest> {
        self.expire_seen(now);
        let &[first, code, mid_hi, mid_lo] = data.get(..4)? else {
            return None;
        };
        // Unknown versions are silently ignored (RFC 7252 §3).
        if first >> 6 != VERSION {
            return None;
        }
        let kind = (first >> 4) & 0x03;
        let mid = u16::from_be_bytes([mid_hi, mid_lo]);

        if code == 0 {
            if data.len() != 4 {
                self.reject(peer, kind, mid);
                return None;
            }
            match kind {
                // CoAP ping.
                TYPE_CON => self.send_reset(peer, mid),
                TYPE_ACK => self.on_ack(now, peer, mid, None),
                TYPE_RST => self.on_reset(now, peer, mid),
                _ => {}
            }
            return None;
        }

        let Some(packet) = parse(data) else {
            self.reject(peer, kind, mid);
            return None;
        };
        match code >> 5 {
            0 => self.on_request(now, peer, kind, mid, packet),
            2 | 4 | 5 => {
                self.on_response(now, peer, kind, mid, packet);
                None
            }
            _ => {
                self.reject(peer, kind, mid);
                None
            }
        }
    }

    /// Sends the response to an incoming request: piggybacked in an ACK (same MID,
    /// token copied) for a CON request, as NON (new MID) for a NON request. The encoded
    /// response is kept for EXCHANGE_LIFETIME so that a duplicate of the request gets the
    /// same bytes again.
    pub fn respond(&mut self, now: Instant, request: &IncomingRequest, mut response: Packet) {
        self.expire_seen(now);
        let peer = request.peer;
        let request_mid = request.packet.header.message_id;
        let (kind, mid) = if request.packet.header.get_type() == MessageType::Confirmable {
            (MessageType::Acknowledgement, request_mid)
        } else {
            (MessageType::NonConfirmable, self.alloc_mid())
        };
        let token = request.packet.get_token();
        let token = token.get(..TOKEN_LEN).unwrap_or(token).to_vec();
        response.header.set_type(kind);
        response.header.message_id = mid;
        response.set_token(token.clone());
        let bytes = match response.to_bytes_unlimited() {
            Ok(bytes) => bytes,
            Err(_) => {
                let mut fallback = Packet::new();
                fallback.header.set_type(kind);
                fallback.header.message_id = mid;
                fallback.header.code = MessageClass::Response(ResponseType::InternalServerError);
                fallback.set_token(token);
                match fallback.to_bytes_unlimited() {
                    Ok(bytes) => bytes,
                    Err(_) => return,
                }
            }
        };
        match self.seen_mut(peer, request_mid) {
            Some(seen) => seen.reply = Some(bytes.clone()),
            None => self.remember(now, peer, request_mid, Some(bytes.clone())),
        }
        self.transmits.push_back(Transmit { peer, data: bytes });
    }

    /// RFC 7252 §5.2.2: acknowledges a confirmable request with an empty ACK, promising
    /// a separate response ([`MessageLayer::respond_separately`]). A duplicate of the
    /// request gets the empty ACK again. Returns false (and sends nothing) for a
    /// non-confirmable request, which has nothing to acknowledge.
    pub fn acknowledge(&mut self, now: Instant, request: &IncomingRequest) -> bool {
        if request.packet.header.get_type() != MessageType::Confirmable {
            return false;
        }
        self.expire_seen(now);
        let (peer, mid) = (request.peer, request.packet.header.message_id);
        let ack = empty_message(TYPE_ACK, mid).to_vec();
        match self.seen_mut(peer, mid) {
            Some(seen) => seen.reply = Some(ack.clone()),
            None => self.remember(now, peer, mid, Some(ack.clone())),
        }
        self.transmits.push_back(Transmit { peer, data: ack });
        true
    }

    /// The separate response to a request acknowledged with [`MessageLayer::acknowledge`]:
    /// a CON with a new message ID and the request's token, retransmitted until the peer
    /// ACKs it; a RST or no ACK gives [`Event::Reset`] or [`Event::Timeout`] with the
    /// returned ID. A non-confirmable request is answered as by `respond`.
    pub fn respond_separately(
        &mut self,
        now: Instant,
        request: &IncomingRequest,
        response: Packet,
    ) -> Option<RequestId> {
        if request.packet.header.get_type() != MessageType::Confirmable {
            self.respond(now, request, response);
            return None;
        }
        let id = RequestId(self.next_id);
        self.next_id = self.next_id.wrapping_add(1);
        let mut response = response;
        let token = request.packet.get_token();
        response.set_token(token.get(..TOKEN_LEN).unwrap_or(token).to_vec());
        // Like a notification it expects only an ACK, and it is not a request of ours
        // that NSTART would hold back.
        self.transmit_new(now, id, request.peer, response, true, true);
        Some(id)
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        self.expire_seen(now);
        let max_retransmit = self.params.max_retransmit;
        let mut finished = false;
        let mut i = 0;
        while let Some(exchange) = self.exchanges.get_mut(i) {
            if exchange.deadline > now {
                i += 1;
                continue;
            }
            if let State::Unacknowledged {
                bytes,
                retransmissions,
                timeout,
            } = &mut exchange.state
            {
                if *retransmissions < max_retransmit {
                    *retransmissions += 1;
                    *timeout = timeout.saturating_mul(2);
                    exchange.deadline = later(now, *timeout);
                    self.transmits.push_back(Transmit {
                        peer: exchange.peer,
                        data: bytes.clone(),
                    });
                    i += 1;
                    continue;
                }
            }
            let exchange = self.exchanges.swap_remove(i);
            // A NON notification just stops listening for a RST.
            let silent = exchange.notification && matches!(exchange.state, State::NonConfirmable);
            if !silent {
                self.events.push_back(Event::Timeout {
                    id: exchange.id,
                    peer: exchange.peer,
                });
            }
            finished = true;
        }
        if finished {
            self.drain_queue(now);
        }
    }

    /// The next retransmission or exchange deadline. Remembered messages expire lazily
    /// and never cause a wake-up.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.exchanges.iter().map(|e| e.deadline).min()
    }

    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// Whether an exchange with `peer` is outstanding or queued (a confirmable
    /// notification included).
    pub fn is_busy(&self, peer: SocketAddr) -> bool {
        self.exchanges.iter().any(|e| e.peer == peer) || self.queue.iter().any(|q| q.peer == peer)
    }

    /// Forgets every outstanding and queued exchange with `peer` (no events).
    pub fn forget_peer(&mut self, peer: SocketAddr) {
        self.exchanges.retain(|e| e.peer != peer);
        self.queue.retain(|q| q.peer != peer);
    }

    fn on_request(
        &mut self,
        now: Instant,
        peer: SocketAddr,
        kind: u8,
        mid: u16,
        packet: Packet,
    ) -> Option<IncomingRequest> {
        if kind != TYPE_CON && kind != TYPE_NON {
            // A request in an ACK or RST is a format error; only a CON is rejected.
            return None;
        }
        if let Some(seen) = self.seen_mut(peer, mid) {
            if let Some(reply) = seen.reply.clone() {
                self.transmits.push_back(Transmit { peer, data: reply });
            }
            return None;
        }
        self.remember(now, peer, mid, None);
        let refusal = if matches!(packet.header.code, MessageClass::Reserved(_)) {
            // RFC 7252 §5.8: an unknown method code.
            Some(ResponseType::MethodNotAllowed)
        } else {
            request_option_refusal(&packet)
        };
        let request = IncomingRequest { peer, packet };
        match refusal {
            Some(code) => {
                let mut response = Packet::new();
                response.header.code = MessageClass::Response(code);
                self.respond(now, &request, response);
                None
            }
            None => Some(request),
        }
    }

    fn on_response(&mut self, now: Instant, peer: SocketAddr, kind: u8, mid: u16, packet: Packet) {
        match kind {
            TYPE_ACK => self.on_ack(now, peer, mid, Some(packet)),
            TYPE_CON | TYPE_NON => {
                let confirmable = kind == TYPE_CON;
                if confirmable {
                    if let Some(seen) = self.seen_mut(peer, mid) {
                        if let Some(reply) = seen.reply.clone() {
                            self.transmits.push_back(Transmit { peer, data: reply });
                        }
                        return;
                    }
                }
                if has_unknown_critical(&packet, &RESPONSE_CRITICAL) {
                    self.reject(peer, kind, mid);
                    return;
                }
                let token = packet.get_token();
                let Some(index) = self
                    .exchanges
                    .iter()
                    .position(|e| e.peer == peer && !e.notification && e.token() == token)
                else {
                    // Late (after a timeout or reset) or not ours.
                    self.reject(peer, kind, mid);
                    return;
                };
                if confirmable {
                    let ack = empty_message(TYPE_ACK, mid).to_vec();
                    self.remember(now, peer, mid, Some(ack.clone()));
                    self.transmits.push_back(Transmit { peer, data: ack });
                }
                self.complete(now, index, packet);
            }
            // A response in a RST is a format error.
            _ => {}
        }
    }

    fn on_ack(&mut self, now: Instant, peer: SocketAddr, mid: u16, response: Option<Packet>) {
        let Some(index) = self.exchanges.iter().position(|e| {
            e.peer == peer && e.mid == mid && matches!(e.state, State::Unacknowledged { .. })
        }) else {
            return;
        };
        if self.exchanges.get(index).is_some_and(|e| e.notification) {
            self.exchanges.swap_remove(index);
            self.drain_queue(now);
            return;
        }
        match response {
            None => {
                let lifetime = self.params.exchange_lifetime();
                if let Some(exchange) = self.exchanges.get_mut(index) {
                    exchange.state = State::AwaitingSeparate;
                    exchange.deadline = later(now, lifetime);
                }
                self.drain_queue(now);
            }
            Some(response) => {
                let matches = self
                    .exchanges
                    .get(index)
                    .is_some_and(|e| e.token() == response.get_token());
                // A piggybacked response with a foreign token or an unknown critical
                // option is rejected, which for an ACK means ignored.
                if matches && !has_unknown_critical(&response, &RESPONSE_CRITICAL) {
                    self.complete(now, index, response);
                }
            }
        }
    }

    fn on_reset(&mut self, now: Instant, peer: SocketAddr, mid: u16) {
        let Some(index) = self.exchanges.iter().position(|e| {
            e.peer == peer
                && e.mid == mid
                && matches!(
                    e.state,
                    State::Unacknowledged { .. } | State::NonConfirmable
                )
        }) else {
            if let Some(k) = self
                .recent_non
                .iter()
                .position(|&(p, m, _)| p == peer && m == mid)
            {
                if let Some((_, _, id)) = self.recent_non.remove(k) {
                    self.events.push_back(Event::Reset { id, peer });
                }
            }
            return;
        };
        let exchange = self.exchanges.swap_remove(index);
        self.events.push_back(Event::Reset {
            id: exchange.id,
            peer: exchange.peer,
        });
        self.drain_queue(now);
    }

    fn complete(&mut self, now: Instant, index: usize, response: Packet) {
        if index >= self.exchanges.len() {
            return;
        }
        let exchange = self.exchanges.swap_remove(index);
        self.events.push_back(Event::Response {
            id: exchange.id,
            peer: exchange.peer,
            response,
        });
        self.drain_queue(now);
    }

    fn start(&mut self, now: Instant, queued: Queued) {
        let Queued {
            id,
            peer,
            packet,
            confirmable,
        } = queued;
        self.transmit_new(now, id, peer, packet, confirmable, false);
    }

    /// Sends a message that opens an exchange of ours.
    fn transmit_new(
        &mut self,
        now: Instant,
        id: RequestId,
        peer: SocketAddr,
        mut packet: Packet,
        confirmable: bool,
        notification: bool,
    ) {
        let mid = self.alloc_mid();
        packet.header.message_id = mid;
        packet.header.set_type(if confirmable {
            MessageType::Confirmable
        } else {
            MessageType::NonConfirmable
        });
        let Ok(bytes) = packet.to_bytes_unlimited() else {
            self.events.push_back(Event::Timeout { id, peer });
            return;
        };
        if notification && !confirmable {
            if self.recent_non.len() >= RECENT_NON {
                self.recent_non.pop_front();
            }
            self.recent_non.push_back((peer, mid, id));
            self.transmits.push_back(Transmit { peer, data: bytes });
            return;
        }
        // A notification's token is the observer's (up to 8 bytes); it identifies the
        // observation whose later notifications may supersede this one.
        let (token, token_len) = padded(packet.get_token());
        let (state, deadline) = if confirmable {
            let timeout = self.initial_timeout();
            let state = State::Unacknowledged {
                bytes: bytes.clone(),
                retransmissions: 0,
                timeout,
            };
            (state, later(now, timeout))
        } else {
            (
                State::NonConfirmable,
                later(now, self.params.max_transmit_wait()),
            )
        };
        self.exchanges.push(Exchange {
            id,
            peer,
            mid,
            token,
            token_len,
            notification,
            state,
            deadline,
        });
        self.transmits.push_back(Transmit { peer, data: bytes });
    }

    /// Starts queued requests whose peer has room under NSTART, oldest first.
    fn drain_queue(&mut self, now: Instant) {
        let mut i = 0;
        while let Some(peer) = self.queue.get(i).map(|q| q.peer) {
            if self.outstanding(peer) < self.params.nstart() {
                if let Some(queued) = self.queue.remove(i) {
                    self.start(now, queued);
                }
            } else {
                i += 1;
            }
        }
    }

    fn outstanding(&self, peer: SocketAddr) -> usize {
        self.exchanges
            .iter()
            .filter(|e| e.peer == peer && e.counts_for_nstart())
            .count()
    }

    /// Random in [ACK_TIMEOUT, ACK_TIMEOUT * ACK_RANDOM_FACTOR].
    fn initial_timeout(&mut self) -> Duration {
        // 53 random bits: a uniform f64 in [0, 1].
        let unit = (self.rng.next_u64() >> 11) as f64 / ((1u64 << 53) - 1) as f64;
        let factor = 1.0 + unit * (self.params.random_factor() - 1.0);
        self.params.scaled_ack_timeout(factor)
    }

    fn fresh_token(&mut self) -> [u8; TOKEN_LEN] {
        loop {
            let token = self.rng.next_u64().to_be_bytes();
            let in_use = self.exchanges.iter().any(|e| e.token == token)
                || self
                    .queue
                    .iter()
                    .any(|q| q.packet.get_token() == token.as_slice());
            if !in_use {
                return token;
            }
        }
    }

    fn alloc_mid(&mut self) -> u16 {
        let mid = self.next_mid;
        self.next_mid = self.next_mid.wrapping_add(1);
        mid
    }

    fn reject(&mut self, peer: SocketAddr, kind: u8, mid: u16) {
        if kind == TYPE_CON {
            self.send_reset(peer, mid);
        }
    }

    fn send_reset(&mut self, peer: SocketAddr, mid: u16) {
        self.transmits.push_back(Transmit {
            peer,
            data: empty_message(TYPE_RST, mid).to_vec(),
        });
    }

    fn seen_mut(&mut self, peer: SocketAddr, mid: u16) -> Option<&mut Seen> {
        self.seen
            .iter_mut()
            .find(|s| s.peer == peer && s.mid == mid)
    }

    fn remember(&mut self, now: Instant, peer: SocketAddr, mid: u16, reply: Option<Vec<u8>>) {
        if self.seen.len() >= DEDUP_CAPACITY {
            self.seen.pop_front();
        }
        self.seen.push_back(Seen {
            peer,
            mid,
            expires: later(now, self.params.exchange_lifetime()),
            reply,
        });
    }

    /// Entries are kept in arrival order and all live equally long, so the expired ones
    /// are at the front.
    fn expire_seen(&mut self, now: Instant) {
        while self.seen.front().is_some_and(|s| s.expires <= now) {
            self.seen.pop_front();
        }
    }
}

/// `now + d`, saturating far in the future rather than overflowing.
/// A token of up to 8 bytes in a fixed array, with its length.
fn padded(token: &[u8]) -> ([u8; TOKEN_LEN], usize) {
    let mut out = [0; TOKEN_LEN];
    let n = token.len().min(TOKEN_LEN);
    out[..n].copy_from_slice(&token[..n]);
    (out, n)
}

fn later(now: Instant, d: Duration) -> Instant {
    now.checked_add(d)
        .or_else(|| now.checked_add(Duration::from_secs(u64::from(u32::MAX))))
        .unwrap_or(now)
}

fn empty_message(kind: u8, mid: u16) -> [u8; 4] {
    let [hi, lo] = mid.to_be_bytes();
    [(VERSION << 6) | (kind << 4), 0, hi, lo]
}

/// Decodes a datagram, also rejecting what coap-lite lets through: a payload marker
/// followed by no payload (RFC 7252 §3).
fn parse(data: &[u8]) -> Option<Packet> {
    let packet = Packet::from_bytes(data).ok()?;
    if data.last() == Some(&0xff) && packet.payload.is_empty() {
        // coap-lite re-encodes canonically, so a shorter encoding means the trailing
        // 0xFF was a payload marker.
        let reencoded = packet.to_bytes_unlimited().ok()?;
        if reencoded.len() != data.len() {
            return None;
        }
    }
    Some(packet)
}

fn has_unknown_critical(packet: &Packet, known: &[u16]) -> bool {
    packet
        .options()
        .any(|(&number, values)| number % 2 == 1 && !values.is_empty() && !known.contains(&number))
}

/// The error response owed to a request with a critical option we cannot honour
/// (RFC 7252 §5.4.1, §5.7.2).
fn request_option_refusal(packet: &Packet) -> Option<ResponseType> {
    if packet
        .options()
        .any(|(number, values)| PROXY_OPTIONS.contains(number) && !values.is_empty())
    {
        return Some(ResponseType::ProxyingNotSupported);
    }
    has_unknown_critical(packet, &REQUEST_CRITICAL).then_some(ResponseType::BadOption)
}

#[cfg(test)]
mod tests {
    use super::*;
    use coap_lite::{CoapOption, RequestType};
    use proptest::prelude::*;

    fn server() -> SocketAddr {
        SocketAddr::from(([192, 0, 2, 1], 5683))
    }

    fn other_server() -> SocketAddr {
        SocketAddr::from(([198, 51, 100, 7], 5683))
    }

    fn request(method: RequestType, path: &str) -> Packet {
        let mut packet = Packet::new();
        packet.header.code = MessageClass::Request(method);
        packet.add_option(CoapOption::UriPath, path.as_bytes().to_vec());
        packet
    }

    fn response(code: ResponseType, payload: &[u8]) -> Packet {
        let mut packet = Packet::new();
        packet.header.code = MessageClass::Response(code);
        packet.payload = payload.to_vec();
        packet
    }

    /// Encodes a packet as a peer would send it.
    fn wire(mut packet: Packet, kind: MessageType, mid: u16, token: &[u8]) -> Vec<u8> {
        packet.header.set_type(kind);
        packet.header.message_id = mid;
        packet.set_token(token.to_vec());
        packet.to_bytes_unlimited().unwrap()
    }

    fn transmits(layer: &mut MessageLayer) -> Vec<Transmit> {
        std::iter::from_fn(|| layer.poll_transmit()).collect()
    }

    fn events(layer: &mut MessageLayer) -> Vec<Event> {
        std::iter::from_fn(|| layer.poll_event()).collect()
    }

    fn decode(t: &Transmit) -> Packet {
        Packet::from_bytes(&t.data).unwrap()
    }

    /// Sends one request and returns its id, MID and token as seen on the wire.
    fn send(
        layer: &mut MessageLayer,
        now: Instant,
        peer: SocketAddr,
        confirmable: bool,
    ) -> (RequestId, u16, Vec<u8>) {
        let id = layer.send_request(now, peer, request(RequestType::Post, "rd"), confirmable);
        let sent = transmits(layer);
        assert_eq!(sent.len(), 1);
        let packet = decode(&sent[0]);
        (id, packet.header.message_id, packet.get_token().to_vec())
    }

    #[test]
    fn default_parameters_derive_rfc7252_values() {
        let params = CoapParams::default();
        assert_eq!(params.max_transmit_span(), Duration::from_secs(45));
        assert_eq!(params.max_transmit_wait(), Duration::from_secs(93));
        assert_eq!(params.exchange_lifetime(), Duration::from_secs(247));
    }

    #[test]
    fn request_gets_fresh_token_and_type() {
        let mut layer = MessageLayer::new(CoapParams::default(), 7);
        let now = Instant::now();
        let mut packet = request(RequestType::Get, "x");
        packet.set_token(vec![1, 2, 3]);
        layer.send_request(now, server(), packet, true);
        let con = decode(&layer.poll_transmit().unwrap());
        assert_eq!(con.header.get_type(), MessageType::Confirmable);
        assert_eq!(con.get_token().len(), 8);
        assert_ne!(con.get_token(), &[1, 2, 3]);

        layer.send_request(now, other_server(), request(RequestType::Get, "x"), false);
        let non = decode(&layer.poll_transmit().unwrap());
        assert_eq!(non.header.get_type(), MessageType::NonConfirmable);
        assert_eq!(non.header.message_id, con.header.message_id.wrapping_add(1));
        assert_ne!(non.get_token(), con.get_token());
    }

    #[test]
    fn lost_acks_retransmit_with_doubling_timeouts_then_time_out() {
        let params = CoapParams::default();
        for seed in 0..20 {
            let mut layer = MessageLayer::new(params.clone(), seed);
            let start = Instant::now();
            let (id, _, _) = send(&mut layer, start, server(), true);
            let original = {
                // The bytes retransmitted must be the same message.
                layer.handle_timeout(start);
                assert!(layer.poll_transmit().is_none());
                layer.poll_timeout().unwrap()
            };
            let initial = original - start;
            assert!(initial >= Duration::from_secs(2), "{initial:?}");
            assert!(initial <= Duration::from_secs(3), "{initial:?}");

            let mut now = start;
            let mut expected_wait = initial;
            let mut first_bytes = None;
            for _ in 0..4 {
                let deadline = layer.poll_timeout().unwrap();
                assert_eq!(deadline - now, expected_wait);
                now = deadline;
                layer.handle_timeout(now);
                let sent = transmits(&mut layer);
                assert_eq!(sent.len(), 1);
                let bytes = first_bytes.get_or_insert_with(|| sent[0].data.clone());
                assert_eq!(&sent[0].data, bytes);
                assert!(layer.poll_event().is_none());
                expected_wait *= 2;
            }
            let deadline = layer.poll_timeout().unwrap();
            assert_eq!(deadline - now, expected_wait);
            // Gives up 31 initial timeouts after the first transmission, at most
            // MAX_TRANSMIT_WAIT.
            assert_eq!(deadline - start, initial * 31);
            assert!(deadline - start <= params.max_transmit_wait());
            layer.handle_timeout(deadline);
            assert!(transmits(&mut layer).is_empty());
            let evs = events(&mut layer);
            assert!(
                matches!(evs.as_slice(), [Event::Timeout { id: i, peer }] if *i == id && *peer == server())
            );
            assert_eq!(layer.poll_timeout(), None);
        }
    }

    #[test]
    fn piggybacked_response_completes_the_exchange() {
        let mut layer = MessageLayer::new(CoapParams::default(), 1);
        let now = Instant::now();
        let (id, mid, token) = send(&mut layer, now, server(), true);
        let ack = wire(
            response(ResponseType::Created, b""),
            MessageType::Acknowledgement,
            mid,
            &token,
        );
        assert!(layer.handle_datagram(now, server(), &ack).is_none());
        let evs = events(&mut layer);
        match evs.as_slice() {
            [Event::Response {
                id: i,
                peer,
                response,
            }] => {
                assert_eq!(*i, id);
                assert_eq!(*peer, server());
                assert_eq!(
                    response.header.code,
                    MessageClass::Response(ResponseType::Created)
                );
            }
            other => panic!("unexpected events {other:?}"),
        }
        assert_eq!(layer.poll_timeout(), None);
        // A duplicate ACK is ignored.
        layer.handle_datagram(now, server(), &ack);
        assert!(events(&mut layer).is_empty());
        assert!(transmits(&mut layer).is_empty());
    }

    #[test]
    fn response_must_match_peer_and_token() {
        let mut layer = MessageLayer::new(CoapParams::default(), 1);
        let now = Instant::now();
        let (_, mid, token) = send(&mut layer, now, server(), true);
        // Right MID and token from another address: not an ACK of ours.
        let ack = wire(
            response(ResponseType::Changed, b""),
            MessageType::Acknowledgement,
            mid,
            &token,
        );
        layer.handle_datagram(now, other_server(), &ack);
        // Right MID, wrong token.
        let ack_other = wire(
            response(ResponseType::Changed, b""),
            MessageType::Acknowledgement,
            mid,
            &[9; 8],
        );
        layer.handle_datagram(now, server(), &ack_other);
        // A CON response with our token from another address is rejected.
        let con = wire(
            response(ResponseType::Changed, b""),
            MessageType::Confirmable,
            0x4000,
            &token,
        );
        layer.handle_datagram(now, other_server(), &con);
        assert!(events(&mut layer).is_empty());
        let sent = transmits(&mut layer);
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0].peer, other_server());
        assert_eq!(sent[0].data, vec![0x70, 0, 0x40, 0x00]);
        assert!(layer.poll_timeout().is_some());
    }

    #[test]
    fn separate_response_flow() {
        let params = CoapParams::default();
        let mut layer = MessageLayer::new(params.clone(), 2);
        let now = Instant::now();
        let (id, mid, token) = send(&mut layer, now, server(), true);
        // Empty ACK: retransmission stops, the response is awaited for EXCHANGE_LIFETIME.
        let [hi, lo] = mid.to_be_bytes();
        layer.handle_datagram(now, server(), &[0x60, 0, hi, lo]);
        assert!(events(&mut layer).is_empty());
        assert_eq!(layer.poll_timeout(), Some(now + params.exchange_lifetime()));

        let later = now + Duration::from_secs(30);
        let separate = wire(
            response(ResponseType::Content, b"42"),
            MessageType::Confirmable,
            0x1111,
            &token,
        );
        assert!(layer.handle_datagram(later, server(), &separate).is_none());
        let sent = transmits(&mut layer);
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0].data, vec![0x60, 0, 0x11, 0x11]);
        match events(&mut layer).as_slice() {
            [Event::Response {
                id: i, response, ..
            }] => {
                assert_eq!(*i, id);
                assert_eq!(response.payload, b"42");
            }
            other => panic!("unexpected events {other:?}"),
        }
        // The duplicate (our ACK was lost) is acknowledged again, not reported again.
        layer.handle_datagram(later, server(), &separate);
        assert_eq!(transmits(&mut layer), sent);
        assert!(events(&mut layer).is_empty());
        assert_eq!(layer.poll_timeout(), None);
    }

    #[test]
    fn separate_response_before_the_empty_ack_and_as_non() {
        let mut layer = MessageLayer::new(CoapParams::default(), 3);
        let now = Instant::now();
        let (id, _, token) = send(&mut layer, now, server(), true);
        let separate = wire(
            response(ResponseType::Content, b""),
            MessageType::NonConfirmable,
            0x2222,
            &token,
        );
        layer.handle_datagram(now, server(), &separate);
        // A NON response is not acknowledged.
        assert!(transmits(&mut layer).is_empty());
        assert!(
            matches!(events(&mut layer).as_slice(), [Event::Response { id: i, .. }] if *i == id)
        );
        assert_eq!(layer.poll_timeout(), None);
    }

    #[test]
    fn missing_separate_response_times_out() {
        let params = CoapParams::default();
        let mut layer = MessageLayer::new(params.clone(), 4);
        let now = Instant::now();
        let (id, mid, _) = send(&mut layer, now, server(), true);
        let [hi, lo] = mid.to_be_bytes();
        layer.handle_datagram(now, server(), &[0x60, 0, hi, lo]);
        let deadline = layer.poll_timeout().unwrap();
        layer.handle_timeout(deadline);
        assert!(transmits(&mut layer).is_empty());
        assert!(
            matches!(events(&mut layer).as_slice(), [Event::Timeout { id: i, .. }] if *i == id)
        );
    }

    #[test]
    fn late_response_after_timeout_is_rejected() {
        let mut layer = MessageLayer::new(CoapParams::default(), 5);
        let mut now = Instant::now();
        let (_, mid, token) = send(&mut layer, now, server(), true);
        while let Some(deadline) = layer.poll_timeout() {
            now = deadline;
            layer.handle_timeout(now);
        }
        transmits(&mut layer);
        assert!(matches!(
            events(&mut layer).as_slice(),
            [Event::Timeout { .. }]
        ));

        let ack = wire(
            response(ResponseType::Content, b""),
            MessageType::Acknowledgement,
            mid,
            &token,
        );
        layer.handle_datagram(now, server(), &ack);
        let non = wire(
            response(ResponseType::Content, b""),
            MessageType::NonConfirmable,
            0x3000,
            &token,
        );
        layer.handle_datagram(now, server(), &non);
        assert!(transmits(&mut layer).is_empty());
        let con = wire(
            response(ResponseType::Content, b""),
            MessageType::Confirmable,
            0x3001,
            &token,
        );
        layer.handle_datagram(now, server(), &con);
        assert_eq!(transmits(&mut layer)[0].data, vec![0x70, 0, 0x30, 0x01]);
        assert!(events(&mut layer).is_empty());
    }

    #[test]
    fn reset_ends_the_exchange() {
        let mut layer = MessageLayer::new(CoapParams::default(), 6);
        let now = Instant::now();
        let (id, mid, _) = send(&mut layer, now, server(), true);
        let [hi, lo] = mid.to_be_bytes();
        // A RST from elsewhere or for another MID changes nothing.
        layer.handle_datagram(now, other_server(), &[0x70, 0, hi, lo]);
        layer.handle_datagram(now, server(), &[0x70, 0, hi, lo.wrapping_add(1)]);
        assert!(events(&mut layer).is_empty());
        layer.handle_datagram(now, server(), &[0x70, 0, hi, lo]);
        assert!(
            matches!(events(&mut layer).as_slice(), [Event::Reset { id: i, peer }] if *i == id && *peer == server())
        );
        assert_eq!(layer.poll_timeout(), None);
        assert!(transmits(&mut layer).is_empty());
    }

    #[test]
    fn nstart_queues_requests_per_peer() {
        let mut layer = MessageLayer::new(CoapParams::default(), 8);
        let now = Instant::now();
        let (first, mid1, token1) = send(&mut layer, now, server(), true);
        let second = layer.send_request(now, server(), request(RequestType::Post, "a"), true);
        layer.send_request(now, server(), request(RequestType::Post, "b"), false);
        assert!(transmits(&mut layer).is_empty());
        // Another peer is not held up.
        send(&mut layer, now, other_server(), true);

        // The empty ACK ends the outstanding interaction (RFC 7252 §4.7).
        let [hi, lo] = mid1.to_be_bytes();
        layer.handle_datagram(now, server(), &[0x60, 0, hi, lo]);
        let sent = transmits(&mut layer);
        assert_eq!(sent.len(), 1);
        let p2 = decode(&sent[0]);
        assert_eq!(p2.get_first_option(CoapOption::UriPath).unwrap(), b"a");

        let ack2 = wire(
            response(ResponseType::Changed, b""),
            MessageType::Acknowledgement,
            p2.header.message_id,
            p2.get_token(),
        );
        layer.handle_datagram(now, server(), &ack2);
        let sent = transmits(&mut layer);
        assert_eq!(sent.len(), 1);
        let p3 = decode(&sent[0]);
        assert_eq!(p3.header.get_type(), MessageType::NonConfirmable);
        assert_eq!(p3.get_first_option(CoapOption::UriPath).unwrap(), b"b");

        let sep = wire(
            response(ResponseType::Changed, b""),
            MessageType::NonConfirmable,
            9,
            &token1,
        );
        layer.handle_datagram(now, server(), &sep);
        let ids: Vec<RequestId> = events(&mut layer)
            .into_iter()
            .map(|e| match e {
                Event::Response { id, .. } => id,
                other => panic!("unexpected {other:?}"),
            })
            .collect();
        assert_eq!(ids, vec![second, first]);
    }

    #[test]
    fn forget_peer_drops_outstanding_and_queued() {
        let mut layer = MessageLayer::new(CoapParams::default(), 9);
        let now = Instant::now();
        send(&mut layer, now, server(), true);
        layer.send_request(now, server(), request(RequestType::Post, "a"), true);
        layer.forget_peer(server());
        assert_eq!(layer.poll_timeout(), None);
        // Nothing is waiting for NSTART any more.
        send(&mut layer, now, server(), true);
        assert!(events(&mut layer).is_empty());
    }

    #[test]
    fn non_request_times_out_without_response() {
        let params = CoapParams::default();
        let mut layer = MessageLayer::new(params.clone(), 10);
        let now = Instant::now();
        let (id, _, _) = send(&mut layer, now, server(), false);
        assert_eq!(layer.poll_timeout(), Some(now + params.max_transmit_wait()));
        layer.handle_timeout(now + params.max_transmit_wait());
        assert!(transmits(&mut layer).is_empty());
        assert!(
            matches!(events(&mut layer).as_slice(), [Event::Timeout { id: i, .. }] if *i == id)
        );
    }

    #[test]
    fn duplicate_request_gets_the_cached_response() {
        let mut layer = MessageLayer::new(CoapParams::default(), 11);
        let now = Instant::now();
        let datagram = wire(
            request(RequestType::Get, "3"),
            MessageType::Confirmable,
            0x1234,
            &[0xab, 0xcd],
        );
        let incoming = layer.handle_datagram(now, server(), &datagram).unwrap();
        assert_eq!(incoming.peer, server());
        // A duplicate while the request is still being processed is ignored.
        assert!(layer.handle_datagram(now, server(), &datagram).is_none());
        assert!(transmits(&mut layer).is_empty());

        layer.respond(now, &incoming, response(ResponseType::Content, b"hello"));
        let sent = transmits(&mut layer);
        assert_eq!(sent.len(), 1);
        let ack = decode(&sent[0]);
        assert_eq!(ack.header.get_type(), MessageType::Acknowledgement);
        assert_eq!(ack.header.message_id, 0x1234);
        assert_eq!(ack.get_token(), &[0xab, 0xcd]);
        assert_eq!(ack.payload, b"hello");

        let later = now + Duration::from_secs(10);
        assert!(layer.handle_datagram(later, server(), &datagram).is_none());
        assert_eq!(transmits(&mut layer), sent);
        // The same MID from another peer is a different message.
        assert!(layer
            .handle_datagram(later, other_server(), &datagram)
            .is_some());
    }

    #[test]
    fn dedup_entries_expire_after_exchange_lifetime() {
        let mut layer = MessageLayer::new(CoapParams::default(), 12);
        let now = Instant::now();
        let datagram = wire(
            request(RequestType::Get, "3"),
            MessageType::Confirmable,
            7,
            &[1],
        );
        let incoming = layer.handle_datagram(now, server(), &datagram).unwrap();
        layer.respond(now, &incoming, response(ResponseType::Content, b""));
        transmits(&mut layer);
        let just_before = now + Duration::from_secs(246);
        assert!(layer
            .handle_datagram(just_before, server(), &datagram)
            .is_none());
        assert_eq!(transmits(&mut layer).len(), 1);
        let expired = now + Duration::from_secs(247);
        assert!(layer
            .handle_datagram(expired, server(), &datagram)
            .is_some());
    }

    #[test]
    fn dedup_cache_is_bounded() {
        let mut layer = MessageLayer::new(CoapParams::default(), 13);
        let now = Instant::now();
        let first = wire(
            request(RequestType::Get, "3"),
            MessageType::NonConfirmable,
            0,
            &[],
        );
        assert!(layer.handle_datagram(now, server(), &first).is_some());
        for mid in 1..=DEDUP_CAPACITY as u16 {
            let d = wire(
                request(RequestType::Get, "3"),
                MessageType::NonConfirmable,
                mid,
                &[],
            );
            assert!(layer.handle_datagram(now, server(), &d).is_some());
        }
        assert_eq!(layer.seen.len(), DEDUP_CAPACITY);
        // The oldest was evicted.
        assert!(layer.handle_datagram(now, server(), &first).is_some());
    }

    #[test]
    fn non_request_is_answered_with_non() {
        let mut layer = MessageLayer::new(CoapParams::default(), 14);
        let now = Instant::now();
        let datagram = wire(
            request(RequestType::Get, "3"),
            MessageType::NonConfirmable,
            0x0505,
            &[5],
        );
        let incoming = layer.handle_datagram(now, server(), &datagram).unwrap();
        layer.respond(now, &incoming, response(ResponseType::Content, b"x"));
        let sent = transmits(&mut layer);
        let reply = decode(&sent[0]);
        assert_eq!(reply.header.get_type(), MessageType::NonConfirmable);
        assert_ne!(reply.header.message_id, 0x0505);
        assert_eq!(reply.get_token(), &[5]);
        layer.handle_datagram(now, server(), &datagram);
        assert_eq!(transmits(&mut layer), sent);
    }

    #[test]
    fn unrecognised_critical_option_gets_bad_option() {
        let mut layer = MessageLayer::new(CoapParams::default(), 15);
        let now = Instant::now();
        let mut packet = request(RequestType::Get, "3");
        packet.add_option(CoapOption::Unknown(65), vec![1]);
        let datagram = wire(packet, MessageType::Confirmable, 0x0101, &[1]);
        assert!(layer.handle_datagram(now, server(), &datagram).is_none());
        let sent = transmits(&mut layer);
        let reply = decode(&sent[0]);
        assert_eq!(reply.header.get_type(), MessageType::Acknowledgement);
        assert_eq!(
            reply.header.code,
            MessageClass::Response(ResponseType::BadOption)
        );
        assert_eq!(reply.header.message_id, 0x0101);
        // Its duplicate gets the same answer and still never reaches the application.
        assert!(layer.handle_datagram(now, server(), &datagram).is_none());
        assert_eq!(transmits(&mut layer), sent);

        // An unrecognised elective option is ignored.
        let mut packet = request(RequestType::Get, "3");
        packet.add_option(CoapOption::Unknown(64), vec![1]);
        let datagram = wire(packet, MessageType::Confirmable, 0x0102, &[1]);
        assert!(layer.handle_datagram(now, server(), &datagram).is_some());

        let mut packet = request(RequestType::Get, "3");
        packet.add_option(CoapOption::ProxyUri, b"coap://elsewhere/".to_vec());
        let datagram = wire(packet, MessageType::Confirmable, 0x0103, &[1]);
        assert!(layer.handle_datagram(now, server(), &datagram).is_none());
        let reply = decode(&transmits(&mut layer)[0]);
        assert_eq!(
            reply.header.code,
            MessageClass::Response(ResponseType::ProxyingNotSupported)
        );
    }

    #[test]
    fn unknown_method_gets_method_not_allowed() {
        let mut layer = MessageLayer::new(CoapParams::default(), 16);
        // Code 0.31.
        let datagram = [0x40, 0x1f, 0x00, 0x09];
        assert!(layer
            .handle_datagram(Instant::now(), server(), &datagram)
            .is_none());
        let reply = decode(&transmits(&mut layer)[0]);
        assert_eq!(
            reply.header.code,
            MessageClass::Response(ResponseType::MethodNotAllowed)
        );
    }

    #[test]
    fn ping_malformed_and_foreign_messages() {
        let mut layer = MessageLayer::new(CoapParams::default(), 17);
        let now = Instant::now();
        // CoAP ping: CON empty message, answered by RST.
        assert!(layer
            .handle_datagram(now, server(), &[0x40, 0, 0x12, 0x34])
            .is_none());
        assert_eq!(transmits(&mut layer)[0].data, vec![0x70, 0, 0x12, 0x34]);
        // Token length 9: a format error, a CON is rejected.
        let mut bad = vec![0x49, 0x01, 0x00, 0x01];
        bad.extend([0; 9]);
        layer.handle_datagram(now, server(), &bad);
        assert_eq!(transmits(&mut layer)[0].data, vec![0x70, 0, 0x00, 0x01]);
        // The same as NON is ignored.
        bad[0] = 0x59;
        layer.handle_datagram(now, server(), &bad);
        // Version 2 is silently ignored.
        layer.handle_datagram(now, server(), &[0x80, 0x01, 0x00, 0x02]);
        // An empty message with bytes after the header is a format error.
        layer.handle_datagram(now, server(), &[0x40, 0x00, 0x00, 0x03, 0xff]);
        assert_eq!(transmits(&mut layer)[0].data, vec![0x70, 0, 0x00, 0x03]);
        // A payload marker with no payload.
        layer.handle_datagram(now, server(), &[0x40, 0x01, 0x00, 0x04, 0xff]);
        assert_eq!(transmits(&mut layer)[0].data, vec![0x70, 0, 0x00, 0x04]);
        // Reserved code class 1.
        layer.handle_datagram(now, server(), &[0x50, 0x20, 0x00, 0x05]);
        // Too short.
        layer.handle_datagram(now, server(), &[0x40, 0x01]);
        assert!(transmits(&mut layer).is_empty());
        assert!(events(&mut layer).is_empty());
    }

    fn notification(seq: u32) -> Packet {
        let mut packet = response(ResponseType::Content, b"21.5");
        packet.set_observe_value(seq);
        packet
    }

    #[test]
    fn confirmable_notification_is_retransmitted_until_acknowledged() {
        let mut layer = MessageLayer::new(CoapParams::default(), 18);
        let now = Instant::now();
        // An outstanding request does not hold the notification back.
        let (_, _, request_token) = send(&mut layer, now, server(), true);
        layer.send_notification(now, server(), &[0x0b, 0x5e], notification(12), true);
        let sent = transmits(&mut layer);
        assert_eq!(sent.len(), 1);
        let packet = decode(&sent[0]);
        assert_eq!(packet.header.get_type(), MessageType::Confirmable);
        assert_eq!(packet.get_token(), &[0x0b, 0x5e]);
        assert_eq!(packet.get_observe_value(), Some(Ok(12)));

        // Both initial timeouts are at most ACK_TIMEOUT * ACK_RANDOM_FACTOR.
        let deadline = now + Duration::from_secs(3);
        layer.handle_timeout(deadline);
        let retransmitted = transmits(&mut layer);
        assert_eq!(retransmitted.len(), 2);
        assert!(retransmitted.iter().any(|t| t.data == sent[0].data));

        let [hi, lo] = packet.header.message_id.to_be_bytes();
        layer.handle_datagram(deadline, server(), &[0x60, 0, hi, lo]);
        assert!(events(&mut layer).is_empty());
        // Only the request is still outstanding.
        let ack = wire(
            response(ResponseType::Changed, b""),
            MessageType::NonConfirmable,
            1,
            &request_token,
        );
        layer.handle_datagram(deadline, server(), &ack);
        assert!(matches!(
            events(&mut layer).as_slice(),
            [Event::Response { .. }]
        ));
        assert_eq!(layer.poll_timeout(), None);
    }

    #[test]
    fn superseded_confirmable_notification_is_replaced_not_repeated() {
        let mut layer = MessageLayer::new(CoapParams::default(), 23);
        let now = Instant::now();
        layer.send_notification(now, server(), &[7], notification(1), true);
        let first = decode(&transmits(&mut layer)[0]);
        let first_deadline = layer.poll_timeout().unwrap();
        // A newer state while the first is unacknowledged: nothing goes out now, and
        // another observation (token) is not affected.
        let newer = layer.send_notification(now, server(), &[7], notification(2), false);
        assert!(transmits(&mut layer).is_empty());
        assert_eq!(layer.poll_timeout(), Some(first_deadline));
        layer.send_notification(now, server(), &[7, 0], notification(9), false);
        assert_eq!(transmits(&mut layer).len(), 1);

        // At the first one's retransmission time the newer state goes out instead,
        // confirmable, under a new MID; the old state is never sent again.
        layer.handle_timeout(first_deadline);
        let sent = transmits(&mut layer);
        assert_eq!(sent.len(), 1);
        let second = decode(&sent[0]);
        assert_eq!(second.get_observe_value(), Some(Ok(2)));
        assert_eq!(second.header.get_type(), MessageType::Confirmable);
        assert_ne!(second.header.message_id, first.header.message_id);
        // A late ACK of the superseded message does not end the newer one.
        let [hi, lo] = first.header.message_id.to_be_bytes();
        layer.handle_datagram(first_deadline, server(), &[0x60, 0, hi, lo]);
        assert!(layer.poll_timeout().is_some());
        // The retransmission schedule continues: after the remaining retransmissions,
        // the newer notification's failure is reported.
        while let Some(next) = layer.poll_timeout() {
            layer.handle_timeout(next);
        }
        let retransmitted = transmits(&mut layer);
        assert_eq!(
            retransmitted.len(),
            CoapParams::default().max_retransmit as usize - 1
        );
        assert!(retransmitted.iter().all(|r| r.data == sent[0].data));
        assert!(
            matches!(events(&mut layer).as_slice(), [Event::Timeout { id, .. }] if *id == newer)
        );
    }

    #[test]
    fn reset_notification_reports_the_observer_gone() {
        let mut layer = MessageLayer::new(CoapParams::default(), 19);
        let now = Instant::now();
        let id = layer.send_notification(now, server(), &[1], notification(3), false);
        let packet = decode(&transmits(&mut layer)[0]);
        assert_eq!(packet.header.get_type(), MessageType::NonConfirmable);
        let [hi, lo] = packet.header.message_id.to_be_bytes();
        layer.handle_datagram(now, server(), &[0x70, 0, hi, lo]);
        assert!(matches!(events(&mut layer).as_slice(), [Event::Reset { id: i, .. }] if *i == id));

        // NON notifications keep no timer: no wake-up, nothing reported.
        layer.send_notification(now, server(), &[1], notification(4), false);
        assert_eq!(layer.poll_timeout(), None);
        assert!(events(&mut layer).is_empty());
        // Only the latest ones can still be matched to a RST.
        let mut mids = Vec::new();
        for n in 0..(RECENT_NON as u32 + 1) {
            layer.send_notification(now, server(), &[1], notification(5 + n), false);
            mids.push(
                decode(&transmits(&mut layer).pop().unwrap())
                    .header
                    .message_id,
            );
        }
        let [hi, lo] = mids[0].to_be_bytes();
        layer.handle_datagram(now, server(), &[0x70, 0, hi, lo]);
        assert!(events(&mut layer).is_empty(), "too old to match");
        let [hi, lo] = mids[RECENT_NON].to_be_bytes();
        layer.handle_datagram(now, server(), &[0x70, 0, hi, lo]);
        assert_eq!(events(&mut layer).len(), 1);
    }

    proptest! {
        #[test]
        fn random_datagrams_never_panic(
            datagrams in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..64), 1..20),
            seed: u64,
        ) {
            let mut layer = MessageLayer::new(CoapParams::default(), seed);
            let mut now = Instant::now();
            layer.send_request(now, server(), request(RequestType::Post, "rd"), true);
            for mut data in datagrams {
                // Mostly version 1, so that the parser gets past the first check.
                if let Some(first) = data.first_mut() {
                    *first = (*first & 0x3f) | 0x40;
                }
                if let Some(incoming) = layer.handle_datagram(now, server(), &data) {
                    layer.respond(now, &incoming, response(ResponseType::Content, b"ok"));
                }
                now += Duration::from_millis(700);
                layer.handle_timeout(now);
                while layer.poll_transmit().is_some() {}
                while layer.poll_event().is_some() {}
            }
        }

        #[test]
        fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..128)) {
            let mut layer = MessageLayer::new(CoapParams::default(), 0);
            let now = Instant::now();
            if let Some(incoming) = layer.handle_datagram(now, server(), &data) {
                layer.respond(now, &incoming, response(ResponseType::Content, b""));
            }
        }
    }

    #[test]
    fn empty_ack_then_a_confirmable_separate_response() {
        // RFC 7252 §5.2.2, Figure 6: ACK first, then CON 2.04 with the request's token.
        let t0 = Instant::now();
        let mut layer = MessageLayer::new(CoapParams::default(), 3);
        let data = wire(
            request(RequestType::Put, "33000"),
            MessageType::Confirmable,
            0x7d38,
            &[0x53, 0x2e],
        );
        let req = layer.handle_datagram(t0, server(), &data).unwrap();
        assert!(layer.acknowledge(t0, &req));
        assert_eq!(transmits(&mut layer)[0].data, [0x60, 0x00, 0x7d, 0x38]);
        // A retransmission of the request gets the empty ACK again, not a second job.
        assert!(layer.handle_datagram(t0, server(), &data).is_none());
        assert_eq!(transmits(&mut layer)[0].data, [0x60, 0x00, 0x7d, 0x38]);

        let id = layer
            .respond_separately(t0, &req, response(ResponseType::Changed, b""))
            .unwrap();
        let sent = transmits(&mut layer);
        let separate = decode(&sent[0]);
        assert_eq!(separate.header.get_type(), MessageType::Confirmable);
        assert_ne!(separate.header.message_id, 0x7d38);
        assert_eq!(separate.get_token(), [0x53, 0x2e]);
        assert_eq!(
            separate.header.code,
            MessageClass::Response(ResponseType::Changed)
        );
        // Unacknowledged: retransmitted like any CON.
        let later = layer.poll_timeout().unwrap();
        layer.handle_timeout(later);
        assert_eq!(transmits(&mut layer)[0].data, sent[0].data);
        // The server's ACK ends it without an event.
        let [hi, lo] = separate.header.message_id.to_be_bytes();
        layer.handle_datagram(later, server(), &[0x60, 0x00, hi, lo]);
        assert!(events(&mut layer).is_empty());
        assert_eq!(layer.poll_timeout(), None);
        let _ = id;

        // A NON request has nothing to acknowledge; its response is a NON.
        let data = wire(
            request(RequestType::Post, "33000/0/2"),
            MessageType::NonConfirmable,
            0x0101,
            &[1],
        );
        let req = layer.handle_datagram(t0, server(), &data).unwrap();
        assert!(!layer.acknowledge(t0, &req));
        assert!(layer
            .respond_separately(t0, &req, response(ResponseType::Changed, b""))
            .is_none());
        let sent = transmits(&mut layer);
        assert_eq!(sent.len(), 1);
        assert_eq!(
            decode(&sent[0]).header.get_type(),
            MessageType::NonConfirmable
        );
    }
}
