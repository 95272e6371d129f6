//! What backend tasks report to the engine. Backends sample hardware on their own
//! schedule and push what they see through this channel; the daemon applies each report
//! between protocol events, so Read and notification checks never wait on hardware.

use tokio::sync::mpsc;

use crate::model::DmError;
use crate::path::Path;
use crate::value::ResourceValue;

/// Reports are small and backends sample slowly; the bound only matters when the loop
/// is stalled, and then a backend should wait rather than grow memory.
pub const FEED_CAPACITY: usize = 256;

#[derive(Debug, Clone, PartialEq)]
pub enum Feed {
    /// A new value of a resource (written with `by_server = false`).
    Value(Path, ResourceValue),
    /// The outcome of a bound Write or Execute (`Action::Bound` with this ticket).
    Done {
        ticket: u64,
        result: Result<(), DmError>,
    },
    /// A resource whose value the backend no longer knows.
    Absent(Path),
}

pub type FeedSender = mpsc::Sender<Feed>;
pub type FeedReceiver = mpsc::Receiver<Feed>;

pub fn channel() -> (FeedSender, FeedReceiver) {
    mpsc::channel(FEED_CAPACITY)
}
