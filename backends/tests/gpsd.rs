//! The gpsd watcher against the real gpsd, fed by `gpsfake` from the NMEA file in
//! tests/data (Debian packages `gpsd` and `gpsd-clients`; without them the test fails
//! and says so).

use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use backends::location::gpsd::{self, Event};
use tokio::sync::mpsc;

/// A bound on waiting for something that must happen, not a timing assertion.
const WITHIN: Duration = Duration::from_secs(60);

fn nmea_file() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/data/berlin.nmea")
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("local address").port()
}

/// gpsfake and the gpsd it runs, in a process group of their own, stopped on drop.
struct GpsFake(Child);

impl GpsFake {
    fn start(port: u16) -> GpsFake {
        let child = Command::new("gpsfake")
            .args(["-q", "-c", "0.2", "-n", "-P", &port.to_string()])
            .arg(nmea_file())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .process_group(0)
            .spawn()
            .expect("gpsfake (Debian package gpsd-clients) must be installed");
        GpsFake(child)
    }
}

impl Drop for GpsFake {
    fn drop(&mut self) {
        if let Ok(pid) = i32::try_from(self.0.id()) {
            // SAFETY: kill(2) with the group id of a child we spawned in its own group.
            unsafe { libc::kill(-pid, libc::SIGTERM) };
        }
        let _ = self.0.wait();
    }
}

/// The next 3D fix.
async fn next_fix(rx: &mut mpsc::Receiver<Event>) -> backends::location::Fix {
    tokio::time::timeout(WITHIN, async {
        loop {
            match rx.recv().await {
                // The first report after a start may be 2D (RMC before GGA).
                Some(Event::Fix(fix)) if fix.altitude.is_some() => return fix,
                Some(_) => continue,
                None => panic!("watcher ended"),
            }
        }
    })
    .await
    .expect("a fix from gpsd")
}

async fn next_no_fix(rx: &mut mpsc::Receiver<Event>) {
    tokio::time::timeout(WITHIN, async {
        loop {
            match rx.recv().await {
                Some(Event::NoFix) => return,
                Some(Event::Fix(_)) => continue,
                None => panic!("watcher ended"),
            }
        }
    })
    .await
    .expect("gpsd's absence noticed")
}

#[tokio::test]
async fn fixes_from_gpsfake_and_reconnect_after_gpsd_restarts() {
    let port = free_port();
    let address = format!("127.0.0.1:{port}");
    let (tx, mut rx) = mpsc::channel(16);
    // Started before gpsd exists: the watcher must keep trying.
    let watcher = tokio::spawn(gpsd::watch(address, tx));
    next_no_fix(&mut rx).await;

    let fake = GpsFake::start(port);
    let fix = next_fix(&mut rx).await;
    // The position in berlin.nmea: 5231.2000 N, 01324.3000 E, 34.5 m MSL, 10 knots at 84.4°.
    assert!((fix.latitude - 52.52).abs() < 1e-9, "{fix:?}");
    assert!((fix.longitude - 13.405).abs() < 1e-9, "{fix:?}");
    assert_eq!(fix.altitude, Some(34.5));
    let speed = fix.speed.expect("speed");
    assert!((speed - 10.0 * 1852.0 / 3600.0).abs() < 0.01, "{speed}");
    assert_eq!(fix.track, Some(84.4));
    assert!(fix.radius.is_some_and(|r| r > 0.0), "{fix:?}");
    let time = fix.time.expect("time");
    // 2026-11-25 12:35:00..09 UTC, from the RMC sentences.
    assert!((1_795_610_100..1_795_610_110).contains(&time), "{time}");

    drop(fake);
    next_no_fix(&mut rx).await;
    let _fake = GpsFake::start(port);
    let fix = next_fix(&mut rx).await;
    assert!((fix.latitude - 52.52).abs() < 1e-9, "{fix:?}");

    drop(rx);
    tokio::time::timeout(WITHIN, watcher)
        .await
        .expect("the watcher stops once nobody listens")
        .expect("no panic");
}
