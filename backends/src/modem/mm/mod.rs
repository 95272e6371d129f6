//! ModemManager over the system bus: the first modem it manages, as a
//! [`ConnectivitySnapshot`], and data connections through Simple.Connect.
//!
//! Polkit decides what the daemon's user may do: Simple.Connect and Signal.Setup need
//! `org.freedesktop.ModemManager1.Device.Control`, reading the 3GPP location needs
//! `org.freedesktop.ModemManager1.Location`.

mod parse;
mod proxies;

use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;
use std::path::Path;
use std::time::Duration;

use futures_util::StreamExt;
use zbus::zvariant::{ObjectPath, OwnedObjectPath, OwnedValue, Value};
use zbus::Connection;

use super::{ApnAuth, ApnSettings, ConnectivitySnapshot, Counters, DataConnection, Radio};
use crate::location::{nmea, Fix};
pub use parse::{bearer_of, location_3gpp, operator_code, Location3gpp};
use proxies::{BearerProxy, LocationProxy, Modem3gppProxy, ModemProxy, SignalProxy, SimpleProxy};

pub const SERVICE: &str = "org.freedesktop.ModemManager1";
const MANAGER_PATH: &str = "/org/freedesktop/ModemManager1";
const MODEM_INTERFACE: &str = "org.freedesktop.ModemManager1.Modem";

/// MMModemLocationSource 3GPP_LAC_CI.
const LOCATION_3GPP: u32 = 1;
/// MMModemLocationSource GPS_RAW and GPS_NMEA: the modem's own GNSS receiver.
const LOCATION_GPS_RAW: u32 = 1 << 1;
const LOCATION_GPS_NMEA: u32 = 1 << 2;
/// MMBearerAllowedAuth bits.
const AUTH_NONE: u32 = 1 << 0;
const AUTH_PAP: u32 = 1 << 1;
const AUTH_CHAP: u32 = 1 << 2;

/// A Simple.Connect waits for registration and the bearer; ModemManager itself gives up
/// after about a minute.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(120);

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MmError {
    /// No connection to the bus.
    BusUnreachable { address: String, reason: String },
    /// ModemManager is not running (its name has no owner).
    NotRunning,
    /// ModemManager manages no modem.
    NoModem,
    /// A call was answered with a D-Bus error, such as
    /// `org.freedesktop.ModemManager1.Error.MobileEquipment.GprsServiceOptionNotSubscribed`.
    Call { name: String, message: String },
    /// The connection broke or a reply did not have the documented type.
    Bus(String),
}

impl fmt::Display for MmError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BusUnreachable { address, reason } => {
                write!(f, "system bus at {address} unreachable: {reason}")
            }
            Self::NotRunning => f.write_str("ModemManager is not running"),
            Self::NoModem => f.write_str("ModemManager has no modem"),
            Self::Call { name, message } => write!(f, "{name}: {message}"),
            Self::Bus(reason) => write!(f, "ModemManager: {reason}"),
        }
    }
}

impl std::error::Error for MmError {}

impl From<zbus::fdo::Error> for MmError {
    fn from(e: zbus::fdo::Error) -> Self {
        MmError::from(zbus::Error::FDO(Box::new(e)))
    }
}

impl From<zbus::Error> for MmError {
    fn from(e: zbus::Error) -> Self {
        use zbus::DBusError;
        match e {
            zbus::Error::MethodError(name, message, _) => {
                if name.as_str() == "org.freedesktop.DBus.Error.ServiceUnknown"
                    || name.as_str() == "org.freedesktop.DBus.Error.NameHasNoOwner"
                {
                    return Self::NotRunning;
                }
                Self::Call {
                    name: name.to_string(),
                    message: message.unwrap_or_default(),
                }
            }
            zbus::Error::FDO(fdo) => match *fdo {
                zbus::fdo::Error::ServiceUnknown(_) | zbus::fdo::Error::NameHasNoOwner(_) => {
                    Self::NotRunning
                }
                other => Self::Call {
                    name: other.name().to_string(),
                    message: other.description().unwrap_or_default().to_owned(),
                },
            },
            other => Self::Bus(other.to_string()),
        }
    }
}

/// What changed on the bus.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModemEvent {
    /// A modem appeared or gained interfaces (ModemManager finished probing it).
    Added(String),
    /// A modem disappeared or lost interfaces.
    Removed(String),
    /// ModemManager started (or restarted) on the bus.
    ManagerStarted,
    /// ModemManager left the bus.
    ManagerStopped,
}

/// A connection to ModemManager.
#[derive(Clone)]
pub struct ModemManager {
    connection: Connection,
}

impl ModemManager {
    /// Connects to the bus at `address` (the system bus, normally).
    pub async fn connect(address: &str) -> Result<ModemManager, MmError> {
        let unreachable = |e: zbus::Error| MmError::BusUnreachable {
            address: address.to_owned(),
            reason: e.to_string(),
        };
        let connection = zbus::connection::Builder::address(address)
            .map_err(unreachable)?
            .method_timeout(CONNECT_TIMEOUT)
            .build()
            .await
            .map_err(unreachable)?;
        Ok(ModemManager { connection })
    }

    /// The modems' object paths, in ModemManager's order.
    pub async fn modems(&self) -> Result<Vec<OwnedObjectPath>, MmError> {
        let manager = zbus::fdo::ObjectManagerProxy::builder(&self.connection)
            .destination(SERVICE)?
            .path(MANAGER_PATH)?
            .build()
            .await?;
        let objects = manager.get_managed_objects().await?;
        let mut modems: Vec<OwnedObjectPath> = objects
            .into_iter()
            .filter(|(_, interfaces)| interfaces.keys().any(|i| i.as_str() == MODEM_INTERFACE))
            .map(|(path, _)| path)
            .collect();
        modems.sort_by(|a, b| a.as_str().cmp(b.as_str()));
        Ok(modems)
    }

    /// The first modem, or [`MmError::NoModem`].
    pub async fn first_modem(&self) -> Result<OwnedObjectPath, MmError> {
        self.modems()
            .await?
            .into_iter()
            .next()
            .ok_or(MmError::NoModem)
    }

    /// Turns on the GNSS sources of `modem` that are off. `false`: the modem has no GNSS
    /// receiver (its Location capabilities name neither raw nor NMEA positions).
    pub async fn enable_gnss(&self, modem: &ObjectPath<'_>) -> Result<bool, MmError> {
        let location = self.location(modem).await?;
        let gnss = location.capabilities().await? & (LOCATION_GPS_RAW | LOCATION_GPS_NMEA);
        if gnss == 0 {
            return Ok(false);
        }
        let enabled = location.enabled().await?;
        if enabled & gnss != gnss {
            // Setup replaces the whole set: keep what others enabled, and their signals.
            let signals = location.signals_location().await.unwrap_or(false);
            location.setup(enabled | gnss, signals).await?;
        }
        Ok(true)
    }

    /// The modem's GNSS fix: from its NMEA sentences when they hold one (they carry
    /// speed, course and date), else from its raw position; `None` without a fix.
    pub async fn gnss_fix(&self, modem: &ObjectPath<'_>) -> Result<Option<Fix>, MmError> {
        let sources = self.location(modem).await?.get_location().await?;
        let from_nmea = sources
            .get(&LOCATION_GPS_NMEA)
            .and_then(string_of)
            .and_then(|text| nmea::fix(&text));
        if from_nmea.is_some() {
            return Ok(from_nmea);
        }
        let Some(raw) = sources.get(&LOCATION_GPS_RAW) else {
            return Ok(None);
        };
        let Value::Dict(dict) = &**raw else {
            return Ok(None);
        };
        let fields: HashMap<String, OwnedValue> = dict
            .iter()
            .filter_map(|(k, v)| {
                let Value::Str(k) = k else { return None };
                let v = match v {
                    Value::Value(inner) => OwnedValue::try_from(&**inner).ok()?,
                    other => OwnedValue::try_from(other).ok()?,
                };
                Some((k.to_string(), v))
            })
            .collect();
        let number = |k: &str| fields.get(k).and_then(f64_of);
        Ok(parse::gps_raw(
            number("latitude"),
            number("longitude"),
            number("altitude"),
        ))
    }

    async fn location(&self, modem: &ObjectPath<'_>) -> Result<LocationProxy<'static>, MmError> {
        Ok(LocationProxy::builder(&self.connection)
            .path(modem.to_owned())?
            .cache_properties(zbus::proxy::CacheProperties::No)
            .build()
            .await?)
    }

    /// Asks the modem to refresh its extended signal figures every `rate` seconds.
    pub async fn setup_signal(&self, modem: &ObjectPath<'_>, rate: u32) -> Result<(), MmError> {
        let signal = SignalProxy::builder(&self.connection)
            .path(modem.to_owned())?
            .cache_properties(zbus::proxy::CacheProperties::No)
            .build()
            .await?;
        signal.setup(rate).await?;
        Ok(())
    }

    /// Makes a data connection with `settings` (Simple.Connect), returning the bearer.
    pub async fn connect_data(
        &self,
        modem: &ObjectPath<'_>,
        settings: &ApnSettings,
    ) -> Result<OwnedObjectPath, MmError> {
        let simple = SimpleProxy::builder(&self.connection)
            .path(modem.to_owned())?
            .build()
            .await?;
        let mut properties: HashMap<&str, Value<'_>> = HashMap::new();
        properties.insert("apn", Value::from(settings.apn.as_str()));
        let auth = match settings.auth {
            ApnAuth::Pap => AUTH_PAP,
            ApnAuth::Chap => AUTH_CHAP,
            ApnAuth::PapOrChap => AUTH_PAP | AUTH_CHAP,
            ApnAuth::None => AUTH_NONE,
        };
        properties.insert("allowed-auth", Value::from(auth));
        if let Some(user) = &settings.user {
            properties.insert("user", Value::from(user.as_str()));
        }
        if let Some(password) = &settings.password {
            properties.insert("password", Value::from(password.as_str()));
        }
        Ok(simple.connect(properties).await?)
    }

    /// Ends the data connection of `bearer`.
    pub async fn disconnect_data(
        &self,
        modem: &ObjectPath<'_>,
        bearer: &ObjectPath<'_>,
    ) -> Result<(), MmError> {
        let simple = SimpleProxy::builder(&self.connection)
            .path(modem.to_owned())?
            .build()
            .await?;
        simple.disconnect(bearer).await?;
        Ok(())
    }

    /// Everything known of `modem`. Interfaces the modem lacks (Signal, Location on
    /// simple modems) leave their fields empty; `root` is where the bearer's network
    /// interface is looked up for the kernel's counters.
    pub async fn snapshot(
        &self,
        modem: &ObjectPath<'_>,
        root: &Path,
    ) -> Result<ConnectivitySnapshot, MmError> {
        let m = ModemProxy::builder(&self.connection)
            .path(modem.to_owned())?
            .cache_properties(zbus::proxy::CacheProperties::No)
            .build()
            .await?;
        let technologies = m.access_technologies().await?;
        let bearer = bearer_of(technologies);
        let mut snapshot = ConnectivitySnapshot {
            bearer,
            available_bearers: parse::bearers_of(technologies),
            ..ConnectivitySnapshot::default()
        };

        let gpp = Modem3gppProxy::builder(&self.connection)
            .path(modem.to_owned())?
            .cache_properties(zbus::proxy::CacheProperties::No)
            .build()
            .await?;
        let mut radio = Radio::default();
        if let Ok(code) = gpp.operator_code().await {
            if let Some((mcc, mnc)) = operator_code(&code) {
                radio.mcc = Some(mcc);
                radio.mnc = Some(mnc);
            }
        }
        radio.operator_name = gpp.operator_name().await.ok().filter(|n| !n.is_empty());

        let signal = SignalProxy::builder(&self.connection)
            .path(modem.to_owned())?
            .cache_properties(zbus::proxy::CacheProperties::No)
            .build()
            .await?;
        let figures = match bearer {
            Some(b) if parse::is_nr(b) => signal.nr5g().await.ok(),
            Some(b) if parse::is_lte(b) => signal.lte().await.ok(),
            Some(super::Bearer::Wcdma) => signal.umts().await.ok(),
            Some(super::Bearer::Gsm) => signal.gsm().await.ok(),
            _ => None,
        };
        if let (Some(b), Some(figures)) = (bearer, figures) {
            let doubles: HashMap<String, f64> = figures
                .iter()
                .filter_map(|(k, v)| Some((k.clone(), f64_of(v)?)))
                .collect();
            parse::apply_signal(&mut radio, b, &doubles);
        }

        let location = LocationProxy::builder(&self.connection)
            .path(modem.to_owned())?
            .cache_properties(zbus::proxy::CacheProperties::No)
            .build()
            .await?;
        if let Ok(sources) = location.get_location().await {
            if let Some(text) = sources.get(&LOCATION_3GPP).and_then(string_of) {
                if let Some(l) = location_3gpp(&text) {
                    radio.mcc = radio.mcc.or(Some(l.mcc));
                    radio.mnc = radio.mnc.or(Some(l.mnc));
                    radio.lac = l.lac;
                    radio.tac = l.tac;
                    radio.cell_id = l.cell_id;
                }
            }
        }
        snapshot.radio = radio;

        for path in m.bearers().await.unwrap_or_default() {
            match self.data_connection(&path).await {
                Ok(c) => snapshot.data_connections.push(c),
                // A bearer removed between the two calls.
                Err(e) => tracing::debug!(bearer = %path.as_str(), "{e}"),
            }
        }
        if let Some(active) = snapshot.data_connections.iter().find(|c| c.connected) {
            snapshot.interface = active.interface.clone();
            snapshot.ip_addresses = active.ip_addresses.clone();
            snapshot.routers = active.gateway.into_iter().collect();
            let kernel = active
                .interface
                .as_deref()
                .and_then(|name| crate::host::interface_facts(root, name).ok())
                .and_then(|facts| facts.counters);
            snapshot.counters = kernel.or_else(|| {
                Some(Counters {
                    tx_bytes: active.tx_bytes?,
                    rx_bytes: active.rx_bytes?,
                    tx_packets: 0,
                    rx_packets: 0,
                })
            });
        }
        snapshot.apns = snapshot
            .data_connections
            .iter()
            .filter(|c| c.connected && !c.apn.is_empty())
            .map(|c| c.apn.clone())
            .collect();
        Ok(snapshot)
    }

    async fn data_connection(&self, path: &ObjectPath<'_>) -> Result<DataConnection, MmError> {
        let b = BearerProxy::builder(&self.connection)
            .path(path.to_owned())?
            .cache_properties(zbus::proxy::CacheProperties::No)
            .build()
            .await?;
        let properties = b.properties().await?;
        let connected = b.connected().await?;
        let interface = b.interface().await.ok().filter(|i| !i.is_empty());
        let mut ip_addresses = Vec::new();
        let mut gateway = None;
        let mut dns = Vec::new();
        let mut prefix = None;
        for config in [b.ip4_config().await, b.ip6_config().await]
            .into_iter()
            .flatten()
        {
            let ip = |key: &str| -> Option<IpAddr> { string_of(config.get(key)?)?.parse().ok() };
            if let Some(a) = ip("address") {
                ip_addresses.push(a);
                prefix = prefix.or(config.get("prefix").and_then(u32_of));
            }
            gateway = gateway.or(ip("gateway"));
            dns.extend(["dns1", "dns2", "dns3"].into_iter().filter_map(ip));
        }
        let stats = b.stats().await.unwrap_or_default();
        let auth = properties.get("allowed-auth").and_then(u32_of).map(|bits| {
            match (bits & AUTH_PAP != 0, bits & AUTH_CHAP != 0) {
                (true, true) => ApnAuth::PapOrChap,
                (true, false) => ApnAuth::Pap,
                (false, true) => ApnAuth::Chap,
                (false, false) => ApnAuth::None,
            }
        });
        Ok(DataConnection {
            apn: properties
                .get("apn")
                .and_then(string_of)
                .unwrap_or_default(),
            auth,
            user: properties
                .get("user")
                .and_then(string_of)
                .filter(|u| !u.is_empty()),
            connected,
            interface,
            ip_addresses,
            gateway,
            dns,
            prefix,
            tx_bytes: stats.get("tx-bytes").and_then(u64_of),
            rx_bytes: stats.get("rx-bytes").and_then(u64_of),
        })
    }

    /// Modems appearing and disappearing, and ModemManager itself starting and stopping.
    pub async fn watch(&self) -> Result<ModemWatch, MmError> {
        let manager = zbus::fdo::ObjectManagerProxy::builder(&self.connection)
            .destination(SERVICE)?
            .path(MANAGER_PATH)?
            .build()
            .await?;
        let dbus = zbus::fdo::DBusProxy::new(&self.connection).await?;
        Ok(ModemWatch {
            added: manager.receive_interfaces_added().await?,
            removed: manager.receive_interfaces_removed().await?,
            owner: dbus
                .receive_name_owner_changed_with_args(&[(0, SERVICE)])
                .await?,
        })
    }
}

/// The signals behind [`ModemManager::watch`].
pub struct ModemWatch {
    added: zbus::fdo::InterfacesAddedStream,
    removed: zbus::fdo::InterfacesRemovedStream,
    owner: zbus::fdo::NameOwnerChangedStream,
}

impl ModemWatch {
    /// The next event; `None` when the bus connection is gone.
    pub async fn next(&mut self) -> Option<ModemEvent> {
        loop {
            tokio::select! {
                s = self.added.next() => {
                    let signal = s?;
                    let Ok(args) = signal.args() else { continue };
                    return Some(ModemEvent::Added(args.object_path().to_string()));
                }
                s = self.removed.next() => {
                    let signal = s?;
                    let Ok(args) = signal.args() else { continue };
                    return Some(ModemEvent::Removed(args.object_path().to_string()));
                }
                s = self.owner.next() => {
                    let signal = s?;
                    let Ok(args) = signal.args() else { continue };
                    return Some(if args.new_owner().is_some() {
                        ModemEvent::ManagerStarted
                    } else {
                        ModemEvent::ManagerStopped
                    });
                }
            }
        }
    }
}

fn f64_of(v: &OwnedValue) -> Option<f64> {
    match &**v {
        Value::F64(x) if x.is_finite() => Some(*x),
        _ => None,
    }
}

fn u32_of(v: &OwnedValue) -> Option<u32> {
    match &**v {
        Value::U32(n) => Some(*n),
        _ => None,
    }
}

fn u64_of(v: &OwnedValue) -> Option<u64> {
    match &**v {
        Value::U64(n) => Some(*n),
        Value::U32(n) => Some(u64::from(*n)),
        _ => None,
    }
}

fn string_of(v: &OwnedValue) -> Option<String> {
    match &**v {
        Value::Str(s) => Some(s.to_string()),
        _ => None,
    }
}
