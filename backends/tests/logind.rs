//! System actions against real D-Bus: a private `dbus-daemon` with python-dbusmock's
//! `logind` and `timedated` templates standing in for systemd's services.
//!
//! Needs the Debian packages `dbus-daemon` and `python3-dbusmock`; without them the tests
//! fail and say so.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

#[path = "common/dbus_daemon.rs"]
mod dbus_daemon;

use backends::system::{RebootMethod, SystemBus, SystemError};
use dbus_daemon::DbusDaemon;
use zbus::zvariant::OwnedValue;

/// A bound on start-up, not a timing assertion: a service that has not appeared by then
/// is broken.
const READY_WITHIN: Duration = Duration::from_secs(30);

/// A private bus and the mocks on it, all stopped on drop.
struct PrivateBus {
    dir: tempfile::TempDir,
    address: String,
    mocks: Vec<Child>,
    // Dropped after the mocks (see `Drop`).
    _daemon: DbusDaemon,
}

impl PrivateBus {
    fn start() -> Self {
        let dir = tempfile::tempdir().expect("temporary directory");
        let daemon = DbusDaemon::start(dir.path());
        PrivateBus {
            dir,
            address: daemon.address.clone(),
            mocks: Vec::new(),
            _daemon: daemon,
        }
    }

    fn system_bus(&self) -> SystemBus {
        SystemBus::with_address(self.address.clone())
    }

    /// Starts `python3 -m dbusmock --system --template <template>` on this bus and waits
    /// until it owns `name`.
    async fn start_mock(&mut self, template: &str, name: &str) {
        require_dbusmock();
        let log = self.dir.path().join(format!("{template}.log"));
        let stderr = std::fs::File::create(&log).expect("mock log file");
        let mock = Command::new("/usr/bin/python3")
            .args(["-m", "dbusmock", "--system", "--template", template])
            // Only the child sees the private bus as its system bus.
            .env("DBUS_SYSTEM_BUS_ADDRESS", &self.address)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("spawn python3 -m dbusmock");
        self.mocks.push(mock);

        let connection = self.connect().await;
        let dbus = zbus::fdo::DBusProxy::new(&connection)
            .await
            .expect("org.freedesktop.DBus proxy");
        let bus_name = zbus::names::BusName::try_from(name).expect("bus name");
        let started = Instant::now();
        while !dbus
            .name_has_owner(bus_name.clone())
            .await
            .expect("NameHasOwner")
        {
            if started.elapsed() > READY_WITHIN {
                let log = std::fs::read_to_string(&log).unwrap_or_default();
                panic!("dbusmock template {template} never owned {name}; its stderr:\n{log}");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn connect(&self) -> zbus::Connection {
        zbus::connection::Builder::address(self.address.as_str())
            .expect("bus address")
            .build()
            .await
            .expect("connect to the private bus")
    }

    /// The calls the mock at `name`/`path` has received, as (method, arguments).
    async fn calls(&self, name: &str, path: &str) -> Vec<(String, Vec<OwnedValue>)> {
        let reply = self
            .connect()
            .await
            .call_method(
                Some(name),
                path,
                Some("org.freedesktop.DBus.Mock"),
                "GetCalls",
                &(),
            )
            .await
            .expect("Mock.GetCalls");
        let calls: Vec<(u64, String, Vec<OwnedValue>)> =
            reply.body().deserialize().expect("GetCalls reply a(tsav)");
        calls
            .into_iter()
            .map(|(_, method, args)| (method, args))
            .collect()
    }

    /// Replaces a mocked method's Python body.
    async fn mock_method(
        &self,
        name: &str,
        path: &str,
        interface: &str,
        method: &str,
        signature: &str,
        code: &str,
    ) {
        self.connect()
            .await
            .call_method(
                Some(name),
                path,
                Some("org.freedesktop.DBus.Mock"),
                "AddMethod",
                &(interface, method, signature, "", code),
            )
            .await
            .expect("Mock.AddMethod");
    }
}

impl Drop for PrivateBus {
    fn drop(&mut self) {
        for child in &mut self.mocks {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn require_dbusmock() {
    let found = Path::new("/usr/bin/python3").exists()
        && Command::new("/usr/bin/python3")
            .args(["-c", "import dbusmock"])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
    assert!(
        found,
        "python-dbusmock is missing for /usr/bin/python3; install the Debian package python3-dbusmock"
    );
}

const LOGIND: &str = "org.freedesktop.login1";
const LOGIND_PATH: &str = "/org/freedesktop/login1";
const TIMEDATED: &str = "org.freedesktop.timedate1";
const TIMEDATED_PATH: &str = "/org/freedesktop/timedate1";

fn as_bool(value: &OwnedValue) -> bool {
    bool::try_from(value).expect("a boolean argument")
}

#[tokio::test]
async fn reboot_asks_logind_non_interactively() {
    let mut bus = PrivateBus::start();
    bus.start_mock("logind", LOGIND).await;

    bus.system_bus()
        .reboot(RebootMethod::Logind)
        .await
        .expect("Reboot accepted");

    let calls = bus.calls(LOGIND, LOGIND_PATH).await;
    let reboots: Vec<_> = calls.iter().filter(|(m, _)| m == "Reboot").collect();
    assert_eq!(reboots.len(), 1, "calls: {calls:?}");
    let args = &reboots[0].1;
    assert_eq!(args.len(), 1);
    assert!(!as_bool(&args[0]), "interactive must be false");
}

#[tokio::test]
async fn reboot_method_none_calls_nobody() {
    let mut bus = PrivateBus::start();
    bus.start_mock("logind", LOGIND).await;

    bus.system_bus().reboot(RebootMethod::None).await.unwrap();

    let calls = bus.calls(LOGIND, LOGIND_PATH).await;
    assert!(calls.iter().all(|(m, _)| m != "Reboot"), "calls: {calls:?}");
}

#[tokio::test]
async fn reboot_without_logind_is_a_dbus_error() {
    let bus = PrivateBus::start();

    let err = bus
        .system_bus()
        .reboot(RebootMethod::Logind)
        .await
        .unwrap_err();

    match &err {
        SystemError::DBus { name, .. } => {
            assert_eq!(name, "org.freedesktop.DBus.Error.ServiceUnknown")
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(err
        .to_string()
        .starts_with("D-Bus error org.freedesktop.DBus.Error.ServiceUnknown: "));
}

#[tokio::test]
async fn refused_reboot_carries_the_error_name_and_message() {
    let mut bus = PrivateBus::start();
    bus.start_mock("logind", LOGIND).await;
    bus.mock_method(
        LOGIND,
        LOGIND_PATH,
        "org.freedesktop.login1.Manager",
        "Reboot",
        "b",
        "raise dbus.exceptions.DBusException('Operation inhibited', \
         name='org.freedesktop.login1.BlockedByInhibitorLock')",
    )
    .await;

    let err = bus
        .system_bus()
        .reboot(RebootMethod::Logind)
        .await
        .unwrap_err();

    assert_eq!(
        err.to_string(),
        "D-Bus error org.freedesktop.login1.BlockedByInhibitorLock: Operation inhibited"
    );
}

#[tokio::test]
async fn set_timezone_through_timedated() {
    let mut bus = PrivateBus::start();
    bus.start_mock("timedated", TIMEDATED).await;

    bus.system_bus()
        .set_timezone("Europe/Paris")
        .await
        .expect("SetTimezone accepted");

    let calls = bus.calls(TIMEDATED, TIMEDATED_PATH).await;
    let set: Vec<_> = calls.iter().filter(|(m, _)| m == "SetTimezone").collect();
    assert_eq!(set.len(), 1, "calls: {calls:?}");
    let args = &set[0].1;
    assert_eq!(args.len(), 2);
    assert_eq!(<&str>::try_from(&args[0]).unwrap(), "Europe/Paris");
    assert!(!as_bool(&args[1]), "interactive must be false");

    // The template stores the zone in timedated's Timezone property.
    let proxy = zbus::fdo::PropertiesProxy::builder(&bus.connect().await)
        .destination(TIMEDATED)
        .unwrap()
        .path(TIMEDATED_PATH)
        .unwrap()
        .build()
        .await
        .unwrap();
    let zone = proxy
        .get(
            zbus::names::InterfaceName::try_from(TIMEDATED).unwrap(),
            "Timezone",
        )
        .await
        .unwrap();
    assert_eq!(<&str>::try_from(&zone).unwrap(), "Europe/Paris");
}

#[tokio::test]
async fn set_time_sends_absolute_microseconds() {
    let mut bus = PrivateBus::start();
    bus.start_mock("timedated", TIMEDATED).await;

    bus.system_bus()
        .set_time(1_700_000_000)
        .await
        .expect("SetTime accepted");

    let calls = bus.calls(TIMEDATED, TIMEDATED_PATH).await;
    let set: Vec<_> = calls.iter().filter(|(m, _)| m == "SetTime").collect();
    assert_eq!(set.len(), 1, "calls: {calls:?}");
    let args = &set[0].1;
    assert_eq!(args.len(), 3);
    assert_eq!(i64::try_from(&args[0]).unwrap(), 1_700_000_000_000_000);
    assert!(!as_bool(&args[1]), "relative must be false");
    assert!(!as_bool(&args[2]), "interactive must be false");
}

#[tokio::test]
async fn set_time_refused_while_ntp_is_on() {
    let mut bus = PrivateBus::start();
    bus.start_mock("timedated", TIMEDATED).await;
    bus.mock_method(
        TIMEDATED,
        TIMEDATED_PATH,
        TIMEDATED,
        "SetTime",
        "xbb",
        "raise dbus.exceptions.DBusException('Automatic time synchronization is enabled', \
         name='org.freedesktop.timedate1.AutomaticTimeSyncEnabled')",
    )
    .await;

    let err = bus.system_bus().set_time(0).await.unwrap_err();

    match err {
        SystemError::DBus { name, message } => {
            assert_eq!(name, "org.freedesktop.timedate1.AutomaticTimeSyncEnabled");
            assert_eq!(message, "Automatic time synchronization is enabled");
        }
        other => panic!("unexpected {other:?}"),
    }
}
