//! Benchmark of the release daemon against an impersonated LwM2M server on loopback.
//!
//! `cargo run --release --example bench -- [PATH-TO-lwm2md]` (default target/release/lwm2md)
//! prints the figures DESIGN.md budgets: time from start to Register, RSS registered and
//! idle, idle wake-ups, Read /3/0 throughput, and checks the De-register on SIGTERM; then
//! the same start over DTLS 1.2 with a pre-shared key (the server side is OpenSSL in this
//! process): time from start to the Register received through the session (handshake
//! included) and RSS registered over DTLS.
//! Figures, not assertions: the exit status is non-zero only when the daemon misbehaves
//! (no Register, no De-register, a failing exit), never because a budget is exceeded.

use std::cell::RefCell;
use std::collections::HashMap;
use std::fs;
use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use coap_lite::{CoapOption, MessageClass, MessageType, Packet, RequestType, ResponseType};
use lwm2md::dtls::{Channel, DEFAULT_MTU};
use openssl::ssl::{ErrorCode, Ssl, SslContext, SslMethod, SslOptions, SslStream};

const STARTS: usize = 5;
/// Long enough for the start-up allocations to settle before the idle figures.
const SETTLE: Duration = Duration::from_secs(2);
const IDLE_WINDOW: Duration = Duration::from_secs(10);
const LOAD_TIME: Duration = Duration::from_secs(5);
/// A message ID must not be reused towards the daemon within EXCHANGE_LIFETIME (247 s) or
/// the request is answered from the deduplication cache: one run has 16 bits of IDs.
const MID_BUDGET: u32 = 65_000;
const WINDOWS: [usize; 2] = [1, 32];
const REPLY_TIMEOUT: Duration = Duration::from_secs(5);
const ENDPOINT: &str = "lwm2md-bench";
/// Observations established before the second idle measurement.
const OBSERVATIONS: u16 = 100;
const OBSERVED: [&[&str]; 5] = [
    &["3", "0", "0"],
    &["3", "0", "1"],
    &["3", "0", "2"],
    &["3", "0", "3"],
    &["1", "0", "1"],
];
/// Simulated sensors in the last run, for the RSS they cost.
const SENSORS: usize = 10;
const PSK_IDENTITY: &[u8] = b"lwm2md-bench";
// Not hex digits: the key file holds the raw bytes.
const PSK_KEY: &[u8] = b"lwm2md-bench-key";

fn main() -> ExitCode {
    let binary = std::env::args_os()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("target/release/lwm2md"));
    match run(&binary) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench: {e}");
            ExitCode::FAILURE
        }
    }
}

struct Figures {
    register_ms: Vec<f64>,
    rss_idle: Option<Memory>,
    wakeups: Option<(u64, Duration)>,
    /// Idle wake-ups with OBSERVATIONS observations in place (no pmax).
    wakeups_observed: Option<(u64, Duration)>,
    throughput: Vec<(usize, f64, u32, u32)>,
    rss_loaded: Option<Memory>,
    /// RSS registered and idle with `SENSORS` simulated sensors sampling.
    rss_sensors: Option<Memory>,
    /// Start to Register over DTLS-PSK (handshake included).
    dtls_register_ms: Vec<f64>,
    /// RSS registered and idle over DTLS-PSK.
    rss_dtls: Option<Memory>,
}

fn run(binary: &Path) -> Result<(), String> {
    if !binary.is_file() {
        return Err(format!(
            "{} not found: build it first (scripts/bench)",
            binary.display()
        ));
    }
    let dir = TempDir::new()?;
    let mut figures = Figures {
        register_ms: Vec::new(),
        rss_idle: None,
        wakeups: None,
        wakeups_observed: None,
        throughput: Vec::new(),
        rss_loaded: None,
        rss_sensors: None,
        dtls_register_ms: Vec::new(),
        rss_dtls: None,
    };
    for n in 0..STARTS {
        let last = n + 1 == STARTS;
        let mut server = FakeServer::bind()?;
        let mut daemon = Daemon::spawn(binary, &dir.path, server.port(), n, 0, false)?;
        let result = server
            .await_register()
            .map(|at| {
                figures
                    .register_ms
                    .push(ms(at.duration_since(daemon.started)))
            })
            .and_then(|()| {
                if last {
                    steady_state(&mut server, &daemon, &mut figures)
                } else {
                    Ok(())
                }
            })
            .and_then(|()| server.stop(&mut daemon));
        if let Err(e) = result {
            daemon.kill();
            return Err(format!("{e} (daemon log: {})", daemon.log.display()));
        }
    }
    // Sensor threads and the IPSO objects: the same daemon with sensors configured.
    let mut server = FakeServer::bind()?;
    let mut daemon = Daemon::spawn(binary, &dir.path, server.port(), STARTS, SENSORS, false)?;
    let result = server
        .await_register()
        .and_then(|_| {
            std::thread::sleep(SETTLE);
            figures.rss_sensors = Some(Memory::read(daemon.pid)?);
            Ok(())
        })
        .and_then(|()| server.stop(&mut daemon));
    if let Err(e) = result {
        daemon.kill();
        return Err(format!("{e} (daemon log: {})", daemon.log.display()));
    }
    // DTLS-PSK: a new server (and so a full handshake) for each start.
    for n in 0..STARTS {
        let last = n + 1 == STARTS;
        let mut server = FakeServer::bind_dtls()?;
        let mut daemon = Daemon::spawn(binary, &dir.path, server.port(), STARTS + 1 + n, 0, true)?;
        let result = server
            .await_register()
            .map(|at| {
                figures
                    .dtls_register_ms
                    .push(ms(at.duration_since(daemon.started)))
            })
            .and_then(|()| {
                if last {
                    std::thread::sleep(SETTLE);
                    figures.rss_dtls = Some(Memory::read(daemon.pid)?);
                }
                Ok(())
            })
            .and_then(|()| server.stop(&mut daemon));
        if let Err(e) = result {
            daemon.kill();
            return Err(format!("DTLS: {e} (daemon log: {})", daemon.log.display()));
        }
    }
    print_table(&figures, binary);
    Ok(())
}

fn steady_state(server: &mut FakeServer, daemon: &Daemon, f: &mut Figures) -> Result<(), String> {
    std::thread::sleep(SETTLE);
    f.rss_idle = Some(Memory::read(daemon.pid)?);
    let before = ContextSwitches::read(daemon.pid)?;
    let t0 = Instant::now();
    std::thread::sleep(IDLE_WINDOW);
    let after = ContextSwitches::read(daemon.pid)?;
    f.wakeups = Some((after.since(&before), t0.elapsed()));

    server.observe_many(OBSERVATIONS)?;
    std::thread::sleep(SETTLE);
    let before = ContextSwitches::read(daemon.pid)?;
    let t0 = Instant::now();
    std::thread::sleep(IDLE_WINDOW);
    let after = ContextSwitches::read(daemon.pid)?;
    f.wakeups_observed = Some((after.since(&before), t0.elapsed()));

    let mut mids_left = MID_BUDGET - u32::from(OBSERVATIONS);
    for (i, &window) in WINDOWS.iter().enumerate() {
        // Later runs get what the earlier ones left of the ID budget.
        let share = mids_left / u32::try_from(WINDOWS.len() - i).unwrap_or(1);
        let run = server.read_load(
            window,
            share,
            LOAD_TIME / u32::try_from(WINDOWS.len()).unwrap_or(1),
        )?;
        mids_left -= run.sent;
        f.throughput.push((window, run.rate, run.ok, run.sent));
    }
    f.rss_loaded = Some(Memory::read(daemon.pid)?);
    Ok(())
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn print_table(f: &Figures, binary: &Path) {
    let mut reg = f.register_ms.clone();
    reg.sort_by(f64::total_cmp);
    let median = reg.get(reg.len() / 2).copied().unwrap_or(f64::NAN);
    let min = reg.first().copied().unwrap_or(f64::NAN);
    let size = fs::metadata(binary).map(|m| m.len()).unwrap_or(0);
    let mb = |kib: u64| kib as f64 / 1024.0;

    let row =
        |name: &str, value: String, budget: &str| println!("{name:<44} {value:>14}   {budget}");
    row("figure", "value".into(), "budget");
    row(
        &format!("start -> Register, median of {}", reg.len()),
        format!("{median:.2} ms"),
        "< 10 ms",
    );
    row("start -> Register, min", format!("{min:.2} ms"), "< 10 ms");
    if let Some(m) = &f.rss_idle {
        row(
            "RSS registered, idle (VmRSS)",
            format!("{:.2} MB", mb(m.rss_kib)),
            "<= 4 MB",
        );
        row(
            "  of which anonymous (RssAnon)",
            format!("{:.2} MB", mb(m.anon_kib)),
            "",
        );
        row(
            "  of which file-backed (RssFile)",
            format!("{:.2} MB", mb(m.file_kib)),
            "",
        );
        row("peak RSS (VmHWM)", format!("{:.2} MB", mb(m.hwm_kib)), "");
    }
    if let Some((n, over)) = f.wakeups {
        row(
            &format!("idle wake-ups ({n} in {:.1} s)", over.as_secs_f64()),
            format!("{:.2} /s", n as f64 / over.as_secs_f64()),
            "0",
        );
    }
    if let Some((n, over)) = f.wakeups_observed {
        row(
            &format!(
                "  with {OBSERVATIONS} observations ({n} in {:.1} s)",
                over.as_secs_f64()
            ),
            format!("{:.2} /s", n as f64 / over.as_secs_f64()),
            "0",
        );
    }
    for (window, rate, ok, sent) in &f.throughput {
        row(
            &format!("Read /3/0, window {window} ({ok}/{sent} 2.05)"),
            format!("{rate:.0} req/s"),
            "",
        );
    }
    if let Some(m) = &f.rss_loaded {
        row(
            "RSS after the Read load (VmRSS)",
            format!("{:.2} MB", mb(m.rss_kib)),
            "",
        );
        row(
            "peak RSS after the load (VmHWM)",
            format!("{:.2} MB", mb(m.hwm_kib)),
            "",
        );
    }
    if let Some(m) = &f.rss_sensors {
        row(
            &format!("RSS with {SENSORS} sensors, 2 buses (VmRSS)"),
            format!("{:.2} MB", mb(m.rss_kib)),
            "",
        );
    }
    let mut dtls = f.dtls_register_ms.clone();
    dtls.sort_by(f64::total_cmp);
    if let Some(median) = dtls.get(dtls.len() / 2) {
        row(
            &format!("DTLS-PSK start -> Register, median of {}", dtls.len()),
            format!("{median:.2} ms"),
            "",
        );
    }
    if let Some(m) = &f.rss_dtls {
        row(
            "RSS registered over DTLS-PSK (VmRSS)",
            format!("{:.2} MB", mb(m.rss_kib)),
            "<= 4 MB",
        );
        row(
            "  of which anonymous (RssAnon)",
            format!("{:.2} MB", mb(m.anon_kib)),
            "",
        );
        row(
            "  of which file-backed (RssFile)",
            format!("{:.2} MB", mb(m.file_kib)),
            "",
        );
    }
    row("De-register on SIGTERM, exit 0", "yes".into(), "yes");
    row(
        "release binary size",
        format!("{:.2} MB", size as f64 / 1048576.0),
        "",
    );
}

struct TempDir {
    path: PathBuf,
}

impl TempDir {
    fn new() -> Result<TempDir, String> {
        let path = std::env::temp_dir().join(format!("lwm2md-bench-{}", std::process::id()));
        fs::create_dir_all(&path).map_err(|e| format!("creating {}: {e}", path.display()))?;
        Ok(TempDir { path })
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.path);
    }
}

struct Daemon {
    child: Child,
    pid: u32,
    started: Instant,
    log: PathBuf,
}

impl Daemon {
    /// `sensors`: how many simulated sensors, sampled every second on two buses.
    /// `psk`: over DTLS with `PSK_IDENTITY` and `PSK_KEY`.
    fn spawn(
        binary: &Path,
        dir: &Path,
        port: u16,
        n: usize,
        sensors: usize,
        psk: bool,
    ) -> Result<Daemon, String> {
        let config = dir.join(format!("lwm2md-{n}.toml"));
        let state = dir.join(format!("state-{n}"));
        let scheme = if psk { "coaps" } else { "coap" };
        let mut text = format!(
            "endpoint = \"{ENDPOINT}\"\nstate_dir = \"{}\"\n\n[device]\nreboot = \"none\"\n\n\
             [[server]]\nuri = \"{scheme}://127.0.0.1:{port}\"\nlifetime = 3600\n",
            state.display()
        );
        if psk {
            use std::os::unix::fs::PermissionsExt;
            let key = dir.join("psk.key");
            fs::write(&key, PSK_KEY).map_err(|e| format!("writing {}: {e}", key.display()))?;
            fs::set_permissions(&key, fs::Permissions::from_mode(0o600))
                .map_err(|e| format!("chmod {}: {e}", key.display()))?;
            text.push_str(&format!(
                "psk_identity = \"{}\"\npsk_key_file = \"{}\"\n",
                String::from_utf8_lossy(PSK_IDENTITY),
                key.display()
            ));
        }
        for i in 0..sensors {
            text.push_str(&format!(
                "\n[[sensor]]\nmodel = \"sim\"\nbus = \"sim-{}\"\naddress = {i}\n\
                 interval = 1\ninstance = {i}\n",
                i % 2
            ));
        }
        fs::write(&config, text).map_err(|e| format!("writing {}: {e}", config.display()))?;
        let log = dir.join(format!("lwm2md-{n}.log"));
        let stderr =
            fs::File::create(&log).map_err(|e| format!("creating {}: {e}", log.display()))?;
        let mut cmd = Command::new(binary);
        cmd.arg("--config")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr);
        // The daemon must neither log to the journal nor talk to a service manager here.
        for var in [
            "JOURNAL_STREAM",
            "NOTIFY_SOCKET",
            "WATCHDOG_USEC",
            "WATCHDOG_PID",
            "RUST_LOG",
        ] {
            cmd.env_remove(var);
        }
        let started = Instant::now();
        let child = cmd
            .spawn()
            .map_err(|e| format!("starting {}: {e}", binary.display()))?;
        Ok(Daemon {
            pid: child.id(),
            child,
            started,
            log,
        })
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct LoadRun {
    sent: u32,
    ok: u32,
    rate: f64,
}

/// The LwM2M server side: one UDP socket on loopback, optionally with an OpenSSL
/// DTLS-PSK session in front of the CoAP messages.
struct FakeServer {
    socket: UdpSocket,
    dtls: Option<RefCell<SslStream<Channel>>>,
    client: Option<SocketAddr>,
    location: Vec<u8>,
    next_mid: u16,
    next_token: u64,
    buf: Vec<u8>,
}

impl FakeServer {
    fn bind() -> Result<FakeServer, String> {
        let socket = UdpSocket::bind("127.0.0.1:0").map_err(|e| format!("binding: {e}"))?;
        socket
            .set_read_timeout(Some(REPLY_TIMEOUT))
            .map_err(|e| format!("socket: {e}"))?;
        Ok(FakeServer {
            socket,
            dtls: None,
            client: None,
            location: b"1".to_vec(),
            next_mid: 1,
            next_token: 1,
            buf: vec![0; 4096],
        })
    }

    /// A server that accepts one DTLS-PSK client (`PSK_IDENTITY`, `PSK_KEY`, CCM8).
    fn bind_dtls() -> Result<FakeServer, String> {
        let ssl_error = |e: openssl::error::ErrorStack| format!("OpenSSL: {e}");
        let mut ctx = SslContext::builder(SslMethod::dtls_server()).map_err(ssl_error)?;
        ctx.set_options(SslOptions::NO_QUERY_MTU);
        ctx.set_cipher_list("PSK-AES128-CCM8:@SECLEVEL=0")
            .map_err(ssl_error)?;
        ctx.set_psk_server_callback(|_, identity, key| {
            if identity != Some(PSK_IDENTITY) || key.len() < PSK_KEY.len() {
                return Ok(0);
            }
            key[..PSK_KEY.len()].copy_from_slice(PSK_KEY);
            Ok(PSK_KEY.len())
        });
        let ctx = ctx.build();
        let mut ssl = Ssl::new(&ctx).map_err(ssl_error)?;
        ssl.set_mtu(DEFAULT_MTU).map_err(ssl_error)?;
        ssl.set_accept_state();
        let stream = SslStream::new(ssl, Channel::default()).map_err(ssl_error)?;
        let mut server = FakeServer::bind()?;
        server.dtls = Some(RefCell::new(stream));
        Ok(server)
    }

    fn port(&self) -> u16 {
        self.socket.local_addr().map(|a| a.port()).unwrap_or(0)
    }

    fn recv(&mut self) -> Result<(Packet, SocketAddr, Instant), String> {
        loop {
            let (n, from) = self
                .socket
                .recv_from(&mut self.buf)
                .map_err(|e| format!("waiting for the daemon: {e}"))?;
            let at = Instant::now();
            let data = self.buf.get(..n).unwrap_or_default();
            let Some(dtls) = &self.dtls else {
                let packet =
                    Packet::from_bytes(data).map_err(|e| format!("unparsable datagram: {e:?}"))?;
                return Ok((packet, from, at));
            };
            let mut stream = dtls.borrow_mut();
            stream.get_mut().incoming.push_back(data.to_vec());
            let mut plaintext = vec![0u8; 4096];
            let read = stream.ssl_read(&mut plaintext);
            let flight: Vec<Vec<u8>> = stream.get_mut().outgoing.drain(..).collect();
            for d in flight {
                self.socket
                    .send_to(&d, from)
                    .map_err(|e| format!("sending: {e}"))?;
            }
            match read {
                Ok(n) => {
                    let packet = Packet::from_bytes(plaintext.get(..n).unwrap_or_default())
                        .map_err(|e| format!("unparsable datagram: {e:?}"))?;
                    return Ok((packet, from, at));
                }
                Err(e) if e.code() == ErrorCode::WANT_READ => {}
                Err(e) => return Err(format!("DTLS: {e}")),
            }
        }
    }

    fn send(&self, packet: &Packet, to: SocketAddr) -> Result<(), String> {
        let bytes = packet.to_bytes().map_err(|e| format!("encoding: {e:?}"))?;
        let datagrams = match &self.dtls {
            None => vec![bytes],
            Some(dtls) => {
                let mut stream = dtls.borrow_mut();
                stream.ssl_write(&bytes).map_err(|e| format!("DTLS: {e}"))?;
                stream.get_mut().outgoing.drain(..).collect()
            }
        };
        for d in datagrams {
            self.socket
                .send_to(&d, to)
                .map_err(|e| format!("sending: {e}"))?;
        }
        Ok(())
    }

    fn ack(
        &self,
        request: &Packet,
        code: ResponseType,
        to: SocketAddr,
        location: &[&[u8]],
    ) -> Result<(), String> {
        let mut p = Packet::new();
        p.header.set_type(MessageType::Acknowledgement);
        p.header.code = MessageClass::Response(code);
        p.header.message_id = request.header.message_id;
        p.set_token(request.get_token().to_vec());
        for seg in location {
            p.add_option(CoapOption::LocationPath, seg.to_vec());
        }
        self.send(&p, to)
    }

    /// The instant the Register (POST /rd) arrived; it is answered 2.01 with /rd/1.
    fn await_register(&mut self) -> Result<Instant, String> {
        loop {
            let (p, from, at) = self.recv()?;
            if p.header.code == MessageClass::Request(RequestType::Post)
                && uri_path(&p) == [b"rd".as_slice()]
            {
                let location = self.location.clone();
                self.ack(&p, ResponseType::Created, from, &[b"rd", &location])?;
                self.client = Some(from);
                return Ok(at);
            }
        }
    }

    /// SIGTERM, then the De-register (DELETE /rd/1) is answered 2.02 and the exit status
    /// must be 0.
    fn stop(&mut self, daemon: &mut Daemon) -> Result<(), String> {
        let status = Command::new("kill")
            .args(["-TERM", &daemon.pid.to_string()])
            .status()
            .map_err(|e| format!("running kill: {e}"))?;
        if !status.success() {
            return Err("kill -TERM failed".into());
        }
        loop {
            let (p, from, _) = self.recv().map_err(|e| format!("no De-register: {e}"))?;
            let path = uri_path(&p);
            if p.header.code == MessageClass::Request(RequestType::Delete)
                && path.len() == 2
                && path.first() == Some(&b"rd".as_slice())
                && path.get(1) == Some(&self.location.as_slice())
            {
                self.ack(&p, ResponseType::Deleted, from, &[])?;
                break;
            }
        }
        let deadline = Instant::now() + REPLY_TIMEOUT;
        loop {
            match daemon.child.try_wait() {
                Ok(Some(s)) if s.success() => return Ok(()),
                Ok(Some(s)) => return Err(format!("daemon exited with {s}")),
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(1))
                }
                Ok(None) => return Err("daemon did not exit after the De-register".into()),
                Err(e) => return Err(format!("waiting for the daemon: {e}")),
            }
        }
    }

    fn get_3_0(
        &mut self,
        to: SocketAddr,
        outstanding: &mut HashMap<u16, Vec<u8>>,
    ) -> Result<(), String> {
        let mut p = Packet::new();
        p.header.set_type(MessageType::Confirmable);
        p.header.code = MessageClass::Request(RequestType::Get);
        p.header.message_id = self.next_mid;
        let token = self.next_token.to_be_bytes().to_vec();
        p.set_token(token.clone());
        p.add_option(CoapOption::UriPath, b"3".to_vec());
        p.add_option(CoapOption::UriPath, b"0".to_vec());
        self.send(&p, to)?;
        outstanding.insert(self.next_mid, token);
        self.next_mid = self.next_mid.wrapping_add(1);
        self.next_token = self.next_token.wrapping_add(1);
        Ok(())
    }

    /// Establishes `n` observations (GET with Observe 0, one at a time, distinct tokens).
    fn observe_many(&mut self, n: u16) -> Result<(), String> {
        let to = self.client.ok_or("no registered client")?;
        for i in 0..n {
            let mut p = Packet::new();
            p.header.set_type(MessageType::Confirmable);
            p.header.code = MessageClass::Request(RequestType::Get);
            p.header.message_id = self.next_mid;
            p.set_token(self.next_token.to_be_bytes().to_vec());
            p.set_observe_value(0);
            for segment in OBSERVED[usize::from(i) % OBSERVED.len()] {
                p.add_option(CoapOption::UriPath, segment.as_bytes().to_vec());
            }
            self.send(&p, to)?;
            self.next_mid = self.next_mid.wrapping_add(1);
            self.next_token = self.next_token.wrapping_add(1);
            loop {
                let (reply, _, _) = self.recv()?;
                if reply.header.message_id == p.header.message_id {
                    if reply.get_observe_value().is_none() {
                        return Err(format!("observation {i} refused: {:?}", reply.header.code));
                    }
                    break;
                }
            }
        }
        Ok(())
    }

    /// Keeps `window` GET /3/0 outstanding for `time` or until `budget` were sent.
    fn read_load(&mut self, window: usize, budget: u32, time: Duration) -> Result<LoadRun, String> {
        let to = self.client.ok_or("no registered client")?;
        let mut outstanding: HashMap<u16, Vec<u8>> = HashMap::new();
        let (mut sent, mut ok) = (0u32, 0u32);
        let start = Instant::now();
        let mut last_reply = start;
        loop {
            let sending = start.elapsed() < time && sent < budget;
            while sending && outstanding.len() < window && sent < budget {
                self.get_3_0(to, &mut outstanding)?;
                sent += 1;
            }
            if outstanding.is_empty() {
                break;
            }
            match self.socket.recv_from(&mut self.buf) {
                Ok((n, _)) => {
                    let Ok(p) = Packet::from_bytes(self.buf.get(..n).unwrap_or_default()) else {
                        continue;
                    };
                    let mid = p.header.message_id;
                    if p.header.get_type() == MessageType::Acknowledgement
                        && outstanding.get(&mid).map(Vec::as_slice) == Some(p.get_token())
                    {
                        outstanding.remove(&mid);
                        last_reply = Instant::now();
                        if p.header.code == MessageClass::Response(ResponseType::Content) {
                            ok += 1;
                        }
                    }
                }
                Err(e) => {
                    return Err(format!(
                        "Read /3/0: {} of {sent} unanswered: {e}",
                        outstanding.len()
                    ))
                }
            }
        }
        let elapsed = last_reply.duration_since(start).as_secs_f64();
        Ok(LoadRun {
            sent,
            ok,
            rate: if elapsed > 0.0 {
                f64::from(ok) / elapsed
            } else {
                0.0
            },
        })
    }
}

fn uri_path(p: &Packet) -> Vec<&[u8]> {
    p.get_option(CoapOption::UriPath)
        .map(|l| l.iter().map(Vec::as_slice).collect())
        .unwrap_or_default()
}

struct Memory {
    rss_kib: u64,
    hwm_kib: u64,
    anon_kib: u64,
    file_kib: u64,
}

impl Memory {
    fn read(pid: u32) -> Result<Memory, String> {
        let status = fs::read_to_string(format!("/proc/{pid}/status"))
            .map_err(|e| format!("reading /proc/{pid}/status: {e}"))?;
        let field = |name: &str| -> Result<u64, String> {
            status_field(&status, name).ok_or_else(|| format!("no {name} in /proc/{pid}/status"))
        };
        Ok(Memory {
            rss_kib: field("VmRSS")?,
            hwm_kib: field("VmHWM")?,
            anon_kib: field("RssAnon")?,
            file_kib: field("RssFile")?,
        })
    }
}

/// Context switches summed over all the daemon's threads: each one is a wake-up.
struct ContextSwitches {
    per_thread: HashMap<String, u64>,
}

impl ContextSwitches {
    fn read(pid: u32) -> Result<ContextSwitches, String> {
        let dir = format!("/proc/{pid}/task");
        let mut per_thread = HashMap::new();
        for entry in fs::read_dir(&dir).map_err(|e| format!("reading {dir}: {e}"))? {
            let Ok(entry) = entry else { continue };
            // A thread may exit between the listing and the read.
            let Ok(status) = fs::read_to_string(entry.path().join("status")) else {
                continue;
            };
            let n = status_field(&status, "voluntary_ctxt_switches").unwrap_or(0)
                + status_field(&status, "nonvoluntary_ctxt_switches").unwrap_or(0);
            per_thread.insert(entry.file_name().to_string_lossy().into_owned(), n);
        }
        Ok(ContextSwitches { per_thread })
    }

    /// Switches since `earlier`; a thread that appeared counts whole. A thread that exited
    /// in between is lost, but its exit itself was a wake-up, counted as one.
    fn since(&self, earlier: &ContextSwitches) -> u64 {
        let mut total = 0;
        for (tid, &n) in &self.per_thread {
            total += n.saturating_sub(earlier.per_thread.get(tid).copied().unwrap_or(0));
        }
        total
            + earlier
                .per_thread
                .keys()
                .filter(|tid| !self.per_thread.contains_key(*tid))
                .count() as u64
    }
}

fn status_field(status: &str, name: &str) -> Option<u64> {
    status.lines().find_map(|line| {
        let rest = line.strip_prefix(name)?.strip_prefix(':')?;
        rest.split_whitespace().next()?.parse().ok()
    })
}
