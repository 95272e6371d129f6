//! The connectivity task: looks at the uplink through the configured backend, feeds
//! objects 4 and 7 (and 10, 11 with a modem), and carries out their actions.
//!
//! Only changed values are fed, so an idle link costs the engine nothing. Failures are
//! logged once per change of state, and the task keeps trying on its own schedule.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use backends::modem::{ConnectivitySnapshot, Counters};
use tokio::sync::mpsc;

use crate::config::{ConnectivityBackend, ConnectivityConfig};
use crate::feed::{Feed, FeedSender};
use crate::model::ConnectivityAction;
use crate::modem::ModemSource;
use crate::objects::cellular;
use crate::objects::connectivity::{self as monitoring, LINK_UTILIZATION};
use crate::objects::statistics::{self, Collection};
use crate::path::Path;
use crate::state::StateDir;
use crate::tasks::at_modem::{AtLook, AtSource};
use crate::tasks::location::Fixes;
use crate::value::ResourceValue;

/// Actions queued for the task; more than this waiting means the task is stuck, and a
/// server's further Start/Stop are dropped with a warning rather than piling up.
pub const ACTION_CAPACITY: usize = 16;

/// During a collection the state file is rewritten at most this often (and at every
/// Start, Stop and period change): a reboot loses at most this much of the count, while a
/// daemon restart loses nothing because the kernel's counters go on.
const PERSIST_EVERY: Duration = Duration::from_secs(300);

pub type ActionSender = mpsc::Sender<ConnectivityAction>;

/// Starts the task; the returned sender takes the actions of objects 7, 10 and 11.
pub fn spawn(
    config: ConnectivityConfig,
    state: StateDir,
    clock: fn() -> i64,
    feed: FeedSender,
    at_gnss: bool,
) -> ActionSender {
    let (tx, rx) = mpsc::channel(ACTION_CAPACITY);
    let collection = load_collection(&state);
    let task = Task {
        config,
        state,
        clock,
        feed,
        fed: FeedCache::default(),
        collection,
        persisted_at: None,
        last_counters: None,
        last_error: None,
        at_gnss,
        fixes: Fixes::default(),
    };
    tokio::spawn(task.run(rx));
    tx
}

fn load_collection(state: &StateDir) -> Collection {
    match state.read(statistics::STATE_FILE) {
        Ok(Some(data)) => Collection::from_json(&data).unwrap_or_else(|| {
            tracing::warn!(
                "{}: unreadable, statistics start afresh",
                state.path(statistics::STATE_FILE).display()
            );
            Collection::default()
        }),
        Ok(None) => Collection::default(),
        Err(e) => {
            tracing::warn!("reading {}: {e}", statistics::STATE_FILE);
            Collection::default()
        }
    }
}

struct Task {
    config: ConnectivityConfig,
    state: StateDir,
    clock: fn() -> i64,
    feed: FeedSender,
    /// What each fed resource was last set to (`None`: absent).
    fed: FeedCache,
    collection: Collection,
    persisted_at: Option<Instant>,
    /// The previous counters, for the link utilisation.
    last_counters: Option<(Instant, Counters)>,
    last_error: Option<String>,
    /// The AT backend also reads the module's GNSS for object 6.
    at_gnss: bool,
    fixes: Fixes,
}

impl Task {
    async fn run(mut self, mut actions: mpsc::Receiver<ConnectivityAction>) {
        let interval = Duration::from_secs(self.config.interval.into());
        let mut modem = match self.config.backend {
            ConnectivityBackend::Modemmanager => Some(ModemSource::start(
                self.config.interval,
                self.clock,
                self.feed.clone(),
                crate::objects::apn::enabled_profile(&self.state).unwrap_or(0),
            )),
            ConnectivityBackend::Host | ConnectivityBackend::At => None,
        };
        let mut at = match self.config.backend {
            ConnectivityBackend::At => AtSource::start(
                self.config.at_port(),
                self.config.at_baud(),
                self.config.interval,
                self.at_gnss,
                crate::objects::apn::enabled_profile(&self.state),
            ),
            ConnectivityBackend::Host | ConnectivityBackend::Modemmanager => None,
        };
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // The figures of a collection that survived a restart.
        self.feed_statistics().await;
        loop {
            tokio::select! {
                _ = tick.tick(), if modem.is_none() && at.is_none() => {
                    let snapshot = self.look_at_host();
                    self.update(snapshot).await;
                }
                Some(mut snapshot) = next_snapshot(&mut modem) => {
                    if let Some(counters) = self.configured_counters() {
                        snapshot.counters = counters;
                    }
                    self.update(snapshot).await
                }
                Some(mut look) = next_at_snapshot(&mut at) => {
                    // An AT modem reports no traffic: object 7 counts the interface.
                    if let Some(counters) = self.configured_counters() {
                        look.snapshot.counters = counters;
                    }
                    self.update(look.snapshot).await;
                    for (resource, value) in cellular::power_saving_values(look.power_saving.as_ref()) {
                        self.set(Path::resource(cellular::OBJECT_ID, 0, resource), value)
                            .await;
                    }
                    if let Some(attempt) = &look.connection {
                        for (path, value) in crate::tasks::at_modem::attempt_values(attempt) {
                            self.set(path, value).await;
                        }
                    }
                    // Without a fix the last one stays, with its Timestamp.
                    if let Some(fix) = look.fix.filter(|_| self.at_gnss) {
                        let position = crate::tasks::location::from_fix(&fix, (self.clock)());
                        let _ = self.fixes.offer(&self.feed, position).await;
                    }
                }
                action = actions.recv() => match action {
                    Some(ConnectivityAction::PowerSaving(change)) => match &at {
                        Some(a) => a.act(change),
                        None => tracing::warn!(?change, "power saving needs connectivity.backend = \"at\""),
                    },
                    Some(action @ (ConnectivityAction::Connect { .. } | ConnectivityAction::Disconnect { .. }))
                        if at.is_some() =>
                    {
                        if let Some(a) = at.as_mut() {
                            a.connect(action, (self.clock)());
                        }
                    }
                    Some(action) => self.act(action, modem.as_mut()).await,
                    None => return,
                },
            }
        }
    }

    fn look_at_host(&mut self) -> ConnectivitySnapshot {
        match backends::host::connectivity(self.config.interface.as_deref()) {
            Ok(mut s) => {
                self.recovered();
                s.link_utilization = self.utilization(&s);
                s
            }
            Err(e) => {
                self.failed(e.to_string());
                ConnectivitySnapshot::default()
            }
        }
    }

    /// The busier direction's share of the link speed since the previous look.
    fn utilization(&mut self, s: &ConnectivitySnapshot) -> Option<u8> {
        let now = Instant::now();
        let counters = s.counters?;
        let previous = self.last_counters.replace((now, counters));
        let (then, before) = previous?;
        let name = s.interface.as_deref()?;
        let mbps = backends::host::link_speed_mbps(std::path::Path::new("/"), name)?;
        let seconds = now.duration_since(then).as_secs_f64();
        if seconds <= 0.0 {
            return None;
        }
        let tx = counters.tx_bytes.checked_sub(before.tx_bytes)?;
        let rx = counters.rx_bytes.checked_sub(before.rx_bytes)?;
        let bits = tx.max(rx) as f64 * 8.0;
        let percent = bits / (mbps as f64 * 1e6 * seconds) * 100.0;
        Some(percent.clamp(0.0, 100.0).round() as u8)
    }

    fn failed(&mut self, error: String) {
        if self.last_error.as_deref() != Some(error.as_str()) {
            tracing::warn!("connectivity: {error}");
            self.last_error = Some(error);
        }
    }

    fn recovered(&mut self) {
        if let Some(e) = self.last_error.take() {
            tracing::info!("connectivity: the uplink is back (was: {e})");
        }
    }

    async fn update(&mut self, snapshot: ConnectivitySnapshot) {
        for (resource, value) in monitoring::values(&snapshot) {
            if resource == LINK_UTILIZATION && value.is_none() && snapshot.counters.is_some() {
                // Unknown between two looks is not news: keep the last figure.
                continue;
            }
            self.set(Path::resource(monitoring::OBJECT_ID, 0, resource), value)
                .await;
        }
        if let Some(counters) = snapshot.counters {
            let was_collecting = self.collection.collecting;
            self.collection.sample((self.clock)(), counters);
            let due = self
                .persisted_at
                .is_none_or(|t| t.elapsed() >= PERSIST_EVERY);
            if self.collection.collecting && due || was_collecting != self.collection.collecting {
                self.persist();
            }
            self.feed_statistics().await;
        }
    }

    async fn feed_statistics(&mut self) {
        for (resource, value) in self.collection.values() {
            self.set(Path::resource(statistics::OBJECT_ID, 0, resource), value)
                .await;
        }
    }

    async fn act(&mut self, action: ConnectivityAction, modem: Option<&mut ModemSource>) {
        let now = (self.clock)();
        match action {
            ConnectivityAction::StartStatistics => {
                let counters = self.fresh_counters(modem.as_deref()).await;
                if counters.is_none() {
                    tracing::warn!("statistics started without interface counters");
                }
                self.collection.start(now, counters);
                self.persist();
                // The object zeroed its figures itself; make the cache agree.
                for (resource, _) in self.collection.values() {
                    self.fed
                        .forget(&Path::resource(statistics::OBJECT_ID, 0, resource));
                }
                self.feed_statistics().await;
            }
            ConnectivityAction::StopStatistics => {
                let counters = self.fresh_counters(modem.as_deref()).await;
                self.collection.stop(now, counters);
                self.persist();
                self.feed_statistics().await;
            }
            ConnectivityAction::CollectionPeriod(period) => {
                self.collection.period = period;
                self.persist();
            }
            // Taken to the AT modem by the loop, which holds it.
            ConnectivityAction::PowerSaving(_) => {}
            other
            @ (ConnectivityAction::Connect { .. } | ConnectivityAction::Disconnect { .. }) => {
                match modem {
                    Some(m) => m.act(other),
                    None => tracing::warn!(
                        ?other,
                        "APN profiles need a modem backend (connectivity.backend)"
                    ),
                }
            }
        }
    }

    async fn fresh_counters(&mut self, modem: Option<&ModemSource>) -> Option<Counters> {
        match modem {
            Some(m) => self.configured_counters().unwrap_or_else(|| m.counters()),
            None => self.look_at_host().counters,
        }
    }

    /// With a modem backend, the counters of the configured interface rather than the
    /// bearer's (`None`: no interface configured).
    fn configured_counters(&self) -> Option<Option<Counters>> {
        let name = self.config.interface.as_deref()?;
        Some(
            backends::host::interface_facts(std::path::Path::new("/"), name)
                .ok()
                .and_then(|facts| facts.counters),
        )
    }

    fn persist(&mut self) {
        self.persisted_at = Some(Instant::now());
        if let Err(e) = self
            .state
            .write(statistics::STATE_FILE, &self.collection.to_json())
        {
            tracing::warn!(
                "writing {}: {e}",
                self.state.path(statistics::STATE_FILE).display()
            );
        }
    }

    async fn set(&mut self, path: Path, value: Option<ResourceValue>) {
        self.fed.set(&self.feed, path, value).await;
    }
}

/// What was last fed for each resource, so that only changes go to the engine.
#[derive(Default)]
pub struct FeedCache {
    /// `None`: made absent.
    fed: HashMap<Path, Option<ResourceValue>>,
}

impl FeedCache {
    pub async fn set(&mut self, feed: &FeedSender, path: Path, value: Option<ResourceValue>) {
        match self.fed.get(&path) {
            Some(v) if *v == value => return,
            // Never fed and absent: nothing to clear.
            None if value.is_none() => {
                self.fed.insert(path, value);
                return;
            }
            _ => {}
        }
        let report = match &value {
            Some(v) => Feed::Value(path, v.clone()),
            None => Feed::Absent(path),
        };
        if feed.send(report).await.is_ok() {
            self.fed.insert(path, value);
        }
    }

    /// Forgets a value the object changed by itself.
    pub fn forget(&mut self, path: &Path) {
        self.fed.remove(path);
    }
}

async fn next_snapshot(modem: &mut Option<ModemSource>) -> Option<ConnectivitySnapshot> {
    match modem {
        Some(m) => m.next().await,
        None => std::future::pending().await,
    }
}

async fn next_at_snapshot(at: &mut Option<AtSource>) -> Option<AtLook> {
    match at {
        Some(a) => a.next().await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::Value;

    #[tokio::test]
    async fn only_changes_are_fed() {
        let (tx, mut rx) = crate::feed::channel();
        let mut cache = FeedCache::default();
        let path = Path::resource(4, 0, 2);
        let v = |n| Some(ResourceValue::Single(Value::Integer(n)));

        // Absent from the start: nothing to clear.
        cache.set(&tx, path, None).await;
        assert!(rx.try_recv().is_err());
        cache.set(&tx, path, v(-95)).await;
        cache.set(&tx, path, v(-95)).await;
        assert_eq!(rx.try_recv(), Ok(Feed::Value(path, v(-95).unwrap())));
        assert!(rx.try_recv().is_err());
        cache.set(&tx, path, None).await;
        cache.set(&tx, path, None).await;
        assert_eq!(rx.try_recv(), Ok(Feed::Absent(path)));
        assert!(rx.try_recv().is_err());
        // Changed behind the cache's back (a server's write): fed again.
        cache.set(&tx, path, v(-90)).await;
        cache.forget(&path);
        cache.set(&tx, path, v(-90)).await;
        assert_eq!(rx.try_recv(), Ok(Feed::Value(path, v(-90).unwrap())));
        assert_eq!(rx.try_recv(), Ok(Feed::Value(path, v(-90).unwrap())));
    }
}
