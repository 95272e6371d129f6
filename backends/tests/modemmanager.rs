//! The ModemManager backend against a private `dbus-daemon` with python-dbusmock's
//! `modemmanager` template (PyPI 0.38.1, from the test bench's venv: `scripts/venv`),
//! extended by the bench's own template (tests/bench/mm_template.py) with Signal,
//! Location, Simple and a Bearer.

use std::net::IpAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

#[path = "common/dbus_daemon.rs"]
mod dbus_daemon;

use backends::modem::mm::{MmError, ModemEvent, ModemManager};
use backends::modem::{ApnAuth, ApnSettings, Bearer, Counters};
use dbus_daemon::DbusDaemon;

/// A bound on start-up, not a timing assertion.
const READY_WITHIN: Duration = Duration::from_secs(30);
const MM: &str = "org.freedesktop.ModemManager1";
const MANAGER: &str = "/org/freedesktop/ModemManager1";

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

struct PrivateBus {
    dir: tempfile::TempDir,
    address: String,
    mock: Option<Child>,
    // Dropped after the mock (see `Drop`).
    _daemon: DbusDaemon,
}

impl PrivateBus {
    fn start() -> Self {
        let dir = tempfile::tempdir().expect("temporary directory");
        let daemon = DbusDaemon::start(dir.path());
        PrivateBus {
            dir,
            address: daemon.address.clone(),
            _daemon: daemon,
            mock: None,
        }
    }

    /// Starts the ModemManager mock and waits until it owns its name.
    async fn start_mock(&mut self) {
        let python = repo().join(".venv/bin/python");
        assert!(
            python.exists(),
            "{} is missing: run scripts/venv (python-dbusmock 0.38.1 from tests/requirements.txt)",
            python.display()
        );
        let log = std::fs::File::create(self.dir.path().join("mock.log")).expect("log");
        self.mock = Some(
            Command::new(python)
                .args(["-m", "dbusmock", "--system", "-t"])
                .arg(repo().join("tests/bench/mm_template.py"))
                .env("DBUS_SYSTEM_BUS_ADDRESS", &self.address)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .expect("spawn dbusmock"),
        );
        let connection = self.connect().await;
        let dbus = zbus::fdo::DBusProxy::new(&connection).await.expect("proxy");
        let started = Instant::now();
        while !dbus
            .name_has_owner(MM.try_into().expect("name"))
            .await
            .expect("NameHasOwner")
        {
            let log = std::fs::read_to_string(self.dir.path().join("mock.log")).unwrap_or_default();
            assert!(
                started.elapsed() < READY_WITHIN,
                "mock never owned {MM}:\n{log}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn stop_mock(&mut self) {
        if let Some(mut m) = self.mock.take() {
            let _ = m.kill();
            let _ = m.wait();
        }
    }

    async fn connect(&self) -> zbus::Connection {
        zbus::connection::Builder::address(self.address.as_str())
            .expect("address")
            .build()
            .await
            .expect("connect")
    }

    /// Calls a method of the mock's control interface.
    async fn mock_call(&self, method: &str) {
        self.connect()
            .await
            .call_method(
                Some(MM),
                MANAGER,
                Some("org.freedesktop.DBus.Mock"),
                method,
                &(),
            )
            .await
            .unwrap_or_else(|e| panic!("Mock.{method}: {e}"));
    }

    async fn property(
        &self,
        path: &str,
        interface: &str,
        name: &str,
    ) -> zbus::zvariant::OwnedValue {
        let reply = self
            .connect()
            .await
            .call_method(
                Some(MM),
                path,
                Some("org.freedesktop.DBus.Properties"),
                "Get",
                &(interface, name),
            )
            .await
            .expect("Properties.Get");
        reply.body().deserialize().expect("a variant")
    }
}

impl Drop for PrivateBus {
    fn drop(&mut self) {
        self.stop_mock();
    }
}

async fn with_modem() -> (PrivateBus, ModemManager) {
    let mut bus = PrivateBus::start();
    bus.start_mock().await;
    bus.mock_call("AddConnectedModem").await;
    let mm = ModemManager::connect(&bus.address).await.expect("connect");
    (bus, mm)
}

#[tokio::test]
async fn snapshot_of_a_connected_lte_modem() {
    let (bus, mm) = with_modem().await;
    let modem = mm.first_modem().await.expect("a modem");
    assert_eq!(modem.as_str(), "/org/freedesktop/ModemManager1/Modems/8");

    mm.setup_signal(&modem, 15).await.expect("Signal.Setup");
    let rate = bus
        .property(
            modem.as_str(),
            "org.freedesktop.ModemManager1.Modem.Signal",
            "Rate",
        )
        .await;
    assert_eq!(u32::try_from(rate).expect("u"), 15);

    // An empty root: no wwan0 in its sysfs, so the counters come from the bearer's Stats.
    let root = tempfile::tempdir().expect("root");
    let s = mm.snapshot(&modem, root.path()).await.expect("snapshot");
    assert_eq!(s.bearer, Some(Bearer::LteFdd));
    assert_eq!(s.available_bearers, vec![Bearer::LteFdd]);
    assert_eq!(s.radio.signal_dbm, Some(-95));
    assert_eq!(s.radio.link_quality, Some(-11));
    assert_eq!(s.radio.snr_db, Some(7));
    assert_eq!((s.radio.mcc, s.radio.mnc), (Some(262), Some(1)));
    assert_eq!(s.radio.operator_name.as_deref(), Some("Telekom.de"));
    assert_eq!(s.radio.cell_id, Some(0xC45A01));
    assert_eq!(s.radio.tac, Some(0x4E21));
    assert_eq!(s.radio.lac, None);
    assert_eq!(s.interface.as_deref(), Some("wwan0"));
    let ips: Vec<IpAddr> = vec![
        "10.64.12.34".parse().unwrap(),
        "2a01:598:a1:2::1".parse().unwrap(),
    ];
    assert_eq!(s.ip_addresses, ips);
    assert_eq!(s.routers, vec!["10.64.12.33".parse::<IpAddr>().unwrap()]);
    assert_eq!(s.apns, vec!["internet.example".to_owned()]);
    assert_eq!(
        s.counters,
        Some(Counters {
            tx_bytes: 1_000_000,
            rx_bytes: 3_000_000,
            tx_packets: 0,
            rx_packets: 0
        })
    );
    let c = &s.data_connections[0];
    assert!(c.connected);
    assert_eq!(c.auth, Some(ApnAuth::None));
    assert_eq!(c.dns.len(), 2);
    assert_eq!(c.prefix, Some(30));
}

#[tokio::test]
async fn simple_connect_with_a_new_apn_and_a_rejected_one() {
    let (_bus, mm) = with_modem().await;
    let modem = mm.first_modem().await.expect("a modem");
    let settings = ApnSettings {
        apn: "iot.example".into(),
        auth: ApnAuth::Chap,
        user: Some("gw".into()),
        password: Some("secret".into()),
    };
    let bearer = mm.connect_data(&modem, &settings).await.expect("Connect");
    assert_eq!(bearer.as_str(), "/org/freedesktop/ModemManager1/Bearer/0");
    let root = tempfile::tempdir().expect("root");
    let s = mm.snapshot(&modem, root.path()).await.expect("snapshot");
    assert_eq!(s.apns, vec!["iot.example".to_owned()]);
    assert_eq!(s.data_connections[0].auth, Some(ApnAuth::Chap));
    assert_eq!(s.data_connections[0].user.as_deref(), Some("gw"));

    let rejected = ApnSettings {
        apn: "reject.example".into(),
        auth: ApnAuth::None,
        user: None,
        password: None,
    };
    match mm.connect_data(&modem, &rejected).await {
        Err(MmError::Call { name, .. }) => assert_eq!(
            name,
            "org.freedesktop.ModemManager1.Error.MobileEquipment.GprsServiceOptionNotSubscribed"
        ),
        other => panic!("expected a rejection, got {other:?}"),
    }
}

async fn next(w: &mut backends::modem::mm::ModemWatch) -> Option<ModemEvent> {
    tokio::time::timeout(READY_WITHIN, w.next())
        .await
        .expect("an event")
}

#[tokio::test]
async fn modems_come_and_go_and_so_does_modemmanager() {
    let mut bus = PrivateBus::start();
    bus.start_mock().await;
    let mm = ModemManager::connect(&bus.address).await.expect("connect");
    assert_eq!(mm.first_modem().await, Err(MmError::NoModem));
    let mut watch = mm.watch().await.expect("watch");

    bus.mock_call("AddConnectedModem").await;
    let mut added = Vec::new();
    while added.len() < 2 {
        // The upstream template announces the modem, then this bench's interfaces.
        match next(&mut watch).await {
            Some(ModemEvent::Added(path)) => added.push(path),
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(added
        .iter()
        .all(|p| p == "/org/freedesktop/ModemManager1/Modems/8"));
    assert!(mm.first_modem().await.is_ok());

    bus.mock_call("RemoveModem").await;
    assert_eq!(
        next(&mut watch).await,
        Some(ModemEvent::Removed(
            "/org/freedesktop/ModemManager1/Modems/8".into()
        ))
    );
    assert_eq!(mm.first_modem().await, Err(MmError::NoModem));

    bus.stop_mock();
    assert_eq!(next(&mut watch).await, Some(ModemEvent::ManagerStopped));
    assert_eq!(mm.first_modem().await, Err(MmError::NotRunning));
    bus.start_mock().await;
    assert_eq!(next(&mut watch).await, Some(ModemEvent::ManagerStarted));
}
