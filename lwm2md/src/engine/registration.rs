//! The registration interface (Core TS §6.2, Transport TS §6.2): Register, Update and
//! De-register, per server account.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use coap_lite::{CoapOption, MessageClass, Packet, RequestType};

use super::options::{add_string_options, encode_uint};
use crate::coap::RequestId;
use crate::codec::ContentFormat;

/// What the server was last told, so that an Update carries only what changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Advertised {
    pub lifetime: u32,
    pub binding: String,
    pub objects: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Not registered; Register is sent at `retry_at`.
    Unregistered {
        retry_at: Instant,
    },
    Registering(RequestId),
    Registered,
    Updating(RequestId),
    Deregistering(RequestId),
    /// Execute /1/x/4: silent until the Disable Timeout ends.
    Disabled {
        until: Instant,
    },
    /// De-registered for good (shutdown).
    Stopped,
}

#[derive(Debug)]
pub struct Session {
    pub short_server_id: u16,
    pub addr: SocketAddr,
    pub uri: String,
    pub state: State,
    /// Location-Path the server gave at registration (`rd/5a3f`).
    pub location: Vec<String>,
    pub advertised: Option<Advertised>,
    /// When the next Update is due while registered.
    pub update_at: Option<Instant>,
    /// An Update was asked for while another exchange was running.
    pub update_pending: bool,
    /// The lifetime, binding or object list may have changed: compare before the next
    /// exchange (kept until the session is Registered again).
    pub recheck: bool,
    /// Where the session is in the retry schedule of /1/x/17–20.
    pub retry: super::retry::RetryState,
    /// Delay before the next Update after one went unanswered; doubles up to
    /// `MAX_UPDATE_RETRY`.
    pub update_retry: Duration,
    /// When the registration's lifetime ends without a successful Update.
    pub expires_at: Option<Instant>,
    /// Queue mode: when the client stops listening, counted from the last exchange.
    pub awake_until: Option<Instant>,
    /// Queue mode: not listening; a due notification or Send first sends an Update.
    pub asleep: bool,
    /// Notifications wait for an Update to get through: after waking from queue mode,
    /// or after an Update went unanswered while the registration is still valid.
    pub reconnecting: bool,
    /// Taken up from a previous run (`Engine::resume`): the first Update that gets
    /// through makes it registered for this run.
    pub resumed: bool,
}

/// An unanswered Update is retried after this, doubling up to the maximum, for as long
/// as the registration's lifetime lasts.
pub const FIRST_UPDATE_RETRY: Duration = Duration::from_secs(30);
pub const MAX_UPDATE_RETRY: Duration = Duration::from_secs(3600);

impl Session {
    pub fn new(short_server_id: u16, addr: SocketAddr, uri: String, now: Instant) -> Session {
        Session {
            short_server_id,
            addr,
            uri,
            state: State::Unregistered { retry_at: now },
            location: Vec::new(),
            advertised: None,
            update_at: None,
            update_pending: false,
            recheck: false,
            retry: Default::default(),
            update_retry: FIRST_UPDATE_RETRY,
            expires_at: None,
            awake_until: None,
            asleep: false,
            reconnecting: false,
            resumed: false,
        }
    }

    /// Whether the server registered this session in queue mode.
    pub fn queue_mode(&self) -> bool {
        self.advertised
            .as_ref()
            .is_some_and(|a| queue_mode(&a.binding))
    }

    /// Notifications and Sends to this server wait (see `asleep`, `reconnecting`).
    pub fn holds_reports(&self) -> bool {
        self.asleep || self.reconnecting
    }

    /// A message went to or came from the server: stay awake for `idle` more.
    pub fn touch(&mut self, now: Instant, idle: Duration) {
        self.asleep = false;
        if self.queue_mode() {
            self.awake_until = Some(now + idle);
        }
    }

    pub fn is_registered(&self) -> bool {
        matches!(self.state, State::Registered | State::Updating(_))
    }

    /// The next instant this session has something to do.
    pub fn deadline(&self) -> Option<Instant> {
        match self.state {
            State::Unregistered { retry_at } => Some(retry_at),
            State::Registered if !self.asleep => {
                self.update_at.into_iter().chain(self.awake_until).min()
            }
            State::Registered => self.update_at,
            State::Disabled { until } => Some(until),
            _ => None,
        }
    }

    /// Schedules the next Update so that it completes before the lifetime ends even when
    /// it needs all its retransmissions: at lifetime − MAX_TRANSMIT_WAIT, but never later
    /// than half the lifetime for short lifetimes.
    pub fn schedule_update(&mut self, now: Instant, lifetime: u32, max_transmit_wait: Duration) {
        let lifetime = Duration::from_secs(lifetime.into());
        let margin = max_transmit_wait.min(lifetime / 2);
        self.update_at = Some(now + (lifetime - margin));
        self.expires_at = Some(now + lifetime);
        self.reconnecting = false;
        self.update_retry = FIRST_UPDATE_RETRY;
    }

    /// An Update went unanswered. The registration stays valid until its lifetime ends
    /// (observations with it): retry the Update with a growing delay meanwhile, holding
    /// notifications back. Returns false when the lifetime is over and only a new
    /// Register can help.
    pub fn update_lost(&mut self, now: Instant) -> bool {
        let Some(expires) = self.expires_at.filter(|&t| t > now) else {
            return false;
        };
        self.state = State::Registered;
        self.reconnecting = true;
        self.update_pending = false;
        self.update_at = Some((now + self.update_retry).min(expires));
        self.update_retry = (self.update_retry * 2).min(MAX_UPDATE_RETRY);
        true
    }

    /// After a failed Register: retry after `delay`.
    pub fn retry_later(&mut self, now: Instant, delay: Duration) {
        self.state = State::Unregistered {
            retry_at: now + delay,
        };
        self.advertised = None;
        self.update_at = None;
        self.forget_registration();
    }

    /// The server forgot us (Update refused): register again at once.
    pub fn register_again(&mut self, now: Instant) {
        self.state = State::Unregistered { retry_at: now };
        self.advertised = None;
        self.update_at = None;
        self.forget_registration();
    }
}

impl Session {
    fn forget_registration(&mut self) {
        self.expires_at = None;
        self.awake_until = None;
        self.asleep = false;
        self.reconnecting = false;
        self.resumed = false;
    }
}

/// A binding with queue mode: `Q` in LwM2M 1.1+ server objects, `UQ` in 1.0 ones.
pub fn queue_mode(binding: &str) -> bool {
    binding.contains('Q')
}

/// The transports of a binding, without the queue-mode flag.
fn transports(binding: &str) -> String {
    binding.chars().filter(|&c| c != 'Q').collect()
}

fn request(method: RequestType) -> Packet {
    let mut p = Packet::new();
    p.header.code = MessageClass::Request(method);
    p
}

/// `POST /rd?ep=..&lt=..&lwm2m=..&b=..` with the object list in link format.
pub fn register_request(endpoint: &str, version: &str, adv: &Advertised) -> Packet {
    let mut p = request(RequestType::Post);
    add_string_options(&mut p, CoapOption::UriPath, ["rd"]);
    // LwM2M 1.1+: queue mode is the `Q` parameter, no longer a letter of the binding.
    let mut queries = vec![
        format!("ep={endpoint}"),
        format!("lt={}", adv.lifetime),
        format!("lwm2m={version}"),
        format!("b={}", transports(&adv.binding)),
    ];
    if queue_mode(&adv.binding) {
        queries.push("Q".to_string());
    }
    add_string_options(
        &mut p,
        CoapOption::UriQuery,
        queries.iter().map(String::as_str),
    );
    p.add_option(
        CoapOption::ContentFormat,
        encode_uint(ContentFormat::LinkFormat.code().into()),
    );
    p.payload = adv.objects.clone().into_bytes();
    p
}

/// `POST /{location}` carrying only the parameters that changed since `old`.
pub fn update_request(location: &[String], old: &Advertised, new: &Advertised) -> Packet {
    let mut p = request(RequestType::Post);
    add_string_options(
        &mut p,
        CoapOption::UriPath,
        location.iter().map(String::as_str),
    );
    let mut queries = Vec::new();
    if old.lifetime != new.lifetime {
        queries.push(format!("lt={}", new.lifetime));
    }
    if transports(&old.binding) != transports(&new.binding) {
        queries.push(format!("b={}", transports(&new.binding)));
    }
    add_string_options(
        &mut p,
        CoapOption::UriQuery,
        queries.iter().map(String::as_str),
    );
    if old.objects != new.objects {
        p.add_option(
            CoapOption::ContentFormat,
            encode_uint(ContentFormat::LinkFormat.code().into()),
        );
        p.payload = new.objects.clone().into_bytes();
    }
    p
}

/// `DELETE /{location}`.
pub fn deregister_request(location: &[String]) -> Packet {
    let mut p = request(RequestType::Delete);
    add_string_options(
        &mut p,
        CoapOption::UriPath,
        location.iter().map(String::as_str),
    );
    p
}
