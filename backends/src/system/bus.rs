//! systemd's services on the system bus.

use std::time::Duration;

use zbus::connection::Builder;
use zbus::Connection;

use super::SystemError;

/// The address the D-Bus specification gives the system bus when
/// `DBUS_SYSTEM_BUS_ADDRESS` is unset.
const DEFAULT_ADDRESS: &str = "unix:path=/var/run/dbus/system_bus_socket";

/// How long a call may take before it fails. Polkit may ask an agent, but every call here
/// is non-interactive, so anything slower is a stuck service.
const CALL_TIMEOUT: Duration = Duration::from_secs(25);

/// How the machine is rebooted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RebootMethod {
    /// logind's `Reboot`, which polkit authorises (action `org.freedesktop.login1.reboot`).
    Logind,
    /// Reboots are refused: logged, and otherwise ignored.
    None,
}

/// The system bus, by address.
///
/// The address is fixed when the value is made rather than read from the environment at
/// each call, so that tests can each talk to a private bus without changing the
/// process-wide environment. Each action opens its own connection: actions are rare, and
/// a bus restarted in between must not leave a dead connection behind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SystemBus {
    address: String,
}

impl SystemBus {
    /// The bus in `DBUS_SYSTEM_BUS_ADDRESS`, else the standard system bus socket.
    pub fn from_env() -> Self {
        let address = std::env::var("DBUS_SYSTEM_BUS_ADDRESS")
            .ok()
            .filter(|a| !a.is_empty())
            .unwrap_or_else(|| DEFAULT_ADDRESS.to_owned());
        SystemBus { address }
    }

    /// The bus at a D-Bus address such as `unix:path=/run/dbus/system_bus_socket`.
    pub fn with_address(address: impl Into<String>) -> Self {
        SystemBus {
            address: address.into(),
        }
    }

    pub fn address(&self) -> &str {
        &self.address
    }

    /// Reboots the machine. With [`RebootMethod::Logind`] this returns once logind has
    /// accepted the request; the reboot itself follows.
    pub async fn reboot(&self, method: RebootMethod) -> Result<(), SystemError> {
        match method {
            RebootMethod::None => {
                tracing::warn!("reboot requested, but the reboot method is none: not rebooting");
                Ok(())
            }
            RebootMethod::Logind => {
                tracing::info!("asking logind to reboot");
                self.call(
                    "org.freedesktop.login1",
                    "/org/freedesktop/login1",
                    "org.freedesktop.login1.Manager",
                    "Reboot",
                    &(false,),
                )
                .await
            }
        }
    }

    /// Sets the system clock to `unix_seconds` (UTC) through timedated. timedated refuses
    /// while NTP synchronisation is on (`org.freedesktop.timedate1.AutomaticTimeSyncEnabled`).
    pub async fn set_time(&self, unix_seconds: i64) -> Result<(), SystemError> {
        let usec = unix_seconds
            .checked_mul(1_000_000)
            .ok_or(SystemError::TimeOutOfRange { unix_seconds })?;
        // (usec_utc, relative, interactive)
        self.timedated("SetTime", &(usec, false, false)).await
    }

    /// Sets the time zone to an IANA name ("Europe/Paris") through timedated, which
    /// rejects names it does not know (`org.freedesktop.DBus.Error.InvalidArgs`).
    pub async fn set_timezone(&self, name: &str) -> Result<(), SystemError> {
        // (timezone, interactive)
        self.timedated("SetTimezone", &(name, false)).await
    }

    async fn timedated<B>(&self, method: &str, body: &B) -> Result<(), SystemError>
    where
        B: serde::ser::Serialize + zbus::zvariant::DynamicType,
    {
        self.call(
            "org.freedesktop.timedate1",
            "/org/freedesktop/timedate1",
            "org.freedesktop.timedate1",
            method,
            body,
        )
        .await
    }

    async fn call<B>(
        &self,
        destination: &str,
        path: &str,
        interface: &str,
        method: &str,
        body: &B,
    ) -> Result<(), SystemError>
    where
        B: serde::ser::Serialize + zbus::zvariant::DynamicType,
    {
        let connection = self.connect().await?;
        connection
            .call_method(Some(destination), path, Some(interface), method, body)
            .await
            .map_err(SystemError::from_call)?;
        Ok(())
    }

    async fn connect(&self) -> Result<Connection, SystemError> {
        let unreachable = |e: zbus::Error| SystemError::BusUnreachable {
            address: self.address.clone(),
            reason: e.to_string(),
        };
        Builder::address(self.address.as_str())
            .map_err(unreachable)?
            .method_timeout(CALL_TIMEOUT)
            .build()
            .await
            .map_err(unreachable)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn no_daemon_at_the_address() {
        let dir = tempfile::tempdir().unwrap();
        let address = format!("unix:path={}", dir.path().join("absent.sock").display());
        let bus = SystemBus::with_address(address.clone());
        let err = bus.reboot(RebootMethod::Logind).await.unwrap_err();
        match &err {
            SystemError::BusUnreachable { address: a, .. } => assert_eq!(a, &address),
            other => panic!("unexpected {other:?}"),
        }
        assert!(err.to_string().starts_with("system bus at unix:path="));
    }

    #[tokio::test]
    async fn malformed_address() {
        let bus = SystemBus::with_address("no-such-transport:x=y");
        assert!(matches!(
            bus.set_timezone("UTC").await,
            Err(SystemError::BusUnreachable { .. })
        ));
    }

    #[tokio::test]
    async fn reboot_method_none_needs_no_bus() {
        let bus = SystemBus::with_address("unix:path=/nonexistent/bus");
        bus.reboot(RebootMethod::None).await.unwrap();
    }

    #[tokio::test]
    async fn time_beyond_microsecond_range() {
        let bus = SystemBus::with_address("unix:path=/nonexistent/bus");
        let err = bus.set_time(i64::MAX / 10).await.unwrap_err();
        assert!(matches!(err, SystemError::TimeOutOfRange { .. }));
    }
}
