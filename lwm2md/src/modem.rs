//! The modem behind the connectivity task: a task of its own that follows ModemManager
//! on the system bus, hands snapshots of the first modem to the connectivity task, keeps
//! objects 10 and 11 up to date and carries out APN changes with Simple.Connect.
//!
//! ModemManager may be absent, restart, or lose its modem: the task says so once, reports
//! the figures as absent, and picks up again by itself.

use std::collections::BTreeMap;
use std::path::Path as FsPath;
use std::time::Duration;

use backends::modem::mm::{MmError, ModemEvent, ModemManager};
use backends::modem::{ConnectivitySnapshot, Counters, DataConnection};
use tokio::sync::mpsc;
use zbus::zvariant::OwnedObjectPath;

use crate::connectivity::FeedCache;
use crate::feed::FeedSender;
use crate::model::ConnectivityAction;
use crate::objects::{apn, cellular};
use crate::path::Path;
use crate::value::{ResourceValue, Value};

/// The wait before connecting to the bus again, doubling up to the maximum.
const RETRY_FIRST: Duration = Duration::from_secs(1);
const RETRY_MAX: Duration = Duration::from_secs(60);

pub struct ModemSource {
    snapshots: mpsc::Receiver<ConnectivitySnapshot>,
    commands: mpsc::Sender<ConnectivityAction>,
    latest: Option<ConnectivitySnapshot>,
}

impl ModemSource {
    /// `active_profile`: the object 11 instance the modem's data connection belongs to
    /// when the daemon starts.
    pub fn start(
        interval: u32,
        clock: fn() -> i64,
        feed: FeedSender,
        active_profile: u16,
    ) -> ModemSource {
        let (snap_tx, snapshots) = mpsc::channel(4);
        let (commands, cmd_rx) = mpsc::channel(16);
        let address = backends::system::SystemBus::from_env().address().to_owned();
        let task = Watcher {
            address,
            interval: interval.max(1),
            clock,
            feed,
            fed: FeedCache::default(),
            snapshots: snap_tx,
            active_profile,
            last_error: None,
        };
        tokio::spawn(task.run(cmd_rx));
        ModemSource {
            snapshots,
            commands,
            latest: None,
        }
    }

    /// The next snapshot of the modem.
    pub async fn next(&mut self) -> Option<ConnectivitySnapshot> {
        let s = self.snapshots.recv().await?;
        self.latest = Some(s.clone());
        Some(s)
    }

    pub fn counters(&self) -> Option<Counters> {
        self.latest.as_ref()?.counters
    }

    pub fn act(&mut self, action: ConnectivityAction) {
        if let Err(e) = self.commands.try_send(action) {
            tracing::warn!("modem action dropped: {e}");
        }
    }
}

struct Watcher {
    address: String,
    interval: u32,
    clock: fn() -> i64,
    feed: FeedSender,
    fed: FeedCache,
    snapshots: mpsc::Sender<ConnectivitySnapshot>,
    /// The object 11 instance of the modem's data connection.
    active_profile: u16,
    last_error: Option<String>,
}

impl Watcher {
    async fn run(mut self, mut commands: mpsc::Receiver<ConnectivityAction>) {
        let mut delay = RETRY_FIRST;
        loop {
            let (mm, mut watch) = match self.connect().await {
                Ok(pair) => pair,
                Err(e) => {
                    self.failed(&e);
                    if !self.publish(ConnectivitySnapshot::default()).await {
                        return;
                    }
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(RETRY_MAX);
                    continue;
                }
            };
            delay = RETRY_FIRST;
            let mut tick = tokio::time::interval(Duration::from_secs(self.interval.into()));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut modem: Option<OwnedObjectPath> = None;
            let mut relist = true;
            loop {
                if relist {
                    relist = false;
                    modem = self.find_modem(&mm).await;
                }
                let snapshot = match &modem {
                    Some(m) => match mm.snapshot(m, FsPath::new("/")).await {
                        Ok(s) => {
                            self.recovered();
                            s
                        }
                        Err(e) => {
                            self.failed(&e);
                            relist = true;
                            ConnectivitySnapshot::default()
                        }
                    },
                    None => ConnectivitySnapshot::default(),
                };
                self.feed_profiles(&snapshot).await;
                if !self.publish(snapshot).await {
                    return;
                }
                tokio::select! {
                    _ = tick.tick() => {}
                    event = watch.next() => match event {
                        // The bus connection is gone: connect again.
                        None => break,
                        Some(ModemEvent::ManagerStopped) => {
                            self.failed(&MmError::NotRunning);
                            modem = None;
                        }
                        Some(_) => relist = true,
                    },
                    command = commands.recv() => match command {
                        None => return,
                        Some(c) => {
                            // A Write of a whole profile asks several times: the last counts.
                            let mut c = c;
                            while let Ok(next) = commands.try_recv() {
                                c = next;
                            }
                            self.act(&mm, modem.as_ref(), c).await;
                        }
                    },
                }
            }
        }
    }

    async fn connect(&self) -> Result<(ModemManager, backends::modem::mm::ModemWatch), MmError> {
        let mm = ModemManager::connect(&self.address).await?;
        let watch = mm.watch().await?;
        Ok((mm, watch))
    }

    async fn find_modem(&mut self, mm: &ModemManager) -> Option<OwnedObjectPath> {
        match mm.first_modem().await {
            Ok(m) => {
                tracing::info!(modem = %m.as_str(), "ModemManager modem");
                if let Err(e) = mm.setup_signal(&m, self.interval).await {
                    // Modems without extended signal figures still report the rest.
                    tracing::info!(modem = %m.as_str(), "no extended signal figures: {e}");
                }
                Some(m)
            }
            Err(e) => {
                self.failed(&e);
                None
            }
        }
    }

    async fn publish(&mut self, snapshot: ConnectivitySnapshot) -> bool {
        self.snapshots.send(snapshot).await.is_ok()
    }

    fn failed(&mut self, e: &MmError) {
        let text = e.to_string();
        if self.last_error.as_deref() != Some(text.as_str()) {
            tracing::warn!("modem: {text}");
            self.last_error = Some(text);
        }
    }

    fn recovered(&mut self) {
        if let Some(e) = self.last_error.take() {
            tracing::info!("modem: back (was: {e})");
        }
    }

    async fn set(
        &mut self,
        object: u16,
        instance: u16,
        resource: u16,
        value: Option<ResourceValue>,
    ) {
        let path = Path::resource(object, instance, resource);
        self.fed.set(&self.feed, path, value).await;
    }

    /// Objects 10 and 11 from the modem's active data connection.
    async fn feed_profiles(&mut self, snapshot: &ConnectivitySnapshot) {
        let active = snapshot.data_connections.iter().find(|c| c.connected);
        let link = active.map(|_| {
            ResourceValue::Multiple(BTreeMap::from([(
                0,
                Value::ObjLnk(apn::OBJECT_ID, self.active_profile),
            )]))
        });
        self.set(
            cellular::OBJECT_ID,
            0,
            cellular::ACTIVATED_PROFILE_NAMES,
            link,
        )
        .await;
        let Some(c) = active.cloned() else {
            return;
        };
        self.feed_connection(self.active_profile, &c).await;
    }

    async fn feed_connection(&mut self, profile: u16, c: &DataConnection) {
        let single = |v: Value| Some(ResourceValue::Single(v));
        let string = |s: String| single(Value::String(s));
        let list = |items: Vec<String>| {
            (!items.is_empty()).then(|| {
                ResourceValue::Multiple(
                    (0u16..).zip(items.into_iter().map(Value::String)).collect(),
                )
            })
        };
        let p = apn::OBJECT_ID;
        if profile == 0 {
            // The profile of the connection the modem came up with.
            self.set(p, 0, apn::PROFILE_NAME, string("modem".into()))
                .await;
        }
        self.set(p, profile, apn::APN, string(c.apn.clone())).await;
        self.set(p, profile, apn::ENABLE_STATUS, single(Value::Boolean(true)))
            .await;
        let auth = c.auth.map(|a| Value::Integer(apn::auth_code(a)));
        self.set(p, profile, apn::AUTHENTICATION_TYPE, auth.and_then(single))
            .await;
        self.set(p, profile, apn::USER_NAME, c.user.clone().and_then(string))
            .await;
        let count =
            |n: Option<u64>| n.map(|n| Value::Integer(i64::try_from(n).unwrap_or(i64::MAX)));
        self.set(
            p,
            profile,
            apn::TOTAL_BYTES_SENT,
            count(c.tx_bytes).and_then(single),
        )
        .await;
        self.set(
            p,
            profile,
            apn::TOTAL_BYTES_RECEIVED,
            count(c.rx_bytes).and_then(single),
        )
        .await;
        let ips = c.ip_addresses.iter().map(ToString::to_string).collect();
        self.set(p, profile, apn::IP_ADDRESS, list(ips)).await;
        let gateway = c.gateway.iter().map(ToString::to_string).collect();
        self.set(p, profile, apn::GATEWAY, list(gateway)).await;
        let dns = |n: usize| {
            c.dns
                .get(n)
                .map(|a| vec![a.to_string()])
                .unwrap_or_default()
        };
        self.set(p, profile, apn::PRIMARY_DNS, list(dns(0))).await;
        self.set(p, profile, apn::SECONDARY_DNS, list(dns(1))).await;
    }

    async fn act(
        &mut self,
        mm: &ModemManager,
        modem: Option<&OwnedObjectPath>,
        action: ConnectivityAction,
    ) {
        let Some(modem) = modem else {
            tracing::warn!(?action, "no modem to apply it to");
            return;
        };
        match action {
            ConnectivityAction::Connect { profile, settings } => {
                // The server's write changed these behind the cache: what the modem
                // really uses is fed again from the next snapshot.
                for r in [
                    apn::APN,
                    apn::AUTHENTICATION_TYPE,
                    apn::USER_NAME,
                    apn::ENABLE_STATUS,
                ] {
                    self.fed.forget(&Path::resource(apn::OBJECT_ID, profile, r));
                }
                let requested_at = (self.clock)();
                tracing::info!(profile, apn = %settings.apn, "connecting");
                let result = mm.connect_data(modem, &settings).await;
                let p = apn::OBJECT_ID;
                let at = |v: Value| Some(ResourceValue::Multiple(BTreeMap::from([(0, v)])));
                self.set(
                    p,
                    profile,
                    apn::ESTABLISHMENT_TIME,
                    at(Value::Time(requested_at)),
                )
                .await;
                match result {
                    Ok(_) => {
                        tracing::info!(profile, "connected");
                        self.set(p, profile, apn::ESTABLISHMENT_RESULT, at(Value::Integer(0)))
                            .await;
                        self.set(p, profile, apn::REJECT_CAUSE, None).await;
                        if profile != self.active_profile {
                            let old = self.active_profile;
                            self.set(
                                p,
                                old,
                                apn::ENABLE_STATUS,
                                Some(ResourceValue::Single(Value::Boolean(false))),
                            )
                            .await;
                            self.active_profile = profile;
                        }
                    }
                    Err(e) => {
                        tracing::warn!(profile, "connection refused: {e}");
                        self.set(p, profile, apn::ESTABLISHMENT_RESULT, at(Value::Integer(1)))
                            .await;
                        let cause = reject_cause(&e)
                            .map(|c| at(Value::Integer(c)))
                            .unwrap_or(None);
                        self.set(p, profile, apn::REJECT_CAUSE, cause).await;
                    }
                }
            }
            ConnectivityAction::Disconnect { profile } => {
                if profile != self.active_profile {
                    return;
                }
                tracing::info!(profile, "disconnecting");
                // Simple.Disconnect of "/" ends every data connection of the modem.
                let all = zbus::zvariant::ObjectPath::from_static_str_unchecked("/");
                if let Err(e) = mm.disconnect_data(modem, &all).await {
                    tracing::warn!(profile, "disconnect: {e}");
                }
            }
            other => tracing::debug!(?other, "not for the modem"),
        }
    }
}

/// The 3GPP TS 24.008 session management cause behind ModemManager's error, where its
/// name tells it (27.007 +CME ERROR 132..134 are causes 32..34, and so on).
fn reject_cause(e: &MmError) -> Option<i64> {
    let MmError::Call { name, .. } = e else {
        return None;
    };
    let short = name.rsplit('.').next()?;
    Some(match short {
        "GprsMissingOrUnknownApn" => 27,
        "GprsUnknownPdpAddressOrType" => 28,
        "GprsUserAuthenticationFailed" => 29,
        "GprsActivationRejectedByGgsnOrGw" => 30,
        "GprsActivationRejectedUnspecified" => 31,
        "GprsServiceOptionNotSupported" => 32,
        "GprsServiceOptionNotSubscribed" => 33,
        "GprsServiceOptionOutOfOrder" => 34,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reject_causes_from_error_names() {
        let call = |name: &str| MmError::Call {
            name: name.into(),
            message: String::new(),
        };
        assert_eq!(
            reject_cause(&call(
                "org.freedesktop.ModemManager1.Error.MobileEquipment.GprsServiceOptionNotSubscribed"
            )),
            Some(33)
        );
        assert_eq!(
            reject_cause(&call(
                "org.freedesktop.ModemManager1.Error.MobileEquipment.GprsMissingOrUnknownApn"
            )),
            Some(27)
        );
        assert_eq!(
            reject_cause(&call("org.freedesktop.ModemManager1.Error.Core.Failed")),
            None
        );
        assert_eq!(reject_cause(&MmError::NoModem), None);
    }
}
