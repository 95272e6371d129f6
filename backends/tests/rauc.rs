//! The RAUC backend against the real `rauc service` (Debian's rauc 1.8) on a private
//! dbus-daemon: file-backed ext4 slots, a custom bootloader handler, plain bundles
//! signed by a CA made for the test (tests/rauc-rig.sh). A reboot is a restart of the
//! service with the other `--override-boot-slot`.
//!
//! Needs the Debian packages rauc, rauc-service, squashfs-tools, e2fsprogs, openssl,
//! dbus-daemon.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

#[path = "common/dbus_daemon.rs"]
mod dbus_daemon;

use backends::firmware::rauc::Rauc;
use backends::firmware::{FirmwareError, Interrupted};
use dbus_daemon::DbusDaemon;

/// A bound on start-up, not a timing assertion.
const READY_WITHIN: Duration = Duration::from_secs(60);

struct Rig {
    dir: tempfile::TempDir,
    address: String,
    service: Option<Child>,
    // Dropped after the service (see `Drop`).
    _bus: DbusDaemon,
}

impl Drop for Rig {
    fn drop(&mut self) {
        self.stop_service();
    }
}

impl Rig {
    fn new() -> Rig {
        let dir = tempfile::tempdir().unwrap();
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/rauc-rig.sh");
        let out = Command::new("sh")
            .arg(&script)
            .arg(dir.path())
            .output()
            .expect("run rauc-rig.sh");
        assert!(
            out.status.success(),
            "rauc-rig.sh failed (packages rauc, squashfs-tools, e2fsprogs, openssl?): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let bus = DbusDaemon::start(dir.path());
        Rig {
            dir,
            address: bus.address.clone(),
            service: None,
            _bus: bus,
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// (Re)starts `rauc service` as if `slot` had been booted, and waits for its name.
    async fn boot(&mut self, slot: &str) {
        self.stop_service();
        let log = std::fs::File::create(self.path(&format!("rauc-{slot}.log"))).unwrap();
        let child = Command::new("rauc")
            .arg("service")
            .arg(format!("--conf={}", self.path("system.conf").display()))
            .arg(format!("--override-boot-slot={slot}"))
            .env("DBUS_SYSTEM_BUS_ADDRESS", &self.address)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("rauc service");
        self.service = Some(child);
        let connection = zbus::connection::Builder::address(self.address.as_str())
            .unwrap()
            .build()
            .await
            .unwrap();
        let dbus = zbus::fdo::DBusProxy::new(&connection).await.unwrap();
        let name = zbus::names::BusName::try_from("de.pengutronix.rauc").unwrap();
        let started = Instant::now();
        while !dbus.name_has_owner(name.clone()).await.unwrap() {
            assert!(
                started.elapsed() < READY_WITHIN,
                "rauc service never owned its name"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn stop_service(&mut self) {
        if let Some(mut c) = self.service.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    fn rauc(&self) -> Rauc {
        Rauc {
            address: self.address.clone(),
            timeout: Duration::from_secs(120),
        }
    }

    fn boot_file(&self, name: &str) -> String {
        std::fs::read_to_string(self.path("boot").join(name))
            .unwrap_or_default()
            .trim()
            .to_string()
    }
}

#[tokio::test]
async fn install_commit_and_rollback_through_the_real_rauc_service() {
    let mut rig = Rig::new();
    rig.boot("A").await;
    let rauc = rig.rauc();

    // Check: the bundle's own compatible and version.
    let info = rauc.check(&rig.path("good.raucb")).await.unwrap();
    assert_eq!(info.name.as_deref(), Some("lwm2md-test"));
    assert_eq!(info.version.as_deref(), Some("2.0"));
    assert!(matches!(
        rauc.check(&rig.path("wrong-compatible.raucb")).await,
        Err(FirmwareError::Unsupported(_))
    ));
    // A tampered bundle: its signature no longer verifies.
    let mut bytes = std::fs::read(rig.path("good.raucb")).unwrap();
    if let Some(b) = bytes.get_mut(100) {
        *b ^= 0xff;
    }
    std::fs::write(rig.path("tampered.raucb"), &bytes).unwrap();
    assert!(matches!(
        rauc.check(&rig.path("tampered.raucb")).await,
        Err(FirmwareError::Integrity(_))
    ));
    // Not a bundle at all.
    std::fs::write(rig.path("package"), b"not a bundle").unwrap();
    assert!(matches!(
        rauc.check(&rig.path("package")).await,
        Err(FirmwareError::Integrity(_))
    ));

    // RAUC refuses to install a bundle for another device.
    assert!(matches!(
        rauc.install(&rig.path("wrong-compatible.raucb"), &|_, _| {})
            .await,
        Err(FirmwareError::Unsupported(_))
    ));
    // The staged package has no .raucb name: RAUC must take it all the same.
    std::fs::copy(rig.path("good.raucb"), rig.path("package")).unwrap();
    let seen = std::sync::Mutex::new(Vec::new());
    let target = rauc
        .install(&rig.path("package"), &|percent, message: &str| {
            seen.lock().unwrap().push((percent, message.to_string()))
        })
        .await
        .unwrap();
    assert_eq!(target.as_deref(), Some("rootfs.1"));
    assert_eq!(rig.boot_file("primary"), "B");
    // RAUC's Progress came as it changed, up to its end.
    let seen = seen.into_inner().unwrap();
    assert!(seen.len() >= 3, "{seen:?}");
    assert!(seen.iter().any(|(p, _)| *p == 100), "{seen:?}");
    assert!(seen.iter().any(|(p, _)| (1..100).contains(p)), "{seen:?}");
    // Found after a restart: the installation ran to its end, into B.
    assert_eq!(
        rauc.interrupted(&|_, _| {}).await.unwrap(),
        Interrupted::Completed(Some("rootfs.1".into()))
    );
    assert!(!rauc.booted_new(target.as_deref()).await.unwrap());

    // Reboot into B, commit.
    rig.boot("B").await;
    let rauc = rig.rauc();
    assert!(rauc.booted_new(target.as_deref()).await.unwrap());
    assert_eq!(rauc.version().await.as_deref(), Some("2.0"));
    rauc.commit().await.unwrap();
    assert_eq!(rig.boot_file("state-B"), "good");
    assert_eq!(rig.boot_file("primary"), "B");

    // Roll back from B: A becomes primary before B is marked bad.
    rauc.rollback().await.unwrap();
    assert_eq!(rig.boot_file("primary"), "A");
    assert_eq!(rig.boot_file("state-B"), "bad");
    assert_eq!(rig.boot_file("state-A"), "good");
    // The bootloader went back to A: the update did not take.
    rig.boot("A").await;
    assert!(!rig.rauc().booted_new(target.as_deref()).await.unwrap());
    assert_eq!(
        rig.rauc().interrupted(&|_, _| {}).await.unwrap(),
        Interrupted::Cut
    );
}
