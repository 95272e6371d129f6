//! Actions on the operating system.
//!
//! Reboot, clock and time zone go through systemd's D-Bus services (logind, timedated) on
//! the system bus, so that polkit decides who may do them and the daemon needs no root.
//! [`SystemBus`] names the bus; the free functions here use [`SystemBus::from_env`].

mod bus;
mod command;
mod error;

pub use bus::{RebootMethod, SystemBus};
pub use command::{capture, run_command};
pub use error::SystemError;

/// Reboots through the system bus of the environment; see [`SystemBus::reboot`].
pub async fn reboot(method: RebootMethod) -> Result<(), SystemError> {
    SystemBus::from_env().reboot(method).await
}

/// Sets the clock through the system bus of the environment; see [`SystemBus::set_time`].
pub async fn set_time(unix_seconds: i64) -> Result<(), SystemError> {
    SystemBus::from_env().set_time(unix_seconds).await
}

/// Sets the time zone through the system bus of the environment; see
/// [`SystemBus::set_timezone`].
pub async fn set_timezone(name: &str) -> Result<(), SystemError> {
    SystemBus::from_env().set_timezone(name).await
}
