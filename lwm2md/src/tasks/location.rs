//! Feeds object 6 from gpsd, or from the configured static position.

use std::time::{Duration, Instant};

use backends::location::gpsd::{self, Event};
use backends::location::Fix;
use tokio::sync::mpsc;

use crate::config::{LocationBackend, LocationConfig};
use crate::feed::{Feed, FeedSender};
use crate::objects::location::Position;
use crate::path::Path;
use crate::value::ResourceValue;

/// gpsd reports once a second. A fix whose position and motion did not change is fed
/// again only this often, so that a parked gateway does not wake the loop every second
/// just to move the Timestamp.
const REFRESH: Duration = Duration::from_secs(60);

/// Runs until the daemon's feed closes.
pub async fn run(config: LocationConfig, feed: FeedSender, wall_clock: fn() -> i64) {
    if let Some(position) = configured(&config, wall_clock()) {
        if send(&feed, &position).await.is_err() {
            return;
        }
    }
    if config.backend != LocationBackend::Gpsd {
        return;
    }
    let (tx, mut rx) = mpsc::channel(8);
    let watcher = tokio::spawn(gpsd::watch(config.address.clone(), tx));
    let mut last: Option<(Position, Instant)> = None;
    while let Some(event) = rx.recv().await {
        // Without a fix the last known position stays, with the Timestamp of when it was
        // measured: that is what the object's Timestamp is for.
        let Event::Fix(fix) = event else { continue };
        let position = from_fix(&fix, wall_clock());
        let due = match &last {
            Some((p, at)) => !same_place(p, &position) || at.elapsed() >= REFRESH,
            None => true,
        };
        if !due {
            continue;
        }
        if send(&feed, &position).await.is_err() {
            break;
        }
        last = Some((position, Instant::now()));
    }
    watcher.abort();
}

fn configured(config: &LocationConfig, now: i64) -> Option<Position> {
    Some(Position {
        latitude: config.latitude?,
        longitude: config.longitude?,
        altitude: config.altitude,
        radius: None,
        speed: None,
        bearing: None,
        climb: None,
        timestamp: now,
    })
}

pub fn from_fix(fix: &Fix, now: i64) -> Position {
    Position {
        latitude: fix.latitude,
        longitude: fix.longitude,
        altitude: fix.altitude,
        radius: fix.radius,
        speed: fix.speed,
        bearing: fix.track,
        climb: fix.climb,
        // A receiver without time yet still measured now.
        timestamp: fix.time.unwrap_or(now),
    }
}

/// Everything but the timestamp.
fn same_place(a: &Position, b: &Position) -> bool {
    Position {
        timestamp: 0,
        ..a.clone()
    } == Position {
        timestamp: 0,
        ..b.clone()
    }
}

async fn send(feed: &FeedSender, position: &Position) -> Result<(), ()> {
    for (resource, value) in position.resources() {
        feed.send(Feed::Value(
            Path::resource(6, 0, resource),
            ResourceValue::Single(value),
        ))
        .await
        .map_err(|_| ())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamp_does_not_make_a_new_place() {
        let fix = Fix {
            latitude: 1.0,
            longitude: 2.0,
            altitude: None,
            radius: None,
            speed: None,
            track: None,
            climb: None,
            time: None,
        };
        let a = from_fix(&fix, 100);
        assert_eq!(a.timestamp, 100);
        assert!(same_place(&a, &from_fix(&fix, 200)));
        let moved = Fix {
            latitude: 1.0001,
            ..fix
        };
        assert!(!same_place(&a, &from_fix(&moved, 100)));
    }
}
