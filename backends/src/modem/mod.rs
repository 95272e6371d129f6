//! The data connection of the gateway: what it is carried over (a cellular modem, Wi-Fi,
//! Ethernet), how good the radio is, which addresses it has and how much it carried.
//!
//! Every connectivity backend (the host's own interfaces, ModemManager, a bare AT modem)
//! fills the same [`ConnectivitySnapshot`], in the units of its domain: dBm, dB, bytes.
//! What the backend cannot know stays `None` or empty.

pub mod at;
pub mod mm;

use std::net::IpAddr;

/// The kind of link the data goes over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Bearer {
    Gsm,
    TdScdma,
    Wcdma,
    Cdma2000,
    Wimax,
    LteTdd,
    LteFdd,
    NbIot,
    NrTdd,
    NrFdd,
    Wlan,
    Bluetooth,
    Ieee802154,
    Ethernet,
    Dsl,
    Plc,
}

impl Bearer {
    pub fn is_cellular(self) -> bool {
        !matches!(
            self,
            Bearer::Wlan
                | Bearer::Bluetooth
                | Bearer::Ieee802154
                | Bearer::Ethernet
                | Bearer::Dsl
                | Bearer::Plc
        )
    }
}

/// Radio measurements and the serving cell. For a cellular bearer `signal_dbm` is the
/// figure that bearer is judged by: RSSI on GSM, RSCP on UMTS, RSRP on LTE and NB-IoT,
/// SS-RSRP on 5G NR; for Wi-Fi the received signal level.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Radio {
    pub signal_dbm: Option<i32>,
    /// RxQual on GSM, RSRQ (dB) on LTE, the driver's link quality on Wi-Fi.
    pub link_quality: Option<i32>,
    /// Signal to interference plus noise ratio, dB.
    pub snr_db: Option<i32>,
    /// Serving cell identity (28 bits on UMTS and LTE, 36 on NR).
    pub cell_id: Option<u64>,
    /// Mobile country and network code of the serving network.
    pub mcc: Option<u16>,
    pub mnc: Option<u16>,
    /// Location area code (GSM, UMTS) or tracking area code (LTE, NR).
    pub lac: Option<u32>,
    pub tac: Option<u32>,
    /// Operator name as the network gives it.
    pub operator_name: Option<String>,
}

/// Cumulative interface counters as the kernel (or the modem) keeps them since the link
/// came up; they go back to zero when it is re-created.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    pub tx_bytes: u64,
    pub rx_bytes: u64,
    pub tx_packets: u64,
    pub rx_packets: u64,
}

/// One look at the data connection.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ConnectivitySnapshot {
    /// The network interface that carries the data (`eth0`, `wwan0`), if known.
    pub interface: Option<String>,
    /// The bearer in use, `None` when it is unknown or there is no connection.
    pub bearer: Option<Bearer>,
    /// Bearers the device could use now.
    pub available_bearers: Vec<Bearer>,
    pub radio: Radio,
    /// Every address of the interface, IPv4 first.
    pub ip_addresses: Vec<IpAddr>,
    /// Next-hop routers of the default routes through the interface.
    pub routers: Vec<IpAddr>,
    /// Percentage of the link's capacity in use, when the link speed is known.
    pub link_utilization: Option<u8>,
    /// Access point names of the active cellular data connections.
    pub apns: Vec<String>,
    pub counters: Option<Counters>,
    /// Cellular data connections and how they were made.
    pub data_connections: Vec<DataConnection>,
}

/// How a cellular data connection is authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApnAuth {
    Pap,
    Chap,
    PapOrChap,
    None,
}

/// Settings of a cellular data connection (a PDP context / PDN connection).
#[derive(Clone, PartialEq, Eq)]
pub struct ApnSettings {
    /// Empty to let the network choose.
    pub apn: String,
    pub auth: ApnAuth,
    pub user: Option<String>,
    pub password: Option<String>,
}

/// Settings end up in logs with the actions that carry them: the password never does.
impl std::fmt::Debug for ApnSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApnSettings")
            .field("apn", &self.apn)
            .field("auth", &self.auth)
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| "…"))
            .finish()
    }
}

/// A cellular data connection as the modem reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataConnection {
    pub apn: String,
    pub auth: Option<ApnAuth>,
    pub user: Option<String>,
    pub connected: bool,
    pub interface: Option<String>,
    pub ip_addresses: Vec<IpAddr>,
    pub gateway: Option<IpAddr>,
    pub dns: Vec<IpAddr>,
    /// IPv4 prefix length or IPv6 prefix, per address family used.
    pub prefix: Option<u32>,
    pub tx_bytes: Option<u64>,
    pub rx_bytes: Option<u64>,
}
