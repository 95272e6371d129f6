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
            >= self.config.limits.observations_per_server
        {
            tracing::warn!(%path, "observation refused: server {server} already has {} (observe.max_per_server)", self.config.limits.observations_per_server);
            return None;
        }
        let target = observe::Target {
            server,
            peer,
            token,
            path,
            composite,
            format,
        };
        let mut obs = Observation::new(target, now);
        obs.last_records = self.observed_values(&obs).unwrap_or_default();
        obs.last_seen = obs.last_records.clone();
        tracing::debug!(%path, server, "observation established");
        self.observations.push(obs);
        self.observer_generation += 1;
        Some(0)
    }

    /// GET with Observe=1 and the observation's token (RFC 7641 §3.6).
    pub(super) fn cancel_observation(&mut self, peer: std::net::SocketAddr, token: &[u8]) {
        self.observations
            .retain(|o| !(o.peer == peer && o.token == token));
        self.observer_generation += 1;
    }

    /// Values under `path` changed: observations above or below it re-check.
    pub(super) fn values_changed(&mut self, path: &Path) {
        for o in &mut self.observations {
            o.note_change(path);
        }
    }

    /// A RST or a lost confirmable notification ends the observation (RFC 7641 §3.6,
    /// §4.5). Returns whether `id` was a notification.
    pub(super) fn notification_failed(&mut self, id: RequestId) -> bool {
        let before = self.observations.len();
        self.observations.retain(|o| !o.recent.contains(&id));
        if self.observations.len() < before {
            tracing::debug!("observer gone: observation cancelled");
            self.observer_generation += 1;
        }
        self.observations.len() < before
    }

    /// The attributes in effect for an observation's timing. A composite observation
    /// has no path of its own: each of its paths keeps its attributes, so a change is
    /// reported after the pmin of the paths that changed, and the earliest pmax (or
    /// epmax) of all paths makes a notification (an evaluation) due. Value conditions
    /// (gt, lt, st, edge) are judged per path, see `worth`.
    fn attributes_for(&self, o: &Observation) -> Attributes {
        let (pmin, pmax) = self.default_periods(o.server);
        if o.composite.is_empty() {
            return self.attributes.effective(o.server, &o.path, pmin, pmax);
        }
        let per_path: Vec<Attributes> = o
            .composite
            .iter()
            .map(|p| self.attributes.effective(o.server, p, pmin, pmax))
            .collect();
        let changed: Vec<&Attributes> = per_path
            .iter()
            .enumerate()
            .filter(|(i, _)| o.path_changed(*i))
            .map(|(_, a)| a)
            .collect();
        let min_of = |f: fn(&Attributes) -> Option<u32>,
                      set: &mut dyn Iterator<Item = &Attributes>| {
            set.filter_map(f).filter(|&v| v > 0).min()
        };
        Attributes {
            pmin: min_of(|a| a.pmin, &mut changed.iter().copied()),
            pmax: min_of(|a| a.pmax, &mut per_path.iter()),
            epmin: min_of(|a| a.epmin, &mut changed.iter().copied()),
            epmax: min_of(|a| a.epmax, &mut per_path.iter()),
            con: per_path.iter().filter_map(|a| a.con).reduce(|x, y| x || y),
            ..Attributes::default()
        }
    }

    /// Whether `current` is worth a notification: for a composite observation, whether
    /// any of its paths is under its own attributes.
    fn worth(&self, o: &Observation, attrs: &Attributes, current: &[crate::codec::Record]) -> bool {
        if o.composite.is_empty() {
            return observe::worth_notifying(attrs, &o.last_records, &o.last_seen, current);
        }
        let (pmin, pmax) = self.default_periods(o.server);
        let under = |records: &[crate::codec::Record], p: &Path| -> Vec<crate::codec::Record> {
            records
                .iter()
                .filter(|r| p.contains(&r.path))
                .cloned()
                .collect()
        };
        o.composite.iter().any(|p| {
            let a = self.attributes.effective(o.server, p, pmin, pmax);
            observe::worth_notifying(
                &a,
                &under(&o.last_records, p),
                &under(&o.last_seen, p),
                &under(current, p),
            )
        })
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

    /// /1/x/26 Default Notification Mode (1.2): 1 makes notifications confirmable unless
    /// the con attribute says otherwise.
    fn default_confirmable(&self, server: u16) -> bool {
        self.server_resource(server, server::DEFAULT_NOTIFICATION_MODE) == Some(Value::Integer(1))
    }

    /// /1/x/2 and /1/x/3 of the server's instance.
    fn default_periods(&self, server: u16) -> (Option<u32>, Option<u32>) {
        let secs = |r| match self.server_resource(server, r) {
            Some(Value::Integer(n)) => u32::try_from(n).ok(),
            _ => None,
        };
        (secs(server::DEFAULT_PMIN), secs(server::DEFAULT_PMAX))
    }

    /// Changes whenever what `observed_pmin` answers may change (an observation starts
    /// or ends, attributes are written), so that backends ask again only then.
    pub fn observers_version(&self) -> u64 {
        self.observer_generation
            .wrapping_add(self.attributes.version())
    }

    /// The shortest pmin among the observations a change at `path` concerns (zero when
    /// one wants every change at once); `None` when nobody observes it. Backends that
    /// sample on a schedule read faster while someone listens.
    pub fn observed_pmin(&self, path: &crate::path::Path) -> Option<std::time::Duration> {
        self.observations
            .iter()
            .filter(|o| o.covers(path))
            .map(|o| {
                std::time::Duration::from_secs(self.attributes_for(o).pmin.unwrap_or(0).into())
            })
            .min()
    }

    pub(super) fn observation_deadline(&self) -> Option<Instant> {
        self.observations
            .iter()
            .filter_map(|o| match self.hold(o.server) {
                Hold::No | Hold::Asleep => o.deadline(&self.attributes_for(o)),
                // Only changes are worth waking for while they can only be stored.
                Hold::Store if o.changed => o.deadline(&self.attributes_for(o)),
                Hold::Store | Hold::Latest => None,
            })
            .min()
    }

    /// What happens to a due notification for `server` now.
    fn hold(&self, server: u16) -> Hold {
        let Some(s) = self.sessions.iter().find(|s| s.short_server_id == server) else {
            return Hold::No;
        };
        if s.asleep {
            Hold::Asleep
        } else if !s.reconnecting {
            Hold::No
        } else if self.server_resource(server, server::NOTIFICATION_STORING)
            == Some(Value::Boolean(true))
        {
            Hold::Store
        } else {
            Hold::Latest
        }
    }

    /// An Update got through: what was stored goes out, oldest first, before anything
    /// newer (non-confirmable: the latest state follows under the usual rules).
    pub(super) fn release_held(&mut self, now: Instant, server: u16) {
        for o in self.observations.iter_mut().filter(|o| o.server == server) {
            while let Some(payload) = o.stored.pop_front() {
                self.stored_generation += 1;
                let p = notification_packet(o, &payload, self.config.block_size);
                let id = self
                    .coap
                    .send_notification(now, o.peer, &o.token.clone(), p, false);
                o.remember(id);
            }
        }
    }

    /// Sends the notifications that are due.
    pub(super) fn notify_due(&mut self, now: Instant) {
        let mut ended = Vec::new();
        for idx in 0..self.observations.len() {
            let o = &self.observations[idx];
            let hold = self.hold(o.server);
            if hold == Hold::Latest {
                // Notification storing is off: only the state at reconnection is sent.
                continue;
            }
            let attrs = self.attributes_for(o);
            if o.epmax_elapsed(&attrs, now) {
                self.observations[idx].changed = true;
            }
            let o = &self.observations[idx];
            if o.deadline(&attrs).is_none_or(|t| t > now) {
                continue;
            }
            if hold == Hold::Asleep {
                let server = o.server;
                self.wake(now, server);
                continue;
            }
            let pmax_due = o.pmax_elapsed(&attrs, now);
            let current = self.observed_values(o);
            let con_default = self.default_confirmable(o.server);
            let worth = current
                .as_ref()
                .is_ok_and(|records| self.worth(o, &attrs, records));
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
            o.changed_paths = 0;
            o.last_eval = now;
            o.last_seen.clone_from(&records);
            if !(worth || pmax_due) {
                continue;
            }
            let Some(payload) = encode_notification(o, &records) else {
                continue;
            };
            if hold == Hold::Store {
                o.store(payload, self.config.limits.stored_per_observation);
                self.stored_generation += 1;
                o.last_sent = now;
                o.last_records = records;
                continue;
            }
            let p = notification_packet(o, &payload, self.config.block_size);
            let confirmable =
                attrs.con.unwrap_or(con_default) || now >= o.last_con + observe::CON_INTERVAL;
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
            self.observer_generation += 1;
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Hold {
    /// Send as usual.
    No,
    /// Queue mode, not listening: wake up (Update) first.
    Asleep,
    /// Waiting for an Update to get through, storing notifications (/1/x/6 true).
    Store,
    /// Waiting, not storing: the latest state goes out afterwards.
    Latest,
}

/// `records` in the observation's content format.
fn encode_notification(o: &Observation, records: &[crate::codec::Record]) -> Option<Vec<u8>> {
    codec::encode(o.format, &o.path, records)
        .inspect_err(|e| tracing::warn!(path = %o.path, "cannot encode notification: {e}"))
        .ok()
}

/// A 2.05 notification carrying `payload` for `o` with the next sequence number. A large
/// one carries its first block; the server fetches the rest.
fn notification_packet(o: &mut Observation, payload: &[u8], block_size: usize) -> Packet {
    let mut p = Packet::new();
    p.header.code = MessageClass::Response(ResponseType::Content);
    p.add_option(CoapOption::Observe, encode_uint(o.next_seq()));
    p.add_option(
        CoapOption::ContentFormat,
        encode_uint(o.format.code().into()),
    );
    match block::block2_slice(payload, None, block_size) {
        Ok(Some((slice, option))) => {
            block::set_block2(&mut p, option);
            p.payload = slice.to_vec();
        }
        _ => p.payload = payload.to_vec(),
    }
    p
}
