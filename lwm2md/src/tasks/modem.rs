//! Polls the AT modem on a thread of its own and forwards each status to the feed.

use std::time::Duration;

use backends::modem::at::{self, AtModem};
use tokio::sync::mpsc;

use crate::config::{ModemBackend, ModemConfig};
use crate::feed::{Feed, FeedSender};

/// Runs until the daemon's feed closes.
pub async fn run(config: ModemConfig, feed: FeedSender) {
    match config.backend {
        ModemBackend::At => {}
    }
    let (tx, mut rx) = mpsc::channel(2);
    let modem = AtModem::new(config.port.clone(), config.baud);
    let interval = Duration::from_secs(config.interval.into());
    if let Err(e) = at::watch(modem, interval, tx) {
        tracing::error!("cannot start the modem thread: {e}");
        return;
    }
    while let Some(status) = rx.recv().await {
        if feed.send(Feed::Modem(Box::new(status))).await.is_err() {
            // Dropping the receiver stops the thread after its current poll.
            return;
        }
    }
}
