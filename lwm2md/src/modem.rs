//! The modem behind the connectivity task: ModemManager's view of it, as snapshots, and
//! the APN changes sent to it.

use backends::modem::{ConnectivitySnapshot, Counters};

use crate::feed::FeedSender;
use crate::model::ConnectivityAction;

pub struct ModemSource {
    latest: Option<ConnectivitySnapshot>,
}

impl ModemSource {
    pub fn start(_interval: u32, _feed: FeedSender) -> ModemSource {
        ModemSource { latest: None }
    }

    /// The next snapshot, when something changed.
    pub async fn next(&mut self) -> Option<ConnectivitySnapshot> {
        std::future::pending().await
    }

    pub fn counters(&self) -> Option<Counters> {
        self.latest.as_ref()?.counters
    }

    pub fn act(&mut self, action: ConnectivityAction) {
        tracing::warn!(?action, "no modem");
    }
}
