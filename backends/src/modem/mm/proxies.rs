//! Proxies for the parts of ModemManager's D-Bus API lwm2md uses, written from the
//! introspection XML of ModemManager 1.20 committed beside this file (`introspection/`,
//! from Debian's modemmanager-dev). Only the members used are declared.

use std::collections::HashMap;

use zbus::proxy;
use zbus::zvariant::{OwnedObjectPath, OwnedValue};

#[proxy(
    interface = "org.freedesktop.ModemManager1.Modem",
    default_service = "org.freedesktop.ModemManager1"
)]
pub trait Modem {
    /// MMModemState.
    #[zbus(property)]
    fn state(&self) -> zbus::Result<i32>;
    /// MMModemAccessTechnology bits.
    #[zbus(property)]
    fn access_technologies(&self) -> zbus::Result<u32>;
    /// Percentage, and whether it was measured recently.
    #[zbus(property)]
    fn signal_quality(&self) -> zbus::Result<(u32, bool)>;
    #[zbus(property)]
    fn bearers(&self) -> zbus::Result<Vec<OwnedObjectPath>>;
    #[zbus(property)]
    fn own_numbers(&self) -> zbus::Result<Vec<String>>;
    #[zbus(property)]
    fn equipment_identifier(&self) -> zbus::Result<String>;
}

#[proxy(
    interface = "org.freedesktop.ModemManager1.Modem.Modem3gpp",
    default_service = "org.freedesktop.ModemManager1"
)]
pub trait Modem3gpp {
    /// MCC and MNC of the registered network, "26201".
    #[zbus(property)]
    fn operator_code(&self) -> zbus::Result<String>;
    #[zbus(property)]
    fn operator_name(&self) -> zbus::Result<String>;
    /// MMModem3gppRegistrationState.
    #[zbus(property)]
    fn registration_state(&self) -> zbus::Result<u32>;
}

#[proxy(
    interface = "org.freedesktop.ModemManager1.Modem.Signal",
    default_service = "org.freedesktop.ModemManager1"
)]
pub trait Signal {
    /// Refresh rate of the extended signal figures in seconds; 0 disables them.
    fn setup(&self, rate: u32) -> zbus::Result<()>;
    #[zbus(property)]
    fn rate(&self) -> zbus::Result<u32>;
    #[zbus(property)]
    fn gsm(&self) -> zbus::Result<HashMap<String, OwnedValue>>;
    #[zbus(property)]
    fn umts(&self) -> zbus::Result<HashMap<String, OwnedValue>>;
    #[zbus(property)]
    fn lte(&self) -> zbus::Result<HashMap<String, OwnedValue>>;
    #[zbus(property)]
    fn nr5g(&self) -> zbus::Result<HashMap<String, OwnedValue>>;
}

#[proxy(
    interface = "org.freedesktop.ModemManager1.Modem.Location",
    default_service = "org.freedesktop.ModemManager1"
)]
pub trait Location {
    /// Keyed by MMModemLocationSource.
    fn get_location(&self) -> zbus::Result<HashMap<u32, OwnedValue>>;
    fn setup(&self, sources: u32, signal_location: bool) -> zbus::Result<()>;
    #[zbus(property)]
    fn enabled(&self) -> zbus::Result<u32>;
    #[zbus(property)]
    fn capabilities(&self) -> zbus::Result<u32>;
    #[zbus(property)]
    fn signals_location(&self) -> zbus::Result<bool>;
}

#[proxy(
    interface = "org.freedesktop.ModemManager1.Modem.Simple",
    default_service = "org.freedesktop.ModemManager1"
)]
pub trait Simple {
    fn connect(
        &self,
        properties: HashMap<&str, zbus::zvariant::Value<'_>>,
    ) -> zbus::Result<OwnedObjectPath>;
    fn disconnect(&self, bearer: &zbus::zvariant::ObjectPath<'_>) -> zbus::Result<()>;
}

#[proxy(
    interface = "org.freedesktop.ModemManager1.Bearer",
    default_service = "org.freedesktop.ModemManager1"
)]
pub trait Bearer {
    #[zbus(property)]
    fn interface(&self) -> zbus::Result<String>;
    #[zbus(property)]
    fn connected(&self) -> zbus::Result<bool>;
    #[zbus(property)]
    fn ip4_config(&self) -> zbus::Result<HashMap<String, OwnedValue>>;
    #[zbus(property)]
    fn ip6_config(&self) -> zbus::Result<HashMap<String, OwnedValue>>;
    #[zbus(property)]
    fn stats(&self) -> zbus::Result<HashMap<String, OwnedValue>>;
    #[zbus(property)]
    fn properties(&self) -> zbus::Result<HashMap<String, OwnedValue>>;
}
