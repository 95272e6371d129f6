//! The daemon: a single-threaded tokio runtime that owns the UDP sockets, timers,
//! signals and sd-notify, and shuttles datagrams, time and actions between them, the
//! engine and the backends.

use std::net::SocketAddr;
use std::path::Path as FsPath;
use std::time::{Duration, Instant};

use sd_notify::NotifyState;
use tokio::net::UdpSocket;
use tokio::signal::unix::{signal, SignalKind};

use crate::config::{AccountSecurity, Config, ConnectivityBackend, LocationBackend, RebootMethod};
use crate::connectivity;
use crate::dbus_api::{self, StatusBook};
use crate::dtls::{Credentials, DtlsClient, DtlsConfig, DtlsError, DtlsSession};
use crate::engine::{resume, Engine, EngineConfig, Event, ServerSpec};
use crate::feed::{self, Feed};
use crate::fwupdate::{self, Runner, StagingSink};
use crate::model::{Action, Object};
use crate::objects::access_control::AccessControl;
use crate::objects::apn::ApnProfiles;
use crate::objects::cellular;
use crate::objects::connectivity as monitoring;
use crate::objects::device::{self, Device};
use crate::objects::firmware::{Firmware, Protocol};
use crate::objects::location;
use crate::objects::security::{Security, SecurityMode};
use crate::objects::server::Server;
use crate::objects::statistics::ConnectivityStatistics;
use crate::path::Path;
use crate::provisioning;
use crate::sensors::{self, Sensors};
use crate::state::StateDir;
use crate::tasks;
use crate::value::{ResourceValue, Value};

/// How long SIGTERM waits for De-register answers before exiting anyway.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);
/// How often the Device object's memory figures are refreshed.
const SAMPLE_INTERVAL: Duration = Duration::from_secs(60);
/// The wait before a new DTLS handshake after a failed one, doubling up to the maximum.
const DTLS_RETRY_FIRST: Duration = Duration::from_secs(5);
const DTLS_RETRY_MAX: Duration = Duration::from_secs(300);

#[derive(Debug)]
pub enum DaemonError {
    /// Found while building the objects (object definitions, resource bindings): exit 78.
    Config(crate::config::ConfigError),
    /// A server's host name did not resolve.
    Resolve { uri: String, error: String },
    Io {
        what: &'static str,
        error: std::io::Error,
    },
}

impl std::fmt::Display for DaemonError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DaemonError::Config(e) => write!(f, "configuration error: {e}"),
            DaemonError::Resolve { uri, error } => {
                write!(f, "cannot resolve server {uri}: {error}")
            }
            DaemonError::Io { what, error } => write!(f, "{what}: {error}"),
        }
    }
}

impl std::error::Error for DaemonError {}

/// The endpoint name: from the configuration, else `urn:uuid:` + /etc/machine-id
/// (unique per installation and stable across reboots), else the host name.
pub fn endpoint_name(config: &Config) -> String {
    if let Some(ep) = &config.endpoint {
        return ep.clone();
    }
    if let Some(id) = backends::host::machine_id(FsPath::new("/")) {
        if id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return format!(
                "urn:uuid:{}-{}-{}-{}-{}",
                &id[0..8],
                &id[8..12],
                &id[12..16],
                &id[16..20],
                &id[20..32]
            );
        }
    }
    backends::host::hostname().unwrap_or_else(|| "lwm2md".to_string())
}

pub async fn run(config: Config) -> Result<(), DaemonError> {
    let accounts = config.accounts().map_err(|e| DaemonError::Io {
        what: "config",
        error: std::io::Error::other(e),
    })?;
    let mut servers = Vec::new();
    for a in accounts.iter().filter(|a| !a.bootstrap) {
        let addr = resolve(&a.host, a.port)
            .await
            .map_err(|error| DaemonError::Resolve {
                uri: a.uri.clone(),
                error,
            })?;
        servers.push(ServerSpec {
            short_server_id: a.short_server_id,
            addr,
            uri: a.uri.clone(),
        });
    }
    // Accounts a bootstrap server provisions may use either address family.
    let v4 = bind(true, "0.0.0.0:0").await?;
    let v6 = match bind(true, "[::]:0").await {
        Ok(s) => s,
        Err(e) if servers.iter().any(|s| s.addr.is_ipv6()) => return Err(e),
        Err(e) => {
            tracing::debug!("no IPv6: {e}");
            None
        }
    };

    let mut security = Security::new();
    let mut server = Server::new();
    for (n, a) in accounts.iter().enumerate() {
        let instance = u16::try_from(n).unwrap_or(u16::MAX);
        let mode = match &a.security {
            AccountSecurity::Psk(psk) => SecurityMode::Psk {
                identity: psk.identity.clone().into_bytes(),
                key: psk.key.clone(),
            },
            AccountSecurity::Certificate(c) => SecurityMode::Certificate {
                certificate: c.chain.first().cloned().unwrap_or_default(),
                server_certificate: c.server_certificate.clone().unwrap_or_default(),
                key: c.private_key.clone(),
                usage: c.usage.code(),
                sni: c.sni.clone(),
            },
            AccountSecurity::RawPublicKey(k) => SecurityMode::RawPublicKey {
                public_key: crate::dtls::public_key_of(&k.private_key).unwrap_or_default(),
                server_public_key: k.server_public_key.clone(),
                key: k.private_key.clone(),
            },
            AccountSecurity::NoSec => SecurityMode::NoSec,
        };
        if a.bootstrap {
            security.add_bootstrap_account(instance, &a.uri, mode);
            continue;
        }
        security.add_account(instance, &a.uri, a.short_server_id, mode);
        server.add_account(instance, a.short_server_id, a.lifetime, &a.binding);
    }
    let device = Device::new(
        device::system_clock,
        config.device.factory_reset_command.is_some(),
    );
    // Backend-fed objects join this list; their tasks start once the engine exists and
    // report through the feed channel.
    let mut objects: Vec<Box<dyn Object>> = vec![
        Box::new(security),
        Box::new(server),
        Box::new(AccessControl::new()),
        Box::new(device),
        Box::new(monitoring::new()),
        Box::new(ConnectivityStatistics::new()),
    ];
    if config.connectivity.backend == ConnectivityBackend::At {
        objects.push(Box::new(cellular::new(true)));
        objects.push(Box::new(ApnProfiles::with_state(StateDir::new(
            &config.state_dir,
        ))));
    }
    if config.connectivity.backend == ConnectivityBackend::Modemmanager {
        objects.push(Box::new(cellular::new(false)));
        objects.push(Box::new(ApnProfiles::with_state(StateDir::new(
            &config.state_dir,
        ))));
    }
    if config.location.is_some() {
        objects.push(Box::new(location::new()));
    }
    let state = StateDir::new(&config.state_dir);
    objects.extend(sensors::objects(&config, device::system_clock, &state));
    let built_in: Vec<(u16, &str)> = objects.iter().map(|o| (o.def().id, o.def().name)).collect();
    let custom = crate::binding::setup(&config, &built_in).map_err(DaemonError::Config)?;
    objects.extend(custom.objects);
    let firmware = match &config.firmware {
        Some(fc) => {
            let backend = crate::fwupdate::backend(fc).map_err(|e| DaemonError::Io {
                what: "firmware backend",
                error: std::io::Error::other(e),
            })?;
            let staging = fc.staging(&config.state_dir);
            objects.push(Box::new(Firmware::new(
                device::system_clock,
                Box::new(StagingSink::new(&staging)),
                pull_protocols(&accounts),
                fc.max_package_size,
            )));
            Some((backend, staging, fc))
        }
        None => None,
    };
    let engine_config = EngineConfig {
        endpoint: endpoint_name(&config),
        preferred_format: config.content_format.content_format(),
        coap: config.coap_params(),
        block_size: config.coap.block_size.into(),
        max_upload: config.coap.max_upload,
        servers,
        send: config.send_specs().map_err(|e| DaemonError::Io {
            what: "config",
            error: std::io::Error::other(e),
        })?,
        wall_clock: device::system_clock,
        limits: config.limits(),
        resolve: resolve_blocking,
    };
    tracing::info!(endpoint = %engine_config.endpoint, "starting");
    let state = StateDir::new(&config.state_dir);
    let mut engine = Engine::new(engine_config, objects, rand::random(), Instant::now());
    engine.use_bootstrap_pack(config.bootstrap_server.as_ref().is_some_and(|b| b.pack));
    if engine.grant_factory_access() {
        tracing::info!("several server accounts: Access Control instances made for them (owner: the first server)");
    }
    restore_provisioning(&mut engine, &state);
    resume_reporting(&mut engine, &state);
    let mut dtls = Vec::new();
    sync_dtls(&engine, &mut dtls, &config);
    set_device_facts(&mut engine, &config);
    sample(&mut engine);
    // Backend tasks get clones of the sender; the loop keeps one so the channel never
    // closes while the daemon runs.
    let (feed_tx, mut feed_rx) = feed::channel();
    for (path, value) in custom.constants {
        if let Err(e) = engine.set_value(path, ResourceValue::Single(value)) {
            tracing::warn!("setting {path}: {e}");
        }
    }
    let bindings = crate::binding::Bindings::spawn(custom.bindings, &feed_tx);
    let (app_requests, app) = crate::dbus_app::channel(custom.apps, feed_tx.clone());
    // The modem's own GNSS: read by the AT backend on its port, else over ModemManager.
    let modem_location = config
        .location
        .as_ref()
        .is_some_and(|l| l.backend == LocationBackend::Modem);
    let at_gnss = modem_location && config.connectivity.backend == ConnectivityBackend::At;
    let connectivity = connectivity::spawn(
        config.connectivity.clone(),
        StateDir::new(&config.state_dir),
        device::system_clock,
        feed_tx.clone(),
        at_gnss,
    );
    if let Some(location) = config.location.clone() {
        tokio::spawn(tasks::location::run(
            location,
            feed_tx.clone(),
            device::system_clock,
            !at_gnss,
        ));
    }
    let mut sensors = Sensors::start(&config, &feed_tx);
    let firmware = match firmware {
        Some((backend, staging, fc)) => {
            let signature_key = fc
                .signature_key
                .as_deref()
                .map(crate::fwsig::load_key)
                .transpose()
                .map_err(|e| DaemonError::Io {
                    what: "firmware.signature_key",
                    error: std::io::Error::other(e),
                })?;
            Some(
                Runner::new(
                    backend,
                    StateDir::new(&config.state_dir),
                    feed_tx.clone(),
                    fwupdate::Options {
                        staging_dir: staging,
                        commit_window: Duration::from_secs(fc.commit_window.into()),
                        reboot: config.device.reboot,
                        pull: crate::fwpull::PullConfig {
                            max_size: fc.max_package_size,
                            retries: fc.pull_retries,
                            ack_timeout: config.coap_params().ack_timeout,
                            max_retransmit: config.coap.max_retransmit,
                            ca_file: fc.ca_file.clone(),
                            psk: accounts
                                .iter()
                                .filter_map(|a| match &a.security {
                                    AccountSecurity::Psk(psk) => Some(crate::fwpull::PskAccount {
                                        host: a.host.clone(),
                                        port: a.port,
                                        identity: psk.identity.clone().into_bytes(),
                                        key: psk.key.clone(),
                                    }),
                                    AccountSecurity::NoSec
                                    | AccountSecurity::Certificate(_)
                                    | AccountSecurity::RawPublicKey(_) => None,
                                })
                                .collect(),
                        },
                        signature_key,
                    },
                )
                .start()
                .await,
            )
        }
        None => None,
    };
    let _feed_tx = feed_tx;
    let mut status_book = StatusBook::default();
    let mut api_rx = dbus_api::serve(
        backends::system::SystemBus::from_env().address().to_owned(),
        endpoint_name(&config),
        app,
    );

    let mut sigterm = signal(SignalKind::terminate()).map_err(|error| DaemonError::Io {
        what: "SIGTERM handler",
        error,
    })?;
    let mut sigint = signal(SignalKind::interrupt()).map_err(|error| DaemonError::Io {
        what: "SIGINT handler",
        error,
    })?;
    let watchdog = sd_notify::watchdog_enabled().map(|d| d / 2);
    let mut watchdog_tick = tokio::time::interval(watchdog.unwrap_or(Duration::from_secs(3600)));
    let mut sample_tick = tokio::time::interval(SAMPLE_INTERVAL);
    sample_tick.reset();
    notify(&[NotifyState::Ready, NotifyState::Status("registering")]);

    // Nothing observed yet: backends start at their configured intervals.
    let mut observers_seen = engine.observers_version();
    let mut reporting_seen = engine.reporting_version();
    let mut buf4 = vec![0u8; 2048];
    let mut buf6 = vec![0u8; 2048];
    let mut stop_by: Option<Instant> = None;
    loop {
        flush(&mut engine, &mut dtls, v4.as_ref(), v6.as_ref()).await;
        while let Some(action) = engine.poll_action() {
            match (action, &firmware) {
                (Action::Firmware(a), Some(fw)) => to_firmware(fw, fwupdate::Command::Action(a)),
                (Action::Bound(request), _) => {
                    let ticket = request.ticket;
                    let dispatched = match app_requests.owns(&request.path) {
                        true => app_requests.dispatch(request),
                        false => bindings.dispatch(request),
                    };
                    if let Err(e) = dispatched {
                        engine.complete_action(Instant::now(), ticket, Err(e));
                    }
                }
                (Action::Connectivity(action), _) => {
                    if let Err(e) = connectivity.try_send(action) {
                        tracing::warn!("connectivity action dropped: {e}");
                    }
                }
                (other, _) => run_action(other, &config),
            }
        }
        while let Some(event) = engine.poll_event() {
            report(&engine, &event);
            if let (Event::Registered { .. }, Some(fw)) = (&event, &firmware) {
                to_firmware(fw, fwupdate::Command::Registered);
            }
            status_book.on_event(&event, device::system_clock());
            if event == Event::Provisioned {
                save_provisioning(&engine, &state);
                sync_dtls(&engine, &mut dtls, &config);
            }
            if let Event::RegistrationFailed {
                short_server_id, ..
            } = event
            {
                // The server may have lost the session (a restart): handshake again.
                for peer in dtls.iter_mut() {
                    if peer.short_server_id == short_server_id {
                        peer.renew(Instant::now());
                    }
                }
            }
        }
        flush(&mut engine, &mut dtls, v4.as_ref(), v6.as_ref()).await;
        // Backends sample as often as observers ask: look again only when that can have
        // changed, not on every pass of the loop.
        if engine.observers_version() != observers_seen {
            observers_seen = engine.observers_version();
            bindings.observe(|path| engine.observed_pmin(path));
            sensors.follow_observers(&engine);
        }
        if engine.reporting_version() != reporting_seen {
            reporting_seen = engine.reporting_version();
            save_reporting(&engine, &state);
        }
        if let Some(deadline) = stop_by {
            if engine.is_stopped() || Instant::now() >= deadline {
                break;
            }
        }
        let wake = engine.poll_timeout().into_iter().chain(stop_by).min();
        let dtls_wake = dtls.iter().filter_map(DtlsPeer::poll_timeout).min();
        tokio::select! {
            r = recv(v4.as_ref(), &mut buf4) => on_datagram(&mut engine, &mut dtls, r, &buf4),
            r = recv(v6.as_ref(), &mut buf6) => on_datagram(&mut engine, &mut dtls, r, &buf6),
            _ = sleep_until(wake) => engine.handle_timeout(Instant::now()),
            _ = sleep_until(dtls_wake) => {
                let now = Instant::now();
                for peer in dtls.iter_mut() {
                    peer.handle_timeout(now);
                }
            }
            _ = sigterm.recv(), if stop_by.is_none() => stop_by = Some(begin_shutdown(&mut engine)),
            _ = sigint.recv(), if stop_by.is_none() => stop_by = Some(begin_shutdown(&mut engine)),
            _ = watchdog_tick.tick(), if watchdog.is_some() => notify(&[NotifyState::Watchdog]),
            _ = sample_tick.tick() => sample(&mut engine),
            Some(report) = feed_rx.recv() => apply_feed(&mut engine, report),
            Some(request) = api_rx.recv() => dbus_api::answer(&mut engine, &status_book, request),
        }
    }
    notify(&[NotifyState::Stopping]);
    tracing::info!("stopped");
    Ok(())
}

/// The Package URI schemes offered: coaps only with PSK credentials to use.
fn pull_protocols(accounts: &[crate::config::ServerAccount]) -> Vec<Protocol> {
    let mut p = vec![Protocol::Coap, Protocol::Http, Protocol::Https];
    if accounts
        .iter()
        .any(|a| matches!(a.security, AccountSecurity::Psk(_)))
    {
        p.push(Protocol::Coaps);
    }
    p
}

/// Hands a command to the firmware runner. Its queue only fills if the runner is stuck
/// in a backend command; the server then sees the state stay where it is.
fn to_firmware(tx: &tokio::sync::mpsc::Sender<fwupdate::Command>, cmd: fwupdate::Command) {
    if let Err(e) = tx.try_send(cmd) {
        tracing::error!("firmware runner busy: {e}");
    }
}

fn begin_shutdown(engine: &mut Engine) -> Instant {
    tracing::info!("stopping: de-registering");
    notify(&[NotifyState::Stopping, NotifyState::Status("de-registering")]);
    let now = Instant::now();
    engine.shutdown(now);
    now + SHUTDOWN_GRACE
}

/// The provisioning a bootstrap server left in the state directory replaces the
/// configuration's accounts. A file that cannot be used is moved aside.
fn restore_provisioning(engine: &mut Engine, state: &StateDir) {
    let data = match state.read(provisioning::FILE) {
        Ok(Some(data)) => data,
        Ok(None) => return,
        Err(e) => {
            tracing::error!(
                "reading {}: {e}; using the configured accounts",
                state.path(provisioning::FILE).display()
            );
            return;
        }
    };
    let records = provisioning::decode(&data, &|p| engine.resource_type(p))
        .map_err(|e| e.to_string())
        .and_then(|records| {
            engine
                .restore(Instant::now(), records)
                .map_err(|e| e.to_string())
        });
    match records {
        Ok(()) => tracing::info!(
            "accounts restored from {}",
            state.path(provisioning::FILE).display()
        ),
        Err(why) => {
            let aside = state.move_aside(provisioning::FILE);
            tracing::error!(
                "{} is unusable ({why}); moved aside to {}; using the configured accounts",
                state.path(provisioning::FILE).display(),
                aside.map_or_else(|e| format!("<failed: {e}>"), |p| p.display().to_string())
            );
        }
    }
}

/// Registrations of the previous run still valid carry on (see `engine::resume`). A file
/// that cannot be used is moved aside and the servers get a Register.
fn resume_reporting(engine: &mut Engine, state: &StateDir) {
    let path = state.path(resume::FILE);
    let data = match state.read(resume::FILE) {
        Ok(Some(data)) => data,
        Ok(None) => return,
        Err(e) => {
            tracing::error!("reading {}: {e}; registering afresh", path.display());
            return;
        }
    };
    match serde_json::from_slice::<resume::Snapshot>(&data) {
        Ok(snapshot) => {
            let resumed = engine.resume(snapshot, Instant::now(), device::system_clock());
            tracing::debug!(?resumed, "registrations taken up from {}", path.display());
        }
        Err(e) => {
            let aside = state.move_aside(resume::FILE);
            tracing::error!(
                "{} is unusable ({e}); moved aside to {}; registering afresh",
                path.display(),
                aside.map_or_else(|e| format!("<failed: {e}>"), |p| p.display().to_string())
            );
        }
    }
}

/// Keeps what the servers asked to be reported, and the notifications stored for them,
/// across a restart or a power cut.
fn save_reporting(engine: &Engine, state: &StateDir) {
    let snapshot = engine.snapshot(Instant::now(), device::system_clock());
    let saved = if snapshot.is_empty() {
        state.remove(resume::FILE)
    } else {
        serde_json::to_vec(&snapshot)
            .map_err(std::io::Error::other)
            .and_then(|data| state.write(resume::FILE, &data))
    };
    if let Err(e) = saved {
        tracing::warn!(
            "saving {}: {e}; a restart will register afresh",
            state.path(resume::FILE).display()
        );
    }
}

fn save_provisioning(engine: &Engine, state: &StateDir) {
    let data = provisioning::encode(&engine.provisioning());
    match state.write(provisioning::FILE, &data) {
        Ok(()) => tracing::info!(
            "provisioned accounts saved to {}",
            state.path(provisioning::FILE).display()
        ),
        Err(e) => tracing::error!(
            "saving the provisioned accounts to {}: {e}; they last until the daemon stops",
            state.path(provisioning::FILE).display()
        ),
    }
}

/// One DTLS session per `coaps://` account (the bootstrap account included); sessions of
/// accounts that are gone end, unchanged ones are kept.
fn sync_dtls(engine: &Engine, dtls: &mut Vec<DtlsPeer>, config: &Config) {
    let wanted: Vec<_> = engine
        .accounts()
        .into_iter()
        .filter_map(|(a, addr)| {
            let mut credentials = a.credentials.clone()?;
            // The Security object holds no trust store: a configured account keeps its own.
            if let Credentials::Certificate(certs) = &mut credentials {
                certs.trust_store = configured_trust_store(config, a.short_server_id);
            }
            Some((credentials, a, addr))
        })
        .collect();
    dtls.retain(|p| {
        wanted
            .iter()
            .any(|(credentials, _, addr)| p.addr == *addr && p.credentials == *credentials)
    });
    for (credentials, a, addr) in wanted {
        if dtls.iter().any(|p| p.addr == addr) {
            continue;
        }
        let mut dtls_config = DtlsConfig {
            credentials,
            mtu: crate::dtls::DEFAULT_MTU,
            handshake_timeout: crate::dtls::DEFAULT_HANDSHAKE_TIMEOUT,
        };
        // A handshake gets as long as a confirmable message would (RFC 7252
        // MAX_TRANSMIT_WAIT): a wrong key shows only as silence, and OpenSSL's own
        // retransmissions would go on for minutes.
        dtls_config.handshake_timeout = config.coap_params().max_transmit_wait();
        dtls.push(DtlsPeer::new(
            addr,
            a.uri,
            a.short_server_id,
            dtls_config,
            Instant::now(),
        ));
    }
}

/// The `trust_store` of the configured certificate account with this Short Server ID.
fn configured_trust_store(config: &Config, short_server_id: u16) -> Option<std::path::PathBuf> {
    let accounts = config.accounts().ok()?;
    accounts.into_iter().find_map(|a| match a.security {
        AccountSecurity::Certificate(c) if a.short_server_id == short_server_id => c.trust_store,
        _ => None,
    })
}

/// Resolves an account's URI. Blocking, but only run when accounts change (start,
/// Bootstrap-Finish); IP literals never touch DNS.
fn resolve_blocking(uri: &str) -> Option<SocketAddr> {
    use std::net::ToSocketAddrs;
    if let Some(addr) = crate::engine::bootstrap::resolve_literal(uri) {
        return Some(addr);
    }
    let (_, host, port) = crate::config::parse_server_uri(uri).ok()?;
    (host.as_str(), port).to_socket_addrs().ok()?.next()
}

async fn resolve(host: &str, port: u16) -> Result<SocketAddr, String> {
    let mut addrs = tokio::net::lookup_host((host, port))
        .await
        .map_err(|e| e.to_string())?;
    addrs.next().ok_or_else(|| "no address".to_string())
}

async fn bind(wanted: bool, addr: &str) -> Result<Option<UdpSocket>, DaemonError> {
    if !wanted {
        return Ok(None);
    }
    let socket = UdpSocket::bind(addr)
        .await
        .map_err(|error| DaemonError::Io {
            what: "binding the UDP socket",
            error,
        })?;
    if let Ok(local) = socket.local_addr() {
        tracing::debug!(%local, "socket bound");
    }
    Ok(Some(socket))
}

async fn recv(socket: Option<&UdpSocket>, buf: &mut [u8]) -> std::io::Result<(usize, SocketAddr)> {
    match socket {
        Some(s) => s.recv_from(buf).await,
        None => std::future::pending().await,
    }
}

async fn sleep_until(when: Option<Instant>) {
    match when {
        Some(t) => tokio::time::sleep_until(t.into()).await,
        None => std::future::pending().await,
    }
}

fn on_datagram(
    engine: &mut Engine,
    dtls: &mut [DtlsPeer],
    r: std::io::Result<(usize, SocketAddr)>,
    buf: &[u8],
) {
    match r {
        Ok((n, from)) => {
            let data = buf.get(..n).unwrap_or_default();
            // Everything from a coaps server goes through its session: plaintext that
            // did not come through DTLS never reaches the engine.
            match dtls.iter_mut().find(|p| p.addr == from) {
                Some(peer) => {
                    for plaintext in peer.handle_datagram(data, Instant::now()) {
                        engine.handle_datagram(Instant::now(), from, &plaintext);
                    }
                }
                None => engine.handle_datagram(Instant::now(), from, data),
            }
        }
        // ICMP errors (port unreachable) surface here; the retransmission timers cover them.
        Err(e) => tracing::debug!("receive: {e}"),
    }
}

async fn flush(
    engine: &mut Engine,
    dtls: &mut [DtlsPeer],
    v4: Option<&UdpSocket>,
    v6: Option<&UdpSocket>,
) {
    while let Some(t) = engine.poll_transmit() {
        match dtls.iter_mut().find(|p| p.addr == t.peer) {
            Some(peer) => peer.send(&t.data, Instant::now()),
            None => send(v4, v6, t.peer, &t.data).await,
        }
    }
    for peer in dtls.iter_mut() {
        while let Some(datagram) = peer.poll_transmit() {
            send(v4, v6, peer.addr, &datagram).await;
        }
    }
}

async fn send(v4: Option<&UdpSocket>, v6: Option<&UdpSocket>, peer: SocketAddr, data: &[u8]) {
    let socket = if peer.is_ipv4() { v4 } else { v6 };
    if let Some(s) = socket {
        if let Err(e) = s.send_to(data, peer).await {
            tracing::warn!(%peer, "send: {e}");
        }
    }
}

/// The DTLS session with one coaps server, remade after failures with a growing delay;
/// the engine's own registration retries run on top, unaware of it.
struct DtlsPeer {
    addr: SocketAddr,
    uri: String,
    short_server_id: u16,
    /// What the session was made with, to notice when provisioning changes it.
    credentials: Credentials,
    /// The context and the session to resume; an error when OpenSSL refused the
    /// credentials (logged, retried like a failed handshake).
    client: Result<DtlsClient, DtlsError>,
    session: Option<DtlsSession>,
    /// What a failed session still had to send (its fatal alert), so that the server
    /// learns why instead of waiting for the rest of the handshake.
    farewell: std::collections::VecDeque<Vec<u8>>,
    /// When the next handshake starts, while there is no session.
    retry_at: Option<Instant>,
    retry_delay: Duration,
}

impl DtlsPeer {
    fn new(
        addr: SocketAddr,
        uri: String,
        short_server_id: u16,
        config: DtlsConfig,
        now: Instant,
    ) -> DtlsPeer {
        let mut peer = DtlsPeer {
            addr,
            uri,
            short_server_id,
            credentials: config.credentials.clone(),
            client: DtlsClient::new(&config),
            session: None,
            farewell: Default::default(),
            retry_at: None,
            retry_delay: DTLS_RETRY_FIRST,
        };
        peer.start(now);
        peer
    }

    fn start(&mut self, now: Instant) {
        tracing::debug!(server = %self.uri, peer = %self.addr, "DTLS handshake");
        self.retry_at = None;
        let connected = match &self.client {
            Ok(client) => client.connect(now),
            Err(e) => Err(e.clone()),
        };
        match connected {
            Ok(s) => self.session = Some(s),
            Err(e) => self.fail(e, now),
        }
    }

    /// A new handshake, unless one is under way already.
    fn renew(&mut self, now: Instant) {
        if self
            .session
            .as_ref()
            .is_some_and(DtlsSession::is_established)
        {
            self.start(now);
        }
    }

    fn fail(&mut self, error: DtlsError, now: Instant) {
        tracing::warn!(
            server = %self.uri,
            "{error}; new handshake in {} s",
            self.retry_delay.as_secs()
        );
        if let Some(mut failed) = self.session.take() {
            self.farewell
                .extend(std::iter::from_fn(|| failed.poll_transmit()));
        }
        // The next handshake is a full one: a session that failed is not offered again.
        if let Ok(client) = &mut self.client {
            client.forget();
        }
        self.retry_at = Some(now + self.retry_delay);
        self.retry_delay = (self.retry_delay * 2).min(DTLS_RETRY_MAX);
    }

    fn send(&mut self, plaintext: &[u8], now: Instant) {
        let Some(session) = self.session.as_mut() else {
            tracing::debug!(server = %self.uri, "no DTLS session: datagram dropped");
            return;
        };
        if let Err(e) = session.send(plaintext) {
            self.fail(e, now);
        }
    }

    fn handle_datagram(&mut self, datagram: &[u8], now: Instant) -> Vec<Vec<u8>> {
        let Some(session) = self.session.as_mut() else {
            return Vec::new();
        };
        let was_established = session.is_established();
        match session.handle_datagram(datagram) {
            Ok(plaintext) => {
                if !was_established && session.is_established() {
                    tracing::info!(
                        server = %self.uri,
                        cipher = session.cipher().unwrap_or("?"),
                        resumed = session.resumed(),
                        "DTLS session established"
                    );
                    if let Ok(client) = &mut self.client {
                        client.remember(session);
                    }
                    self.retry_delay = DTLS_RETRY_FIRST;
                }
                plaintext
            }
            Err(e) => {
                self.fail(e, now);
                Vec::new()
            }
        }
    }

    fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.farewell
            .pop_front()
            .or_else(|| self.session.as_mut()?.poll_transmit())
    }

    fn poll_timeout(&self) -> Option<Instant> {
        match &self.session {
            Some(s) => s.poll_timeout(),
            None => self.retry_at,
        }
    }

    fn handle_timeout(&mut self, now: Instant) {
        match self.session.as_mut() {
            Some(s) => {
                if let Err(e) = s.handle_timeout(now) {
                    self.fail(e, now);
                }
            }
            None => {
                if self.retry_at.is_some_and(|t| t <= now) {
                    self.start(now);
                }
            }
        }
    }
}

fn report(engine: &Engine, event: &Event) {
    tracing::debug!(?event, "registration event");
    let regs = engine.registrations();
    let registered: Vec<&str> = regs
        .iter()
        .filter(|(_, _, r)| *r)
        .map(|(_, uri, _)| *uri)
        .collect();
    let mut status = if engine.is_bootstrapping() {
        "bootstrapping".to_string()
    } else if registered.is_empty() {
        "not registered".to_string()
    } else {
        format!("registered with {}", registered.join(", "))
    };
    if registered.len() < regs.len() && regs.len() > 1 {
        status.push_str(&format!(
            " ({} of {} servers)",
            registered.len(),
            regs.len()
        ));
    }
    if let Event::RegistrationFailed {
        short_server_id,
        reason,
    } = event
    {
        let uri = regs
            .iter()
            .find(|(id, _, _)| id == short_server_id)
            .map_or("?", |(_, uri, _)| *uri);
        status.push_str(&format!("; registration with {uri} failed: {reason}"));
    }
    notify(&[NotifyState::Status(&status)]);
}

fn notify(state: &[NotifyState<'_>]) {
    if let Err(e) = sd_notify::notify(state) {
        tracing::debug!("sd_notify: {e}");
    }
}

/// Facts that do not change while running.
fn set_device_facts(engine: &mut Engine, config: &Config) {
    let root = FsPath::new("/");
    let info = backends::host::host_info(root);
    let d = &config.device;
    let facts = [
        (
            device::MANUFACTURER,
            d.manufacturer.clone().unwrap_or(info.manufacturer),
        ),
        (device::MODEL, d.model.clone().unwrap_or(info.model)),
        (device::SERIAL, d.serial.clone().unwrap_or(info.serial)),
        (device::FIRMWARE_VERSION, info.firmware_version),
        (device::DEVICE_TYPE, info.device_type),
        (device::HARDWARE_VERSION, info.hardware_version),
        (
            device::SOFTWARE_VERSION,
            format!("lwm2md {}", env!("CARGO_PKG_VERSION")),
        ),
        (device::UTC_OFFSET, backends::host::utc_offset_now()),
        (
            device::TIMEZONE,
            backends::host::timezone(root).unwrap_or_else(|| "UTC".into()),
        ),
    ];
    for (r, v) in facts {
        set(engine, r, Value::String(v));
    }
}

/// Values that change: memory.
fn sample(engine: &mut Engine) {
    match backends::host::memory(FsPath::new("/")) {
        Ok(m) => {
            set(
                engine,
                device::MEMORY_FREE,
                Value::Integer(i64::try_from(m.free_kib).unwrap_or(i64::MAX)),
            );
            set(
                engine,
                device::MEMORY_TOTAL,
                Value::Integer(i64::try_from(m.total_kib).unwrap_or(i64::MAX)),
            );
        }
        Err(e) => tracing::warn!("reading memory figures: {e}"),
    }
}

fn apply_feed(engine: &mut Engine, report: Feed) {
    match report {
        Feed::Value(path, value) => {
            if let Err(e) = engine.set_value(path, value) {
                tracing::warn!("setting {path}: {e}");
            }
        }
        Feed::Done { ticket, result } => engine.complete_action(Instant::now(), ticket, result),
        Feed::Absent(path) => {
            if let Err(e) = engine.clear_value(path) {
                tracing::warn!("clearing {path}: {e}");
            }
        }
    }
}

fn set(engine: &mut Engine, resource: u16, value: Value) {
    if let Err(e) = engine.set_value(Path::resource(3, 0, resource), ResourceValue::Single(value)) {
        tracing::warn!("setting /3/0/{resource}: {e}");
    }
}

/// Hands an action to its backend. The CoAP response has already gone out.
fn run_action(action: Action, config: &Config) {
    tracing::info!(?action, "action");
    let factory_reset = config.device.factory_reset_command.clone();
    let reboot = config.device.reboot;
    tokio::spawn(async move {
        let bus = backends::system::SystemBus::from_env();
        let result = match action {
            Action::Reboot => {
                let method = match reboot {
                    RebootMethod::Logind => backends::system::RebootMethod::Logind,
                    RebootMethod::None => backends::system::RebootMethod::None,
                };
                bus.reboot(method).await
            }
            Action::FactoryReset => match factory_reset {
                Some(argv) => backends::system::run_command(&argv).await,
                None => Ok(()),
            },
            Action::SetTime(t) => bus.set_time(t).await,
            Action::SetTimezone(tz) => bus.set_timezone(&tz).await,
            Action::UpdateRegistration { .. }
            | Action::DisableServer { .. }
            | Action::Bound(_)
            | Action::Connectivity(_)
            | Action::RequestBootstrap
            | Action::Firmware(_) => Ok(()),
        };
        if let Err(e) = result {
            tracing::error!("action failed: {e}");
        }
    });
}
