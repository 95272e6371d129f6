//! Establishing, cancelling and sending Observe notifications.

use std::time::Instant;

use coap_lite::{CoapOption, MessageClass, Packet, ResponseType};

use super::attributes::Attributes;
use super::observe::{self, Observation};
use super::options::encode_uint;
use super::Engine;
use crate::coap::block;
use crate::coap::RequestId;
use crate::codec::{self, ContentFormat};
use crate::objects::server;
use crate::path::Path;
use crate::value::Value;

impl Engine {
    /// A successful Read (or Read-Composite, with `composite` paths) with Observe=0
    /// becomes an observation. Returns the Observe value for the response, or `None` when
    /// the observation was refused (limit reached).
    pub(super) fn establish(
        &mut self,
        now: Instant,
        server: u16,
        request: &crate::coap::IncomingRequest,
        path: Path,
        composite: Vec<Path>,
        format: ContentFormat,
    ) -> Option<u32> {
        let (peer, token) = (request.peer, request.packet.get_token().to_vec());
        // A repeated registration of interest replaces the old one (RFC 7641 §4.1).
        self.observations
            .retain(|o| !(o.peer == peer && o.token == token));
        if self
            .observations
            .iter()
            .filter(|o| o.server == server)
            .count()
            >= observe::MAX_PER_SERVER
        {
            tracing::warn!(%path, "observation refused: server {server} already has {} (the limit)", observe::MAX_PER_SERVER);
            return None;
        }
        let mut obs = Observation {
            server,
            peer,
            token,
            path,
            composite,
            format,
            seq: 0,
            last_sent: now,
            last_con: now,
            last_records: Vec::new(),
            last_seen: Vec::new(),
            changed: false,
            recent: Vec::new(),
        };
        obs.last_records = self.observed_values(&obs).unwrap_or_default();
        obs.last_seen = obs.last_records.clone();
        tracing::debug!(%path, server, "observation established");
        self.observations.push(obs);
        Some(0)
    }

    /// GET with Observe=1 and the observation's token (RFC 7641 §3.6).
    pub(super) fn cancel_observation(&mut self, peer: std::net::SocketAddr, token: &[u8]) {
        self.observations
            .retain(|o| !(o.peer == peer && o.token == token));
    }

    /// Values under `path` changed: observations above or below it re-check.
    pub(super) fn values_changed(&mut self, path: &Path) {
        for o in &mut self.observations {
            if o.covers(path) {
                o.changed = true;
            }
        }
    }

    /// The smallest pmin among the observations that cover `path` and have one, so that
    /// a backend can sample as often as an observer asked for and no more often.
    pub fn tightest_pmin(&self, path: &Path) -> Option<u32> {
        self.observations
            .iter()
            .filter(|o| o.covers(path))
            .filter_map(|o| self.attributes_for(o).pmin)
            .min()
    }

    /// A RST or a lost confirmable notification ends the observation (RFC 7641 §3.6,
    /// §4.5). Returns whether `id` was a notification.
    pub(super) fn notification_failed(&mut self, id: RequestId) -> bool {
        let before = self.observations.len();
        self.observations.retain(|o| !o.recent.contains(&id));
        if self.observations.len() < before {
            tracing::debug!("observer gone: observation cancelled");
        }
        self.observations.len() < before
    }

    /// The attributes in effect for an observation.
    /// A composite observation has no path of its own to carry attributes: it follows the
    /// server's default periods.
    fn attributes_for(&self, o: &Observation) -> Attributes {
        let (pmin, pmax) = self.default_periods(o.server);
        if o.composite.is_empty() {
            self.attributes.effective(o.server, &o.path, pmin, pmax)
        } else {
            Attributes {
                pmin,
                pmax,
                ..Attributes::default()
            }
        }
    }

    fn observed_values(
        &self,
        o: &Observation,
    ) -> Result<Vec<crate::codec::Record>, crate::model::DmError> {
        if o.composite.is_empty() {
            self.read(&o.path)
        } else {
            super::dm::collect_composite(&self.objects, &o.composite)
        }
    }

    /// /1/x/2 and /1/x/3 of the server's instance.
    fn default_periods(&self, server: u16) -> (Option<u32>, Option<u32>) {
        let secs = |r| match self.server_resource(server, r) {
            Some(Value::Integer(n)) => u32::try_from(n).ok(),
            _ => None,
        };
        (secs(server::DEFAULT_PMIN), secs(server::DEFAULT_PMAX))
    }

    pub(super) fn observation_deadline(&self) -> Option<Instant> {
        self.observations
            .iter()
            .filter_map(|o| o.deadline(&self.attributes_for(o)))
            .min()
    }

    /// Sends the notifications that are due.
    pub(super) fn notify_due(&mut self, now: Instant) {
        let mut ended = Vec::new();
        for idx in 0..self.observations.len() {
            let o = &self.observations[idx];
            let attrs = self.attributes_for(o);
            if o.deadline(&attrs).is_none_or(|t| t > now) {
                continue;
            }
            let pmax_due = o.pmax_elapsed(&attrs, now);
            let current = self.observed_values(o);
            let o = &mut self.observations[idx];
            let records = match current {
                Ok(records) => records,
                Err(e) => {
                    // The target is gone: say so once, then forget the observation.
                    tracing::debug!(path = %o.path, "observed target unreadable: {e}");
                    let mut p = Packet::new();
                    p.header.code = MessageClass::Response(super::dm::error_code(&e));
                    p.add_option(CoapOption::Observe, encode_uint(o.next_seq()));
                    self.coap
                        .send_notification(now, o.peer, &o.token.clone(), p, false);
                    ended.push(idx);
                    continue;
                }
            };
            o.changed = false;
            let worth = observe::worth_notifying(&attrs, &o.last_records, &o.last_seen, &records);
            o.last_seen.clone_from(&records);
            if !(worth || pmax_due) {
                continue;
            }
            let payload = match codec::encode(o.format, &o.path, &records) {
                Ok(p) => p,
                Err(e) => {
                    tracing::warn!(path = %o.path, "cannot encode notification: {e}");
                    continue;
                }
            };
            let mut p = Packet::new();
            p.header.code = MessageClass::Response(ResponseType::Content);
            p.add_option(CoapOption::Observe, encode_uint(o.next_seq()));
            p.add_option(
                CoapOption::ContentFormat,
                encode_uint(o.format.code().into()),
            );
            // A large notification carries its first block; the server fetches the rest.
            match block::block2_slice(&payload, None, self.config.block_size) {
                Ok(Some((slice, option))) => {
                    block::set_block2(&mut p, option);
                    p.payload = slice.to_vec();
                }
                _ => p.payload = payload,
            }
            let confirmable = attrs.con == Some(true) || now >= o.last_con + observe::CON_INTERVAL;
            if confirmable {
                o.last_con = now;
            }
            let id = self
                .coap
                .send_notification(now, o.peer, &o.token.clone(), p, confirmable);
            o.remember(id);
            o.last_sent = now;
            o.last_records = records;
        }
        for idx in ended.into_iter().rev() {
            self.observations.remove(idx);
        }
    }
}
