//! `lwm2md check`: everything the daemon needs, tested one item at a time, each with a
//! remedy when it fails, in the spirit of `iotedge check`.
//!
//! Backend probes are entries of [`BACKEND_PROBES`]: a backend that can be probed adds
//! one function there.

use std::future::Future;
use std::net::SocketAddr;
use std::path::Path as FsPath;
use std::pin::Pin;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::net::UdpSocket;

use crate::cli::OutputFormat;
use crate::config::{self, AccountSecurity, Config, RebootMethod, ServerAccount};
use crate::dtls::{Credentials, DtlsClient, DtlsConfig, DtlsError, DtlsSession};
use crate::state::StateDir;

/// Name resolution that takes longer than this is as good as broken on a gateway.
const DNS_TIMEOUT: Duration = Duration::from_secs(15);
/// A CoAP ping is retransmitted this many times (ACK_TIMEOUT doubling) before giving up:
/// enough for a lost datagram, short enough for an operator waiting at a console.
const PING_TRANSMISSIONS: u32 = 3;
/// The longest a DTLS handshake may take.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(20);
/// The D-Bus policy the package installs; without it `lwm2md status` cannot work.
const DBUS_POLICY: &str = "/usr/share/dbus-1/system.d/org.lwm2md.Daemon.conf";
/// The user the packaged unit runs the daemon as.
const DAEMON_USER: &str = "lwm2md";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Ok,
    Warning,
    Error,
}

impl Level {
    fn as_str(self) -> &'static str {
        match self {
            Level::Ok => "ok",
            Level::Warning => "warning",
            Level::Error => "error",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    pub name: String,
    pub status: Level,
    pub detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remedy: Option<String>,
}

impl Check {
    fn ok(name: impl Into<String>, detail: impl Into<String>) -> Check {
        Check {
            name: name.into(),
            status: Level::Ok,
            detail: detail.into(),
            remedy: None,
        }
    }

    fn warning(
        name: impl Into<String>,
        detail: impl Into<String>,
        remedy: impl Into<String>,
    ) -> Check {
        Check {
            name: name.into(),
            status: Level::Warning,
            detail: detail.into(),
            remedy: Some(remedy.into()),
        }
    }

    fn error(
        name: impl Into<String>,
        detail: impl Into<String>,
        remedy: impl Into<String>,
    ) -> Check {
        Check {
            name: name.into(),
            status: Level::Error,
            detail: detail.into(),
            remedy: Some(remedy.into()),
        }
    }
}

#[derive(Debug, Serialize)]
struct Report {
    ok: bool,
    errors: usize,
    warnings: usize,
    checks: Vec<Check>,
}

type ProbeFuture<'a> = Pin<Box<dyn Future<Output = Option<Check>> + 'a>>;
/// Looks at the configuration and, when its backend is in use, probes it.
type BackendProbe = for<'a> fn(&'a Config) -> ProbeFuture<'a>;

const BACKEND_PROBES: &[BackendProbe] = &[
    system_bus,
    dbus_policy,
    i2c_buses,
    modem_manager,
    gpsd,
    rauc,
];

pub async fn run(config_path: &FsPath, output: OutputFormat) -> ExitCode {
    let checks = check_all(config_path).await;
    let errors = checks.iter().filter(|c| c.status == Level::Error).count();
    let warnings = checks.iter().filter(|c| c.status == Level::Warning).count();
    match output {
        OutputFormat::Human => {
            for c in &checks {
                println!("{:<7}  {}: {}", c.status.as_str(), c.name, c.detail);
                if let (Level::Error | Level::Warning, Some(remedy)) = (c.status, &c.remedy) {
                    println!("{:9}remedy: {remedy}", "");
                }
            }
            println!("{errors} error(s), {warnings} warning(s)");
        }
        OutputFormat::Json => {
            let report = Report {
                ok: errors == 0,
                errors,
                warnings,
                checks,
            };
            match serde_json::to_string_pretty(&report) {
                Ok(text) => println!("{text}"),
                Err(e) => {
                    eprintln!("lwm2md: {e}");
                    return ExitCode::FAILURE;
                }
            }
        }
    }
    if errors == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

pub async fn check_all(config_path: &FsPath) -> Vec<Check> {
    let mut checks = Vec::new();
    let name = "config";
    let text = match std::fs::read_to_string(config_path) {
        Ok(t) => t,
        Err(e) => {
            checks.push(Check::error(
                name,
                format!("{}: cannot read: {e}", config_path.display()),
                "create it (the package ships /etc/lwm2md/lwm2md.toml) or name another with --config",
            ));
            return checks;
        }
    };
    let unchecked = match Config::parse_unchecked(config_path, &text) {
        Ok(c) => c,
        Err(e) => {
            checks.push(Check::error(
                name,
                e.to_string(),
                "fix the file at the line and column given; every key is described in the \
                 commented /etc/lwm2md/lwm2md.toml",
            ));
            return checks;
        }
    };
    let config = match Config::parse(config_path, &text) {
        Ok(c) => {
            checks.push(Check::ok(
                name,
                format!(
                    "{} is valid ({} server{})",
                    config_path.display(),
                    c.servers.len(),
                    if c.servers.len() == 1 { "" } else { "s" }
                ),
            ));
            Some(c)
        }
        Err(e) => {
            checks.push(Check::error(
                name,
                e.to_string(),
                "correct the value named; every key is described in the commented \
                 /etc/lwm2md/lwm2md.toml",
            ));
            None
        }
    };
    checks.extend(key_files(&unchecked));
    checks.push(state_dir(&unchecked.state_dir));
    match &config {
        Some(config) => match config.accounts() {
            Ok(accounts) => {
                for account in &accounts {
                    checks.extend(server(config, account).await);
                }
            }
            Err(e) => checks.push(Check::error("servers", e, "correct the [[server]] table")),
        },
        None => checks.push(Check::warning(
            "servers",
            "not contacted: the configuration is not valid",
            "fix the configuration, then run lwm2md check again",
        )),
    }
    for probe in BACKEND_PROBES {
        if let Some(c) = probe(&unchecked).await {
            checks.push(c);
        }
    }
    checks
}

/// The uid of the daemon's user, when it exists here (the package made it).
fn daemon_uid() -> Option<u32> {
    let name = std::ffi::CString::new(DAEMON_USER).ok()?;
    // SAFETY: getpwnam takes a NUL-terminated string and returns NULL or a pointer to a
    // static record, read at once before any other passwd call.
    let pw = unsafe { libc::getpwnam(name.as_ptr()) };
    if pw.is_null() {
        return None;
    }
    // SAFETY: non-NULL: a valid passwd record.
    Some(unsafe { (*pw).pw_uid })
}

fn key_files(config: &Config) -> Vec<Check> {
    use std::os::unix::fs::MetadataExt;
    let mut out = Vec::new();
    let secrets = config.servers.iter().enumerate().flat_map(|(n, s)| {
        [
            ("psk_key_file", &s.psk_key_file),
            ("private_key_file", &s.private_key_file),
        ]
        .into_iter()
        .filter_map(move |(key, file)| file.as_ref().map(|f| (n, key, f)))
    });
    for (n, key, file) in secrets {
        let name = format!("{key} server {}", n + 1);
        let shown = file.display();
        let meta = match std::fs::metadata(file) {
            Ok(m) => m,
            Err(e) => {
                out.push(Check::error(
                    name,
                    format!("{shown}: {e}"),
                    format!(
                        "write the key (hex) into {shown}, then chmod 600 {shown} and chown {DAEMON_USER}: {shown}"
                    ),
                ));
                continue;
            }
        };
        let mode = meta.mode() & 0o777;
        if !meta.is_file() {
            out.push(Check::error(
                name,
                format!("{shown} is not a regular file"),
                "name the file holding the key",
            ));
        } else if mode & 0o077 != 0 {
            out.push(Check::error(
                name,
                format!("{shown} is readable by group or others (mode {mode:03o})"),
                format!("chmod 600 {shown}"),
            ));
        } else if let Some(uid) = daemon_uid().filter(|uid| *uid != meta.uid()) {
            out.push(Check::error(
                name,
                format!(
                    "{shown} belongs to uid {}, so the daemon (user {DAEMON_USER}, uid {uid}) cannot read it",
                    meta.uid()
                ),
                format!("chown {DAEMON_USER}: {shown}"),
            ));
        } else if meta.len() == 0 {
            out.push(Check::error(
                name,
                format!("{shown} is empty"),
                format!("write the key (hex) into {shown}"),
            ));
        } else {
            out.push(Check::ok(
                name,
                format!("{shown} is private (mode {mode:03o})"),
            ));
        }
    }
    out
}

fn state_dir(dir: &FsPath) -> Check {
    use std::os::unix::fs::MetadataExt;
    let name = "state_dir";
    let shown = dir.display();
    let is_default = dir == FsPath::new(config::DEFAULT_STATE_DIR);
    let meta = match std::fs::metadata(dir) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && is_default => {
            return Check::warning(
                name,
                format!("{shown} does not exist yet"),
                "systemd makes it when the unit starts (StateDirectory=lwm2md); \
                 outside systemd: install -d -o lwm2md -m 750 /var/lib/lwm2md",
            )
        }
        Err(e) => {
            return Check::error(
                name,
                format!("{shown}: {e}"),
                format!("install -d -o {DAEMON_USER} -m 750 {shown}"),
            )
        }
    };
    if !meta.is_dir() {
        return Check::error(
            name,
            format!("{shown} is not a directory"),
            "set state_dir to a directory",
        );
    }
    if let Some(uid) = daemon_uid().filter(|uid| *uid != meta.uid()) {
        let detail = format!(
            "{shown} belongs to uid {}, not to the daemon's user {DAEMON_USER} (uid {uid})",
            meta.uid()
        );
        let remedy = format!("chown -R {DAEMON_USER}: {shown}");
        // systemd hands StateDirectory= to the unit's user at each start.
        return if is_default {
            Check::warning(
                name,
                detail,
                format!("{remedy} (systemd also does at the next start)"),
            )
        } else {
            Check::error(name, detail, remedy)
        };
    }
    let probe = format!(".check-{}", std::process::id());
    let state = StateDir::new(dir);
    match state
        .write(&probe, b"lwm2md check\n")
        .and_then(|()| state.remove(&probe))
    {
        Ok(()) => Check::ok(name, format!("{shown} is writable")),
        Err(e) => Check::error(
            name,
            format!("cannot write in {shown}: {e}"),
            format!("chown -R {DAEMON_USER}: {shown} && chmod 750 {shown}"),
        ),
    }
}

/// Name resolution, then a CoAP ping (coap://) or a DTLS handshake (coaps://).
async fn server(config: &Config, account: &ServerAccount) -> Vec<Check> {
    let ssid = account.short_server_id;
    let dns_name = format!("dns server {ssid}");
    let lookup = tokio::time::timeout(
        DNS_TIMEOUT,
        tokio::net::lookup_host((account.host.as_str(), account.port)),
    )
    .await;
    let addr = match lookup {
        Ok(Ok(mut addrs)) => addrs.next(),
        Ok(Err(e)) => {
            return vec![Check::error(
                dns_name,
                format!("{} does not resolve: {e}", account.host),
                "check the host name in the server's uri and the resolver (/etc/resolv.conf, \
                 resolvectl status)",
            )]
        }
        Err(_) => {
            return vec![Check::error(
                dns_name,
                format!(
                    "{}: no answer within {} s",
                    account.host,
                    DNS_TIMEOUT.as_secs()
                ),
                "check the resolver (/etc/resolv.conf, resolvectl status) and the network",
            )]
        }
    };
    let Some(addr) = addr else {
        return vec![Check::error(
            dns_name,
            format!("{} has no address", account.host),
            "check the host name in the server's uri",
        )];
    };
    let mut out = vec![Check::ok(
        dns_name,
        format!("{} is {}", account.host, addr.ip()),
    )];
    let ping_name = format!("coap ping server {ssid}");
    let socket = match connected_socket(addr).await {
        Ok(s) => s,
        Err(e) => {
            out.push(Check::error(
                ping_name,
                format!("{addr}: {e}"),
                "check the network configuration",
            ));
            return out;
        }
    };
    let dtls = match &account.security {
        AccountSecurity::NoSec => None,
        AccountSecurity::Psk(psk) => Some(DtlsConfig::psk(
            psk.identity.as_bytes().to_vec(),
            psk.key.clone(),
        )),
        AccountSecurity::Certificate(certs) => Some(DtlsConfig::certificate(certs.clone())),
        AccountSecurity::RawPublicKey(k) => Some(DtlsConfig {
            credentials: Credentials::RawPublicKey(k.clone()),
            mtu: crate::dtls::DEFAULT_MTU,
            handshake_timeout: crate::dtls::DEFAULT_HANDSHAKE_TIMEOUT,
        }),
    };
    let link = match dtls {
        None => Link::Plain(socket),
        Some(mut dtls) => {
            dtls.handshake_timeout = HANDSHAKE_TIMEOUT;
            let (check, session) = handshake(account, addr, &socket, &dtls).await;
            out.push(check);
            match session {
                Some(session) => Link::Dtls(socket, Box::new(session)),
                None => return out,
            }
        }
    };
    out.push(ping(config, account, addr, link).await);
    out
}

async fn connected_socket(addr: SocketAddr) -> std::io::Result<UdpSocket> {
    let local = if addr.is_ipv4() {
        "0.0.0.0:0"
    } else {
        "[::]:0"
    };
    let socket = UdpSocket::bind(local).await?;
    socket.connect(addr).await?;
    Ok(socket)
}

/// Where a CoAP ping goes: straight to the server, or through the DTLS session with it.
enum Link {
    Plain(UdpSocket),
    Dtls(UdpSocket, Box<DtlsSession>),
}

#[derive(Debug)]
enum LinkError {
    Io(std::io::Error),
    Dtls(DtlsError),
}

impl std::fmt::Display for LinkError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LinkError::Io(e) => e.fmt(f),
            LinkError::Dtls(e) => e.fmt(f),
        }
    }
}

impl Link {
    async fn send(&mut self, datagram: &[u8]) -> Result<(), LinkError> {
        match self {
            Link::Plain(socket) => socket.send(datagram).await.map(drop).map_err(LinkError::Io),
            Link::Dtls(socket, session) => {
                session.send(datagram).map_err(LinkError::Dtls)?;
                while let Some(record) = session.poll_transmit() {
                    socket.send(&record).await.map_err(LinkError::Io)?;
                }
                Ok(())
            }
        }
    }

    /// The plaintext datagrams the next datagram from the server carried.
    async fn recv(&mut self, buf: &mut [u8]) -> Result<Vec<Vec<u8>>, LinkError> {
        match self {
            Link::Plain(socket) => {
                let n = socket.recv(buf).await.map_err(LinkError::Io)?;
                Ok(vec![buf.get(..n).unwrap_or_default().to_vec()])
            }
            Link::Dtls(socket, session) => {
                let n = socket.recv(buf).await.map_err(LinkError::Io)?;
                session
                    .handle_datagram(buf.get(..n).unwrap_or_default())
                    .map_err(LinkError::Dtls)
            }
        }
    }
}

/// An empty confirmable message, which a CoAP endpoint answers with a Reset (RFC 7252
/// 4.3, "CoAP ping"); over DTLS it also shows that the session carries data both ways.
async fn ping(config: &Config, account: &ServerAccount, addr: SocketAddr, mut link: Link) -> Check {
    let name = format!("coap ping server {}", account.short_server_id);
    let over = match link {
        Link::Plain(_) => "",
        Link::Dtls(..) => " over DTLS",
    };
    let id: u16 = rand::random();
    let [hi, lo] = id.to_be_bytes();
    let ping = [0x40, 0x00, hi, lo];
    let mut wait = Duration::from_secs_f64(config.coap.ack_timeout);
    let mut buf = vec![0u8; 17 * 1024];
    let started = Instant::now();
    for _ in 0..PING_TRANSMISSIONS {
        if let Err(e) = link.send(&ping).await {
            return unreachable(name, account, addr, &e);
        }
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let datagrams = match tokio::time::timeout_at(deadline, link.recv(&mut buf)).await {
                Err(_) => break,
                Ok(Err(e)) => return unreachable(name, account, addr, &e),
                Ok(Ok(d)) => d,
            };
            // A Reset (type 3) or an empty ACK with our message ID.
            let answered = datagrams.iter().any(|d| match d.as_slice() {
                [first, 0x00, h, l, ..] => {
                    first >> 6 == 1 && (first >> 4) & 3 >= 2 && [*h, *l] == [hi, lo]
                }
                _ => false,
            });
            if answered {
                return Check::ok(
                    name,
                    format!(
                        "{addr} answered a CoAP ping{over} in {} ms",
                        started.elapsed().as_millis()
                    ),
                );
            }
        }
        wait *= 2;
    }
    Check::error(
        name,
        format!("{addr}: no answer to a CoAP ping{over} ({PING_TRANSMISSIONS} tries)"),
        format!(
            "check that the server runs and that UDP port {} is open on the way (firewall, NAT)",
            addr.port()
        ),
    )
}

fn unreachable(name: String, account: &ServerAccount, addr: SocketAddr, e: &LinkError) -> Check {
    let remedy = match e {
        LinkError::Io(io) if io.kind() == std::io::ErrorKind::ConnectionRefused => format!(
            "nothing listens on UDP port {} of {}: check the port in {} and that the server runs",
            addr.port(),
            addr.ip(),
            account.uri
        ),
        LinkError::Io(_) => "check the network configuration and the route to the server".into(),
        LinkError::Dtls(_) => "the server ended the DTLS session: check its log".into(),
    };
    Check::error(name, format!("{addr}: {e}"), remedy)
}

/// A full DTLS handshake with the configured identity and key; the session when it
/// succeeded.
async fn handshake(
    account: &ServerAccount,
    addr: SocketAddr,
    socket: &UdpSocket,
    dtls: &DtlsConfig,
) -> (Check, Option<DtlsSession>) {
    let name = format!("dtls server {}", account.short_server_id);
    let (identity, key_remedy) = match &dtls.credentials {
        Credentials::Psk { identity, .. } => {
            let identity = format!("{:?}", String::from_utf8_lossy(identity));
            let remedy = format!(
                "make sure the server holds the same key for the PSK identity {identity} as psk_key_file"
            );
            (identity, remedy)
        }
        Credentials::Certificate(_) => (
            "certificate_file".to_string(),
            "make sure the server trusts certificate_file and that server_certificate_file, \
             certificate_usage and trust_store describe the server's certificate"
                .to_string(),
        ),
        Credentials::RawPublicKey(_) => (
            "private_key_file".to_string(),
            "make sure the server holds the public key of private_key_file for this client \
             and that server_public_key_file is the server's public key"
                .to_string(),
        ),
    };
    let started = Instant::now();
    let connected = DtlsClient::new(dtls).and_then(|client| client.connect(started));
    let mut session = match connected {
        Ok(s) => s,
        Err(e) => {
            let check = Check::error(name, e.to_string(), "check the OpenSSL installation");
            return (check, None);
        }
    };
    let mut buf = vec![0u8; 17 * 1024];
    loop {
        while let Some(datagram) = session.poll_transmit() {
            if let Err(e) = socket.send(&datagram).await {
                return (unreachable(name, account, addr, &LinkError::Io(e)), None);
            }
        }
        if session.is_established() {
            let check = Check::ok(
                name,
                format!(
                    "DTLS handshake with {addr} as {identity} in {} ms ({})",
                    started.elapsed().as_millis(),
                    session.cipher().unwrap_or("?")
                ),
            );
            return (check, Some(session));
        }
        let wake = session
            .poll_timeout()
            .unwrap_or_else(|| Instant::now() + HANDSHAKE_TIMEOUT);
        let failed = tokio::select! {
            r = socket.recv(&mut buf) => match r {
                Ok(n) => session
                    .handle_datagram(buf.get(..n).unwrap_or_default())
                    .err()
                    .map(|e| Check::error(name.clone(), e.to_string(), key_remedy.clone())),
                Err(e) => Some(unreachable(name.clone(), account, addr, &LinkError::Io(e))),
            },
            _ = tokio::time::sleep_until(wake.into()) => {
                session.handle_timeout(Instant::now()).err().map(|e| {
                    let remedy = match e {
                        DtlsError::HandshakeTimeout { server_answered: false } => format!(
                            "check that the server runs and that UDP port {} is open on the way",
                            addr.port()
                        ),
                        _ => key_remedy.clone(),
                    };
                    Check::error(name.clone(), e.to_string(), remedy)
                })
            }
        };
        if let Some(check) = failed {
            return (check, None);
        }
    }
}

/// Reboot, clock and time zone go through logind and timedated on the system bus.
fn system_bus(config: &Config) -> ProbeFuture<'_> {
    Box::pin(async move {
        let name = "system bus";
        let address = backends::system::SystemBus::from_env().address().to_owned();
        let connection = async {
            zbus::connection::Builder::address(address.as_str())?
                .build()
                .await
        }
        .await;
        let needs_logind = config.device.reboot == RebootMethod::Logind;
        let connection = match connection {
            Ok(c) => c,
            Err(e) => {
                let detail = format!("{address}: {e}");
                let remedy = "start D-Bus (apt install dbus; systemctl start dbus)";
                return Some(if needs_logind {
                    Check::error(
                        name,
                        detail,
                        format!("{remedy}, or set device.reboot = \"none\""),
                    )
                } else {
                    Check::warning(
                        name,
                        format!("{detail}; writes of the clock and time zone will fail"),
                        remedy,
                    )
                });
            }
        };
        let services = [
            ("org.freedesktop.login1", "logind", needs_logind),
            ("org.freedesktop.timedate1", "timedated", true),
        ];
        let mut missing = Vec::new();
        for (bus_name, short, wanted) in services {
            if wanted && !available(&connection, bus_name).await {
                missing.push(short);
            }
        }
        Some(if missing.is_empty() {
            Check::ok(name, format!("{address}: logind and timedated available"))
        } else {
            Check::warning(
                name,
                format!("{address}: no {} on the bus", missing.join(" nor ")),
                "reboots and clock or time zone writes need systemd's logind and timedated \
                 (apt install systemd libpam-systemd); set device.reboot = \"none\" without them",
            )
        })
    })
}

/// Owned now, or started by the bus on the first call.
async fn available(connection: &zbus::Connection, name: &str) -> bool {
    let Ok(dbus) = zbus::fdo::DBusProxy::new(connection).await else {
        return false;
    };
    let Ok(bus_name) = zbus::names::BusName::try_from(name) else {
        return false;
    };
    if dbus.name_has_owner(bus_name).await.unwrap_or(false) {
        return true;
    }
    dbus.list_activatable_names()
        .await
        .is_ok_and(|names| names.iter().any(|n| n.as_str() == name))
}

/// `lwm2md status` reaches the daemon only with the shipped bus policy in place.
fn dbus_policy(_config: &Config) -> ProbeFuture<'_> {
    Box::pin(async move {
        let name = "dbus policy";
        Some(if FsPath::new(DBUS_POLICY).is_file() {
            Check::ok(name, format!("{DBUS_POLICY} is installed"))
        } else {
            Check::warning(
                name,
                format!("{DBUS_POLICY} is missing: the daemon cannot own its bus name"),
                "install the lwm2md package (it ships the policy); lwm2md status and \
                 applications owning resources (org.lwm2md.Application1) need it",
            )
        })
    })
}

/// Each I2C bus a configured sensor is on must exist (simulated sensors and buses need
/// none).
fn i2c_buses(config: &Config) -> ProbeFuture<'_> {
    Box::pin(async move {
        let mut buses: Vec<&str> = config
            .sensors
            .iter()
            .map(|s| s.get_ref())
            .filter(|s| s.model != config::SensorModel::Sim)
            .map(|s| s.bus.as_str())
            .filter(|b| !backends::sensor::is_simulated_bus(b))
            .collect();
        buses.sort_unstable();
        buses.dedup();
        if buses.is_empty() {
            return None;
        }
        let missing: Vec<&str> = buses
            .iter()
            .copied()
            .filter(|b| !FsPath::new(b).exists())
            .collect();
        Some(if missing.is_empty() {
            Check::ok("i2c", format!("{} present", buses.join(", ")))
        } else {
            Check::error(
                "i2c",
                format!("{} missing", missing.join(", ")),
                "enable the I2C bus (Raspberry Pi: dtparam=i2c_arm=on in config.txt) and \
                 load i2c-dev (modprobe i2c-dev)",
            )
        })
    })
}

/// With `backend = "modemmanager"`: ModemManager answers and sees a modem.
fn modem_manager(config: &Config) -> ProbeFuture<'_> {
    Box::pin(async move {
        if config.connectivity.backend != config::ConnectivityBackend::Modemmanager {
            return None;
        }
        let name = "modemmanager";
        let address = backends::system::SystemBus::from_env().address().to_owned();
        let result = tokio::time::timeout(DNS_TIMEOUT, async {
            let mm = backends::modem::mm::ModemManager::connect(&address).await?;
            mm.first_modem().await
        })
        .await;
        Some(match result {
            Ok(Ok(modem)) => Check::ok(name, format!("ModemManager manages {}", modem.as_str())),
            Ok(Err(e)) => Check::error(
                name,
                e.to_string(),
                "start ModemManager (systemctl start ModemManager) and check that it sees \
                 the modem (mmcli -L)",
            ),
            Err(_) => Check::error(name, "no answer", "check ModemManager (mmcli -L)"),
        })
    })
}

/// With a `[location]` table using gpsd: gpsd accepts a connection and says hello.
fn gpsd(config: &Config) -> ProbeFuture<'_> {
    Box::pin(async move {
        let l = config.location.as_ref()?;
        if l.backend != config::LocationBackend::Gpsd {
            return None;
        }
        let name = "gpsd";
        let hello = tokio::time::timeout(DNS_TIMEOUT, async {
            use tokio::io::AsyncBufReadExt;
            let stream = tokio::net::TcpStream::connect(l.address.as_str()).await?;
            let mut line = String::new();
            tokio::io::BufReader::new(stream)
                .read_line(&mut line)
                .await?;
            Ok::<_, std::io::Error>(line)
        })
        .await;
        Some(match hello {
            Ok(Ok(line)) if line.contains("\"VERSION\"") => {
                Check::ok(name, format!("gpsd answers at {}", l.address))
            }
            Ok(Ok(_)) => Check::error(
                name,
                format!("{} answered, but not as gpsd", l.address),
                "point location.address at gpsd's port (2947)",
            ),
            Ok(Err(e)) => Check::error(
                name,
                format!("{}: {e}", l.address),
                "start gpsd (systemctl start gpsd) or set location.backend = \"static\"",
            ),
            Err(_) => Check::error(name, format!("{}: no answer", l.address), "check gpsd"),
        })
    })
}

/// With `[firmware] backend = "rauc"`: the RAUC service is on the system bus.
fn rauc(config: &Config) -> ProbeFuture<'_> {
    Box::pin(async move {
        let fw = config.firmware.as_ref()?;
        if fw.backend != config::FirmwareBackend::Rauc {
            return None;
        }
        let name = "rauc";
        let address = backends::system::SystemBus::from_env().address().to_owned();
        let connection = async {
            zbus::connection::Builder::address(address.as_str())?
                .build()
                .await
        }
        .await;
        let present = match &connection {
            Ok(c) => available(c, "de.pengutronix.rauc").await,
            Err(_) => false,
        };
        Some(if present {
            Check::ok(name, "de.pengutronix.rauc is on the system bus")
        } else {
            Check::error(
                name,
                format!("de.pengutronix.rauc not found on {address}"),
                "install and start RAUC's service (apt install rauc-service)",
            )
        })
    })
}
