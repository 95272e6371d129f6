//! Object 7, Connectivity Statistics, from the interface's traffic counters.
//!
//! The object holds what servers read; Start, Stop and the Collection Period become
//! actions for the connectivity task, which keeps a [`Collection`] (persisted in the
//! state directory, so a daemon restart within a collection loses nothing) and feeds the
//! figures back.

use serde::{Deserialize, Serialize};

use backends::modem::Counters;

use crate::model::registry_connectivity::CONNECTIVITY_STATISTICS;
use crate::model::{Action, ConnectivityAction, DmError, Object};
use crate::objects::store::Store;
use crate::value::{ResourceValue, Value};

pub const OBJECT_ID: u16 = 7;
pub const SMS_TX_COUNTER: u16 = 0;
pub const SMS_RX_COUNTER: u16 = 1;
pub const TX_DATA: u16 = 2;
pub const RX_DATA: u16 = 3;
pub const MAX_MESSAGE_SIZE: u16 = 4;
pub const AVERAGE_MESSAGE_SIZE: u16 = 5;
pub const START: u16 = 6;
pub const STOP: u16 = 7;
pub const COLLECTION_PERIOD: u16 = 8;

/// The state file of the collection.
pub const STATE_FILE: &str = "connectivity-statistics.json";

pub struct ConnectivityStatistics {
    store: Store,
}

impl ConnectivityStatistics {
    pub fn new() -> ConnectivityStatistics {
        let mut store = Store::new(&CONNECTIVITY_STATISTICS);
        store.add_instance(0);
        let _ = store.set(
            0,
            COLLECTION_PERIOD,
            ResourceValue::Single(Value::Integer(0)),
        );
        ConnectivityStatistics { store }
    }
}

impl Default for ConnectivityStatistics {
    fn default() -> Self {
        ConnectivityStatistics::new()
    }
}

impl Object for ConnectivityStatistics {
    crate::objects::store::reads_from_store!();
    fn has_resource(&self, instance: u16, resource: u16) -> bool {
        match resource {
            START | STOP => self.store.has_instance(instance),
            _ => self.store.get(instance, resource).is_some(),
        }
    }
    fn write(
        &mut self,
        instance: u16,
        resource: u16,
        value: ResourceValue,
        by_server: bool,
    ) -> Result<Vec<Action>, DmError> {
        let mut actions = Vec::new();
        if by_server {
            let ResourceValue::Single(Value::Integer(period)) = &value else {
                return Err(DmError::MethodNotAllowed);
            };
            if resource != COLLECTION_PERIOD {
                return Err(DmError::MethodNotAllowed);
            }
            let period = u32::try_from(*period).map_err(|_| {
                DmError::BadRequest(format!("collection period {period} out of range"))
            })?;
            actions.push(Action::Connectivity(ConnectivityAction::CollectionPeriod(
                period,
            )));
        }
        self.store.set(instance, resource, value)?;
        Ok(actions)
    }
    fn remove_value(&mut self, instance: u16, resource: u16) -> Result<(), DmError> {
        if !self.store.has_instance(instance) {
            return Err(DmError::NotFound);
        }
        self.store.remove(instance, resource);
        Ok(())
    }
    fn execute(
        &mut self,
        instance: u16,
        resource: u16,
        _args: &str,
    ) -> Result<Vec<Action>, DmError> {
        if !self.store.has_instance(instance) {
            return Err(DmError::NotFound);
        }
        match resource {
            START => {
                // A Read right after Start sees the reset, before the task has answered.
                for r in [TX_DATA, RX_DATA, AVERAGE_MESSAGE_SIZE] {
                    self.store
                        .set(instance, r, ResourceValue::Single(Value::Integer(0)))?;
                }
                Ok(vec![Action::Connectivity(
                    ConnectivityAction::StartStatistics,
                )])
            }
            STOP => Ok(vec![Action::Connectivity(
                ConnectivityAction::StopStatistics,
            )]),
            _ => Err(DmError::NotFound),
        }
    }
}

/// One collection: the traffic counted since Start, kept across counter resets (a link
/// re-created, a reboot) by adding up the increments between samples.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Collection {
    /// Whether Start has been executed at all; before that nothing is reported.
    pub started: bool,
    pub collecting: bool,
    /// Unix seconds of the Start.
    pub started_at: i64,
    /// Seconds after which collecting stops by itself; 0 for never.
    pub period: u32,
    pub tx_bytes: u64,
    pub rx_bytes: u64,
    pub tx_packets: u64,
    pub rx_packets: u64,
    /// The counters at the last sample, to take the next increment from.
    pub last: Option<[u64; 4]>,
}

impl Collection {
    /// Zeroes the figures and starts collecting from `counters`.
    pub fn start(&mut self, now: i64, counters: Option<Counters>) {
        *self = Collection {
            started: true,
            collecting: true,
            started_at: now,
            period: self.period,
            last: counters.map(raw),
            ..Collection::default()
        };
    }

    /// Counts up to `counters`, then stops.
    pub fn stop(&mut self, now: i64, counters: Option<Counters>) {
        if let Some(c) = counters {
            self.sample(now, c);
        }
        self.collecting = false;
    }

    /// Adds the traffic since the last sample, and stops once the period is over.
    pub fn sample(&mut self, now: i64, counters: Counters) {
        if !self.collecting {
            return;
        }
        let now_raw = raw(counters);
        if let Some(last) = self.last {
            let mut delta = [0u64; 4];
            for ((d, n), l) in delta.iter_mut().zip(now_raw).zip(last) {
                // A counter that went backwards was reset: it counts from zero.
                *d = if n >= l { n - l } else { n };
            }
            let [tx, rx, txp, rxp] = delta;
            self.tx_bytes = self.tx_bytes.saturating_add(tx);
            self.rx_bytes = self.rx_bytes.saturating_add(rx);
            self.tx_packets = self.tx_packets.saturating_add(txp);
            self.rx_packets = self.rx_packets.saturating_add(rxp);
        }
        self.last = Some(now_raw);
        if self.period > 0 && now >= self.started_at.saturating_add(self.period.into()) {
            self.collecting = false;
        }
    }

    /// The figures of resources 2, 3 and 5 (0, 1 and 4 are not derivable from interface
    /// counters and stay absent).
    pub fn values(&self) -> Vec<(u16, Option<ResourceValue>)> {
        let int = |n: u64| {
            self.started.then(|| {
                ResourceValue::Single(Value::Integer(i64::try_from(n).unwrap_or(i64::MAX)))
            })
        };
        let packets = self.tx_packets.saturating_add(self.rx_packets);
        let bytes = self.tx_bytes.saturating_add(self.rx_bytes);
        vec![
            (TX_DATA, int(self.tx_bytes / 1024)),
            (RX_DATA, int(self.rx_bytes / 1024)),
            (
                AVERAGE_MESSAGE_SIZE,
                int(bytes.checked_div(packets).unwrap_or(0)),
            ),
        ]
    }

    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// A stored collection; `None` for one that cannot be read back.
    pub fn from_json(data: &[u8]) -> Option<Collection> {
        serde_json::from_slice(data).ok()
    }
}

fn raw(c: Counters) -> [u64; 4] {
    [c.tx_bytes, c.rx_bytes, c.tx_packets, c.rx_packets]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counters(tx: u64, rx: u64, txp: u64, rxp: u64) -> Counters {
        Counters {
            tx_bytes: tx,
            rx_bytes: rx,
            tx_packets: txp,
            rx_packets: rxp,
        }
    }

    fn figure(c: &Collection, r: u16) -> Option<i64> {
        c.values()
            .into_iter()
            .find(|(id, _)| *id == r)
            .and_then(|(_, v)| match v {
                Some(ResourceValue::Single(Value::Integer(n))) => Some(n),
                _ => None,
            })
    }

    #[test]
    fn counts_from_start_in_kilobytes() {
        let mut c = Collection::default();
        assert_eq!(figure(&c, TX_DATA), None);
        c.start(1000, Some(counters(10_000, 50_000, 10, 50)));
        assert_eq!(figure(&c, TX_DATA), Some(0));
        c.sample(1010, counters(10_000 + 4096, 50_000 + 10_240, 12, 60));
        assert_eq!(figure(&c, TX_DATA), Some(4));
        assert_eq!(figure(&c, RX_DATA), Some(10));
        // 14336 bytes over 12 packets.
        assert_eq!(figure(&c, AVERAGE_MESSAGE_SIZE), Some(1194));
        c.stop(1020, Some(counters(10_000 + 8192, 50_000 + 10_240, 14, 60)));
        assert_eq!(figure(&c, TX_DATA), Some(8));
        // Stopped: later traffic is not counted, the figures stay.
        c.sample(1030, counters(1_000_000, 1_000_000, 99, 99));
        assert_eq!(figure(&c, TX_DATA), Some(8));
        c.start(1040, Some(counters(1_000_000, 1_000_000, 99, 99)));
        assert_eq!(figure(&c, TX_DATA), Some(0));
        assert_eq!(figure(&c, AVERAGE_MESSAGE_SIZE), Some(0));
    }

    #[test]
    fn a_counter_reset_counts_from_zero() {
        let mut c = Collection::default();
        c.start(0, Some(counters(5000, 5000, 5, 5)));
        c.sample(10, counters(7048, 5000, 6, 5));
        // Rebooted: the kernel's counters start again.
        c.sample(20, counters(1024, 0, 1, 0));
        assert_eq!(figure(&c, TX_DATA), Some(3));
    }

    #[test]
    fn the_period_ends_the_collection() {
        let mut c = Collection {
            period: 60,
            ..Collection::default()
        };
        c.start(100, Some(counters(0, 0, 0, 0)));
        c.sample(150, counters(2048, 0, 2, 0));
        assert!(c.collecting);
        c.sample(160, counters(4096, 0, 4, 0));
        assert!(!c.collecting);
        c.sample(170, counters(8192, 0, 8, 0));
        assert_eq!(figure(&c, TX_DATA), Some(4));
        assert_eq!(c.period, 60);
    }

    #[test]
    fn survives_a_round_trip_through_the_state_file() {
        let mut c = Collection::default();
        c.start(7, Some(counters(1, 2, 3, 4)));
        c.sample(8, counters(2000, 2, 5, 4));
        assert_eq!(Collection::from_json(&c.to_json()), Some(c));
        assert_eq!(Collection::from_json(b"{\"started\":"), None);
    }

    #[test]
    fn executes_and_period_become_actions() {
        let mut o = ConnectivityStatistics::new();
        assert!(o.has_resource(0, START));
        assert_eq!(
            o.execute(0, START, "").unwrap(),
            vec![Action::Connectivity(ConnectivityAction::StartStatistics)]
        );
        assert_eq!(
            o.read(0, TX_DATA),
            Some(ResourceValue::Single(Value::Integer(0)))
        );
        assert_eq!(
            o.execute(0, STOP, "").unwrap(),
            vec![Action::Connectivity(ConnectivityAction::StopStatistics)]
        );
        assert_eq!(
            o.write(
                0,
                COLLECTION_PERIOD,
                ResourceValue::Single(Value::Integer(3600)),
                true
            )
            .unwrap(),
            vec![Action::Connectivity(ConnectivityAction::CollectionPeriod(
                3600
            ))]
        );
        assert!(matches!(
            o.write(
                0,
                COLLECTION_PERIOD,
                ResourceValue::Single(Value::Integer(-1)),
                true
            ),
            Err(DmError::BadRequest(_))
        ));
        assert_eq!(o.execute(1, START, ""), Err(DmError::NotFound));
        assert_eq!(o.execute(0, TX_DATA, ""), Err(DmError::NotFound));
    }
}
