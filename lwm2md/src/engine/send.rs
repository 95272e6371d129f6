//! The Send operation (Core TS 1.1 §6.5.1): values pushed to a server at `POST /dp`
//! without it asking, on a schedule from the configuration.

use std::time::{Duration, Instant};

use coap_lite::{CoapOption, MessageClass, Packet, RequestType, ResponseType};

use super::options::{add_string_options, encode_uint};
use super::registration::State;
use super::{dm, Engine};
use crate::coap::RequestId;
use crate::codec::{senml, ContentFormat};
use crate::model::DmError;
use crate::objects::server;
use crate::path::Path;
use crate::value::Value;

/// Paths sent together every `interval`.
#[derive(Debug, Clone)]
pub struct SendSpec {
    pub paths: Vec<Path>,
    pub interval: Duration,
    /// SenML CBOR or SenML JSON.
    pub format: ContentFormat,
}

impl Engine {
    /// Sends the current values of `paths` to every registered server that has not muted
    /// Send (/1/x/23). Paths that do not exist are left out; nothing to send is 4.04.
    pub fn send(
        &mut self,
        now: Instant,
        paths: &[Path],
        format: ContentFormat,
    ) -> Result<usize, DmError> {
        let records = dm::collect_composite(&self.objects, paths)?;
        let payload = senml::encode_at(format, &records, (self.config.wall_clock)() as f64)
            .map_err(|e| DmError::Internal(e.to_string()))?;
        let mut sent = 0;
        for idx in 0..self.sessions.len() {
            let (ssid, addr, registered) = {
                let s = &self.sessions[idx];
                (
                    s.short_server_id,
                    s.addr,
                    matches!(s.state, State::Registered | State::Updating(_)),
                )
            };
            if !registered || self.send_muted(ssid) {
                continue;
            }
            let mut p = Packet::new();
            p.header.code = MessageClass::Request(RequestType::Post);
            add_string_options(&mut p, CoapOption::UriPath, ["dp"]);
            p.add_option(CoapOption::ContentFormat, encode_uint(format.code().into()));
            p.payload = payload.clone();
            let id = self.coap.send_request(now, addr, p, true);
            self.sends_in_flight.push((id, ssid));
            sent += 1;
        }
        Ok(sent)
    }

    /// /1/x/23 of the server's instance. Core TS 1.2 (object 1 v1.2): true or absent
    /// de-activates Send; accounts from the configuration carry an explicit false.
    fn send_muted(&self, server: u16) -> bool {
        self.server_resource(server, server::MUTE_SEND) != Some(Value::Boolean(false))
    }

    pub(super) fn send_deadline(&self) -> Option<Instant> {
        self.send_due.iter().copied().min()
    }

    /// Runs the scheduled Sends that are due.
    pub(super) fn send_scheduled(&mut self, now: Instant) {
        for k in 0..self.send_due.len() {
            if self.send_due[k] > now {
                continue;
            }
            let spec = self.config.send[k].clone();
            self.send_due[k] = now + spec.interval;
            if let Err(e) = self.send(now, &spec.paths, spec.format) {
                tracing::warn!(
                    "scheduled send of {:?}: {e}",
                    spec.paths.iter().map(Path::to_string).collect::<Vec<_>>()
                );
            }
        }
    }

    /// The answer to a Send, if `id` was one. Returns whether it was.
    pub(super) fn send_answered(&mut self, id: RequestId, code: Option<MessageClass>) -> bool {
        let Some(pos) = self.sends_in_flight.iter().position(|(r, _)| *r == id) else {
            return false;
        };
        let (_, ssid) = self.sends_in_flight.swap_remove(pos);
        match code {
            Some(MessageClass::Response(ResponseType::Changed)) => {
                tracing::debug!(server = ssid, "send accepted")
            }
            Some(code) => tracing::warn!(server = ssid, "send refused: {code}"),
            None => tracing::warn!(server = ssid, "send got no answer"),
        }
        true
    }
}
