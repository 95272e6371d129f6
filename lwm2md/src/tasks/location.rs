//! Feeds object 6 from gpsd, from the modem's GNSS receiver through ModemManager, or
//! from the configured static position.

use std::time::{Duration, Instant};

use backends::location::gpsd::{self, Event};
use backends::location::Fix;
use backends::modem::mm::{MmError, ModemManager};
use tokio::sync::mpsc;
use zbus::zvariant::OwnedObjectPath;

use crate::config::{LocationBackend, LocationConfig};
use crate::feed::{Feed, FeedSender};
use crate::objects::location::Position;
use crate::path::Path;
use crate::value::ResourceValue;

/// gpsd reports once a second. A fix whose position and motion did not change is fed
/// again only this often, so that a parked gateway does not wake the loop every second
/// just to move the Timestamp.
const REFRESH: Duration = Duration::from_secs(60);

/// How often the modem's GNSS position is read (ModemManager refreshes it every 30 s by
/// default, some modems every second).
const MODEM_POLL: Duration = Duration::from_secs(5);

/// Runs until the daemon's feed closes. `modem_manager`: backend `modem` reads the
/// modem through ModemManager (else the AT backend reads it, and this task only reports
/// the configured position).
pub async fn run(
    config: LocationConfig,
    feed: FeedSender,
    wall_clock: fn() -> i64,
    modem_manager: bool,
) {
    if let Some(position) = configured(&config, wall_clock()) {
        if send(&feed, &position).await.is_err() {
            return;
        }
    }
    match config.backend {
        LocationBackend::Gpsd => from_gpsd(&config, feed, wall_clock).await,
        LocationBackend::Modem if modem_manager => from_modem(feed, wall_clock).await,
        LocationBackend::Modem | LocationBackend::Static => {}
    }
}

async fn from_gpsd(config: &LocationConfig, feed: FeedSender, wall_clock: fn() -> i64) {
    let (tx, mut rx) = mpsc::channel(8);
    let watcher = tokio::spawn(gpsd::watch(config.address.clone(), tx));
    let mut fixes = Fixes::default();
    while let Some(event) = rx.recv().await {
        // Without a fix the last known position stays, with the Timestamp of when it was
        // measured: that is what the object's Timestamp is for.
        let Event::Fix(fix) = event else { continue };
        if fixes
            .offer(&feed, from_fix(&fix, wall_clock()))
            .await
            .is_err()
        {
            break;
        }
    }
    watcher.abort();
}

/// Feeds fixes that moved, or that have not been fed for [`REFRESH`].
#[derive(Default)]
pub struct Fixes {
    last: Option<(Position, Instant)>,
}

impl Fixes {
    pub async fn offer(&mut self, feed: &FeedSender, position: Position) -> Result<(), ()> {
        let due = match &self.last {
            Some((p, at)) => !same_place(p, &position) || at.elapsed() >= REFRESH,
            None => true,
        };
        if due {
            send(feed, &position).await?;
            self.last = Some((position, Instant::now()));
        }
        Ok(())
    }
}

/// What the modem's GNSS looked like at the last poll, logged when it changes.
#[derive(Debug, Clone, PartialEq)]
enum ModemGnss {
    Fix,
    NoFix,
    NoReceiver,
    Failed(String),
}

/// Polls the GNSS receiver of ModemManager's first modem. A modem without one, or
/// without a fix, leaves object 6 as it is (the configured position, or the last fix
/// with its Timestamp): nothing is made up from the cell.
async fn from_modem(feed: FeedSender, wall_clock: fn() -> i64) {
    let address = backends::system::SystemBus::from_env().address().to_owned();
    let mut mm: Option<ModemManager> = None;
    let mut enabled_on: Option<OwnedObjectPath> = None;
    let mut fixes = Fixes::default();
    let mut reported: Option<ModemGnss> = None;
    let mut tick = tokio::time::interval(MODEM_POLL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let now = match modem_fix(&address, &mut mm, &mut enabled_on).await {
            Ok(Some(fix)) => {
                if fixes
                    .offer(&feed, from_fix(&fix, wall_clock()))
                    .await
                    .is_err()
                {
                    return;
                }
                ModemGnss::Fix
            }
            Ok(None) if enabled_on.is_some() => ModemGnss::NoFix,
            Ok(None) => ModemGnss::NoReceiver,
            Err(e) => {
                if matches!(e, MmError::BusUnreachable { .. } | MmError::Bus(_)) {
                    mm = None;
                }
                enabled_on = None;
                ModemGnss::Failed(e.to_string())
            }
        };
        if reported.as_ref() != Some(&now) {
            match &now {
                ModemGnss::Fix => tracing::info!("location: the modem's GNSS has a fix"),
                ModemGnss::NoFix => tracing::info!("location: the modem's GNSS has no fix"),
                ModemGnss::NoReceiver => {
                    tracing::warn!("location: the modem has no GNSS receiver")
                }
                ModemGnss::Failed(e) => tracing::warn!("location: {e}"),
            }
            reported = Some(now);
        }
    }
}

/// The modem's fix; `Ok(None)` with `enabled_on` unset: the modem has no receiver.
async fn modem_fix(
    address: &str,
    mm: &mut Option<ModemManager>,
    enabled_on: &mut Option<OwnedObjectPath>,
) -> Result<Option<Fix>, MmError> {
    let manager = match mm {
        Some(m) => m,
        None => mm.insert(ModemManager::connect(address).await?),
    };
    let modem = manager.first_modem().await?;
    if enabled_on.as_ref() != Some(&modem) {
        *enabled_on = None;
        if !manager.enable_gnss(&modem).await? {
            return Ok(None);
        }
        tracing::info!(modem = %modem.as_str(), "location: GNSS enabled");
        *enabled_on = Some(modem.clone());
    }
    manager.gnss_fix(&modem).await
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
