//! The AT backend against a simulated modem on a pseudo-terminal pair: the backend opens
//! the pty's slave end by path as it would /dev/ttyUSB2, the simulator answers on the
//! master end like a Quectel EC25 with scripted quirks (echo that ATE0 does not turn
//! off, unsolicited codes between and inside answers, a slow answer, garbage bytes,
//! +CME ERROR), and the port vanishes and comes back.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use backends::modem::at::response::ErrorCode;
use backends::modem::at::{
    AccessTechnology, AtError, AtModem, AtPort, CommandError, RegistrationState, Vendor,
};
use serialport::{SerialPort, TTYPort};

/// A bound on waiting for what must happen, not a timing assertion.
const WITHIN: Duration = Duration::from_secs(90);

struct Quirks {
    /// Echo stays on whatever ATE0 says (some modules' secondary ports).
    sticky_echo: bool,
    /// Answers that take this long.
    slow: HashMap<&'static str, Duration>,
}

/// The simulated modem: a thread on the master end of a pty pair.
struct Sim {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    slave_path: PathBuf,
}

impl Sim {
    fn start(quirks: Quirks) -> Sim {
        let (mut master, slave) = TTYPort::pair().expect("a pty pair");
        let slave_path = PathBuf::from(slave.name().expect("the slave's name"));
        master
            .set_timeout(Duration::from_millis(50))
            .expect("master timeout");
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            // Held so that the master never sees a hang-up while the backend reopens.
            let _slave = slave;
            run(&mut master, &quirks, &flag);
        });
        Sim {
            stop,
            thread: Some(thread),
            slave_path,
        }
    }

    /// Pulls the plug: both ends of the pty close.
    fn unplug(mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            t.join().expect("simulator thread");
        }
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn run(master: &mut TTYPort, quirks: &Quirks, stop: &AtomicBool) {
    let mut echo = true;
    let mut cops_format = 0;
    let mut buf = Vec::new();
    let mut commands = 0u32;
    while !stop.load(Ordering::SeqCst) {
        let mut byte = [0u8; 256];
        let n = match master.read(&mut byte) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => continue,
            Err(_) => {
                std::thread::sleep(Duration::from_millis(20));
                continue;
            }
        };
        buf.extend_from_slice(&byte[..n]);
        while let Some(end) = buf.iter().position(|b| *b == b'\r') {
            let line: Vec<u8> = buf.drain(..=end).collect();
            let command = String::from_utf8_lossy(&line[..end]).trim().to_string();
            if command.is_empty() {
                continue;
            }
            commands += 1;
            let mut out = String::new();
            if echo {
                out.push_str(&command);
                out.push('\r');
            }
            if let Some(delay) = quirks.slow.get(command.as_str()) {
                master.write_all(out.as_bytes()).ok();
                out.clear();
                std::thread::sleep(*delay);
            }
            let reply = answer(&command, &mut echo, &mut cops_format, quirks);
            for l in reply {
                out.push_str("\r\n");
                out.push_str(&l);
                out.push_str("\r\n");
            }
            if master.write_all(out.as_bytes()).is_err() {
                return;
            }
            // Between commands, now and then, the module says something of its own.
            if commands.is_multiple_of(3) {
                master.write_all(b"\r\n+QIND: \"csq\",20,99\r\n").ok();
            }
        }
    }
}

fn answer(command: &str, echo: &mut bool, cops_format: &mut u8, quirks: &Quirks) -> Vec<String> {
    let ok = |lines: &[&str]| {
        let mut v: Vec<String> = lines.iter().map(|s| s.to_string()).collect();
        v.push("OK".into());
        v
    };
    match command {
        "AT" | "AT+CMEE=1" | "AT+CREG=2" | "AT+CEREG=2" => ok(&[]),
        "ATE0" => {
            if !quirks.sticky_echo {
                *echo = false;
            }
            ok(&[])
        }
        "AT+CMEE?" => ok(&["+CMEE: 1"]),
        "AT+CGMI" => ok(&["Quectel"]),
        "AT+CGSN" => ok(&["867698041234567"]),
        "AT+CIMI" => ok(&["262011234567890"]),
        // EC25 has no AT+CCID: +QCCID instead.
        "AT+CCID" => vec!["ERROR".into()],
        "AT+QCCID" => ok(&["+QCCID: 89490200001234567890"]),
        // Not a 5G module.
        "AT+C5GREG=2" | "AT+C5GREG?" => vec!["+CME ERROR: 4".into()],
        "AT+CSQ" => ok(&["+CSQ: 20,99"]),
        "AT+CESQ" => ok(&["+CESQ: 99,99,255,255,20,50"]),
        "AT+COPS=3,0" => {
            *cops_format = 0;
            ok(&[])
        }
        "AT+COPS=3,2" => {
            *cops_format = 2;
            ok(&[])
        }
        "AT+COPS?" if *cops_format == 2 => ok(&["+COPS: 0,2,\"26201\",7"]),
        "AT+COPS?" => ok(&["+COPS: 0,0,\"Telekom.de\",7"]),
        // The unsolicited form of the same prefix, just before the answer.
        "AT+CEREG?" => ok(&[
            "+CEREG: 1,\"3193\",\"08F381C5\",7",
            "+CEREG: 2,1,\"3193\",\"08F381C5\",7",
        ]),
        "AT+CREG?" => ok(&["+CREG: 2,1,\"3193\",\"08F381C5\",7"]),
        "AT+CGDCONT?" => ok(&[
            "+CGDCONT: 1,\"IP\",\"internet.telekom\",\"0.0.0.0\",0,0,0,0",
            "RING",
            "+CGDCONT: 2,\"IPV4V6\",\"ims\",\"0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0\",0,0,0,0",
        ]),
        "AT+CGPADDR" => ok(&["+CGPADDR: 1,\"10.45.12.7\"", "+CGPADDR: 2,\"0.0.0.0\""]),
        "AT+CGCONTRDP" => ok(&[
            "+CGCONTRDP: 1,5,\"internet.telekom\",\"10.45.12.7.255.255.255.0\",\"10.45.12.1\",\"8.8.8.8\",\"8.8.4.4\"",
        ]),
        "AT+QENG=\"servingcell\"" => ok(&[
            "\u{1}\u{7f}~~ garbage ~~",
            "+QENG: \"servingcell\",\"NOCONN\",\"LTE\",\"FDD\",262,01,8F381C5,107,1300,3,5,5,3193,-98,-13,-70,-3,0,0,21",
        ]),
        "AT+QCSQ" => ok(&["+QCSQ: \"LTE\",-66,-94,142,-9"]),
        "AT+LATE" => ok(&["+LATE: 1"]),
        "AT+CPIN?" => vec!["+CME ERROR: 10".into()],
        _ => vec!["ERROR".into()],
    }
}

fn quirky() -> Quirks {
    Quirks {
        sticky_echo: true,
        slow: HashMap::from([
            ("AT+QENG=\"servingcell\"", Duration::from_millis(1500)),
            ("AT+LATE", Duration::from_secs(3)),
        ]),
    }
}

fn check_status(modem: &mut AtModem) {
    let s = modem.poll().expect("a poll of the simulated modem");
    assert_eq!(s.manufacturer.as_deref(), Some("Quectel"));
    assert_eq!(s.vendor, Some(Vendor::Quectel));
    assert_eq!(s.imei.as_deref(), Some("867698041234567"));
    assert_eq!(s.imsi.as_deref(), Some("262011234567890"));
    assert_eq!(s.iccid.as_deref(), Some("89490200001234567890"));
    assert_eq!(s.operator.as_deref(), Some("Telekom.de"));
    assert_eq!((s.mcc, s.mnc), (Some(262), Some(1)));
    assert_eq!(s.registration, Some(RegistrationState::Home));
    assert_eq!(s.access_technology, Some(AccessTechnology::Eutran));
    assert_eq!(s.rssi_dbm, Some(-73));
    // From QENG (measured), not the CESQ indexes.
    assert_eq!(s.rsrp_dbm, Some(-98.0));
    assert_eq!(s.rsrq_db, Some(-13.0));
    assert_eq!(s.snr_db, Some(-3.0));
    assert_eq!(s.cell_id, Some(0x08f3_81c5));
    assert_eq!(s.lac_tac, Some(0x3193));
    assert_eq!(s.apn.as_deref(), Some("internet.telekom"));
    assert_eq!(
        s.ip_addresses,
        vec!["10.45.12.7".parse::<std::net::IpAddr>().unwrap()]
    );
    assert_eq!(s.gateway, Some("10.45.12.1".parse().unwrap()));
}

#[test]
fn status_from_a_quirky_modem() {
    let sim = Sim::start(quirky());
    let mut modem = AtModem::new(sim.slave_path.clone(), 115_200);
    check_status(&mut modem);
    let urcs = modem.port().take_unsolicited();
    for expected in [
        "+CEREG: 1,\"3193\",\"08F381C5\",7",
        "RING",
        "+QIND: \"csq\",20,99",
    ] {
        assert!(
            urcs.iter().any(|u| u == expected),
            "{expected} not among {urcs:?}"
        );
    }
    assert!(
        !urcs
            .iter()
            .any(|u| u.starts_with("+CSQ") || u.starts_with("+QENG")),
        "{urcs:?}"
    );
    // Again on the same open port: the setup is not repeated, the answers still match.
    check_status(&mut modem);
}

#[test]
fn error_codes_timeouts_and_a_late_answer() {
    let sim = Sim::start(quirky());
    let mut port = AtPort::new(sim.slave_path.clone(), 115_200);
    match port.command("AT+CPIN?", Duration::from_secs(10)) {
        Err(AtError::Command { error, .. }) => {
            assert_eq!(error, CommandError::Cme(ErrorCode::Numeric(10)));
            assert_eq!(error.to_string(), "+CME ERROR: 10 (SIM not inserted)");
        }
        other => panic!("expected +CME ERROR: 10, got {other:?}"),
    }
    assert!(matches!(
        port.command("AT+NOSUCH", Duration::from_secs(10)),
        Err(AtError::Command {
            error: CommandError::Error,
            ..
        })
    ));
    // The answer comes after the timeout; it must not be taken for the next command's.
    assert!(matches!(
        port.command("AT+LATE", Duration::from_millis(500)),
        Err(AtError::Timeout { .. })
    ));
    let answer = port
        .command("AT+CSQ", Duration::from_secs(10))
        .expect("AT+CSQ");
    assert_eq!(answer, vec!["+CSQ: 20,99".to_string()]);
    let answer = port
        .command("AT+CGSN", Duration::from_secs(10))
        .expect("AT+CGSN");
    assert_eq!(answer, vec!["867698041234567".to_string()]);
}

#[test]
fn a_port_that_vanishes_and_returns() {
    let dir = tempfile::tempdir().expect("temporary directory");
    // A stable name for a device that re-enumerates, as a udev symlink would give.
    let link = dir.path().join("ttyMODEM");
    let plug = |sim: &Sim, link: &Path| {
        std::os::unix::fs::symlink(&sim.slave_path, link).expect("symlink");
    };
    let no_echo = || Quirks {
        sticky_echo: false,
        slow: HashMap::new(),
    };

    let sim = Sim::start(no_echo());
    plug(&sim, &link);
    let mut modem = AtModem::new(link.clone(), 115_200);
    check_status(&mut modem);
    let first = modem.port().generation();

    sim.unplug();
    std::fs::remove_file(&link).expect("unplug");
    let gone = modem.poll();
    assert!(gone.is_err(), "a poll of an unplugged modem gave {gone:?}");
    assert!(!modem.port().is_open());
    // Still gone: the backend keeps failing without blocking.
    assert!(modem.poll().is_err());

    let sim = Sim::start(no_echo());
    plug(&sim, &link);
    let deadline = Instant::now() + WITHIN;
    loop {
        match modem.poll() {
            Ok(_) => break,
            Err(e) => {
                assert!(Instant::now() < deadline, "never came back: {e}");
                std::thread::sleep(Duration::from_millis(200));
            }
        }
    }
    assert_ne!(modem.port().generation(), first);
    check_status(&mut modem);
}
