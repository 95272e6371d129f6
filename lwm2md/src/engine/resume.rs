//! What a restart must not lose of the reporting to a server: the registration (so that
//! the client carries on with an Update instead of a Register, which would end the
//! server's observations, Core TS §6.2.1), the observations, the attributes the server
//! wrote and the notifications stored while it was unreachable (/1/x/6, Core TS §6.4.2).
//!
//! The daemon saves a `Snapshot` whenever `Engine::reporting_version` moves and hands it
//! back to a new engine with `Engine::resume`. Times travel as Unix seconds: the engine's
//! `Instant`s mean nothing to another process.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::attributes::{AttributeUpdate, Attributes};
use super::observe::{Observation, Target};
use super::registration::{Advertised, State};
use super::Engine;
use crate::codec::ContentFormat;
use crate::path::Path;

/// The state directory file the snapshot lives in.
pub const FILE: &str = "reporting.json";

/// RFC 7641 §3.4: a notification is fresher than one before it when its sequence number
/// is ahead by less than 2^23. The number saved may be behind what was sent after the
/// save; jumping 2^22 ahead keeps the next notification fresher than all of them (unless
/// four million went out between two saves, and every Update saves).
const SEQ_JUMP: u32 = 1 << 22;

#[derive(Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Snapshot {
    /// Registrations belong to an endpoint name: another name starts afresh.
    pub endpoint: String,
    pub sessions: Vec<SessionSnapshot>,
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionSnapshot {
    pub short_server_id: u16,
    pub uri: String,
    pub location: Vec<String>,
    /// Unix seconds when the registration ends unless an Update gets through.
    pub expires: i64,
    /// Write-Attributes of this server: the path and its attributes as query strings.
    pub attributes: Vec<(String, Vec<String>)>,
    pub observations: Vec<ObservationSnapshot>,
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ObservationSnapshot {
    pub token: Vec<u8>,
    pub path: String,
    pub composite: Vec<String>,
    pub format: u16,
    pub seq: u32,
    /// Encoded notifications waiting for the server, oldest first.
    pub stored: Vec<Vec<u8>>,
}

impl Snapshot {
    pub fn is_empty(&self) -> bool {
        self.sessions.is_empty()
    }
}

impl Engine {
    /// Moves whenever what `snapshot` returns may have changed in a way worth saving:
    /// observations, attributes, stored notifications, registrations.
    pub fn reporting_version(&self) -> u64 {
        self.observers_version()
            .wrapping_add(self.stored_generation)
            .wrapping_add(self.registration_generation)
    }

    /// The registrations still valid at `now` (`unix_now` in Unix seconds), with what the
    /// servers asked to be reported.
    pub fn snapshot(&self, now: Instant, unix_now: i64) -> Snapshot {
        let sessions = self
            .sessions
            .iter()
            .filter(|s| !s.location.is_empty())
            .filter_map(|s| {
                let left = s.expires_at?.checked_duration_since(now)?;
                let ssid = s.short_server_id;
                Some(SessionSnapshot {
                    short_server_id: ssid,
                    uri: s.uri.clone(),
                    location: s.location.clone(),
                    expires: unix_now.saturating_add_unsigned(left.as_secs()),
                    attributes: self
                        .attributes
                        .of_server(ssid)
                        .map(|(path, a)| (path.to_string(), link_queries(a)))
                        .collect(),
                    observations: self
                        .observations
                        .iter()
                        .filter(|o| o.server == ssid)
                        .map(|o| ObservationSnapshot {
                            token: o.token.clone(),
                            path: o.path.to_string(),
                            composite: o.composite.iter().map(Path::to_string).collect(),
                            format: o.format.code(),
                            seq: o.seq,
                            stored: o.stored.iter().cloned().collect(),
                        })
                        .collect(),
                })
            })
            .collect();
        Snapshot {
            endpoint: self.config.endpoint.clone(),
            sessions,
        }
    }

    /// Takes up the registrations of a previous run that are still valid: each such
    /// server gets an Update at once (carrying every parameter, as the object list may
    /// have changed meanwhile) and, once it gets through, the stored notifications. A
    /// server that answers the Update with an error gets a Register, as usual. Returns
    /// the short server IDs resumed; anything unusable in the snapshot is skipped with a
    /// log line.
    pub fn resume(&mut self, snapshot: Snapshot, now: Instant, unix_now: i64) -> Vec<u16> {
        if snapshot.endpoint != self.config.endpoint {
            tracing::info!(
                "saved registrations belong to endpoint {:?}: registering afresh",
                snapshot.endpoint
            );
            return Vec::new();
        }
        let mut resumed = Vec::new();
        for saved in snapshot.sessions {
            let Some(s) = self.sessions.iter_mut().find(|s| {
                s.short_server_id == saved.short_server_id
                    && s.uri == saved.uri
                    && matches!(s.state, State::Unregistered { .. })
            }) else {
                tracing::info!(server = %saved.uri, "saved registration: no such account any more");
                continue;
            };
            let left = saved.expires.saturating_sub(unix_now);
            let Some(left) = u64::try_from(left).ok().filter(|&l| l > 0) else {
                tracing::info!(server = %saved.uri, "saved registration has expired: registering afresh");
                continue;
            };
            if saved.location.is_empty() {
                continue;
            }
            s.location = saved.location;
            s.state = State::Registered;
            // Differs from anything real: the first Update carries lt, b and the objects.
            s.advertised = Some(Advertised {
                lifetime: 0,
                binding: String::new(),
                objects: String::new(),
            });
            s.expires_at = Some(now + Duration::from_secs(left));
            s.update_at = Some(now);
            s.reconnecting = true;
            s.resumed = true;
            let (ssid, peer) = (s.short_server_id, s.addr);
            tracing::info!(server = %s.uri, location = %s.location.join("/"), "resuming the registration of the previous run");
            for (path, queries) in saved.attributes {
                match restore_attributes(&path, &queries) {
                    Ok((path, a)) => self.attributes.set(ssid, path, a),
                    Err(why) => tracing::warn!("saved attributes at {path:?} dropped: {why}"),
                }
            }
            for o in saved.observations {
                match restore_observation(o, ssid, peer, now) {
                    Ok(mut o) => {
                        let limit = self.config.limits.stored_per_observation.max(1);
                        let excess = o.stored.len().saturating_sub(limit);
                        o.stored.drain(..excess);
                        self.observations.push(o);
                    }
                    Err(why) => tracing::warn!("saved observation dropped: {why}"),
                }
            }
            self.observer_generation += 1;
            resumed.push(ssid);
        }
        resumed
    }
}

fn link_queries(a: &Attributes) -> Vec<String> {
    a.link_attrs()
        .into_iter()
        .filter_map(|(name, value)| Some(format!("{name}={}", value?)))
        .collect()
}

fn restore_attributes(path: &str, queries: &[String]) -> Result<(Path, Attributes), String> {
    let path: Path = path.parse().map_err(|e| format!("{e}"))?;
    let a = AttributeUpdate::parse(queries)
        .and_then(|u| u.apply(&Attributes::default()))
        .map_err(|e| e.to_string())?;
    Ok((path, a))
}

fn restore_observation(
    o: ObservationSnapshot,
    server: u16,
    peer: std::net::SocketAddr,
    now: Instant,
) -> Result<Observation, String> {
    let path: Path = o.path.parse().map_err(|e| format!("{}: {e}", o.path))?;
    let composite = o
        .composite
        .iter()
        .map(|p| p.parse().map_err(|e| format!("{p}: {e}")))
        .collect::<Result<Vec<Path>, String>>()?;
    let format = ContentFormat::from_code(o.format)
        .ok_or_else(|| format!("content format {} unknown", o.format))?;
    if o.token.len() > 8 {
        return Err("token longer than 8 bytes".into());
    }
    let mut observation = Observation::new(
        Target {
            server,
            peer,
            token: o.token,
            path,
            composite,
            format,
        },
        now,
    );
    // The first value the backends push after a restart counts as a change (nothing is
    // known of what the server has), so it hears the current state after the stored
    // notifications.
    observation.seq = o.seq.wrapping_add(SEQ_JUMP) & 0x00ff_ffff;
    observation.stored = VecDeque::from(o.stored);
    Ok(observation)
}
