//! Package download (pull) for object 5: `coap://` with Block2 and `http(s)://`, written
//! straight into the staging file as it arrives and resumed from the file's length after
//! a lost connection or a daemon restart (CoAP block position, HTTP Range).

use std::fs::OpenOptions;
use std::io;
use std::net::SocketAddr;
use std::os::unix::fs::FileExt;
use std::path::{Path as FsPath, PathBuf};
use std::time::Duration;

use coap_lite::{CoapOption, MessageClass, MessageType, Packet, RequestType, ResponseType};
use tokio::net::UdpSocket;

use crate::coap::block::{self, BlockOption, MAX_SZX};
use crate::dtls::{DtlsConfig, DtlsError, DtlsSession};
use crate::engine::options::add_string_options;
use crate::objects::firmware::UpdateResult;

/// Bytes per CoAP block asked for (SZX 6).
const BLOCK_SIZE: u64 = 1024;
/// How long a server that answered with an empty ACK may take for the response.
const SEPARATE_WAIT: Duration = Duration::from_secs(30);
/// The first wait before another try after a lost connection; doubles each time.
const RETRY_FIRST: Duration = Duration::from_secs(1);
const RETRY_MAX: Duration = Duration::from_secs(60);
const HTTP_CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// A server silent this long mid-transfer counts as a lost connection.
const HTTP_IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// How a download runs.
#[derive(Debug, Clone)]
pub struct PullConfig {
    /// Largest package accepted.
    pub max_size: u64,
    /// New attempts after a lost connection before giving up (Update Result 4).
    pub retries: u32,
    /// CoAP ACK_TIMEOUT and MAX_RETRANSMIT.
    pub ack_timeout: Duration,
    pub max_retransmit: u32,
    /// CA certificates (PEM) that HTTPS servers are checked against instead of the
    /// system's trust store.
    pub ca_file: Option<PathBuf>,
    /// PSK credentials of the coaps:// server accounts, by host: a coaps:// package is
    /// fetched with those of an account on the same host (the same port preferred).
    pub psk: Vec<PskAccount>,
}

/// A server account's DTLS-PSK credentials.
#[derive(Clone)]
pub struct PskAccount {
    pub host: String,
    pub port: u16,
    pub identity: Vec<u8>,
    pub key: Vec<u8>,
}

impl std::fmt::Debug for PskAccount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PskAccount({}:{})", self.host, self.port)
    }
}

/// Why a download failed.
#[derive(Debug)]
pub enum PullError {
    /// The URI cannot be parsed or names nothing on the server.
    InvalidUri(String),
    /// A scheme this build does not download from.
    UnsupportedProtocol(String),
    /// The server went silent or away mid-transfer, or answered with a server error.
    ConnectionLost(String),
    /// The package is larger than the configured maximum.
    TooLarge { max: u64 },
    /// Writing the staging file failed.
    Storage(io::Error),
}

impl std::fmt::Display for PullError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::InvalidUri(why) => write!(f, "invalid package URI: {why}"),
            Self::UnsupportedProtocol(s) => write!(f, "unsupported protocol {s}"),
            Self::ConnectionLost(why) => write!(f, "connection lost: {why}"),
            Self::TooLarge { max } => write!(f, "package larger than {max} bytes"),
            Self::Storage(e) => write!(f, "staging the package: {e}"),
        }
    }
}

impl std::error::Error for PullError {}

impl PullError {
    pub fn result(&self) -> UpdateResult {
        match self {
            Self::InvalidUri(_) => UpdateResult::InvalidUri,
            Self::UnsupportedProtocol(_) => UpdateResult::UnsupportedProtocol,
            Self::ConnectionLost(_) => UpdateResult::ConnectionLost,
            Self::TooLarge { .. } => UpdateResult::NotEnoughSpace,
            Self::Storage(e) => UpdateResult::from_io(e),
        }
    }

    fn retryable(&self) -> bool {
        matches!(self, Self::ConnectionLost(_))
    }
}

/// A package URI taken apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackageUri {
    pub scheme: String,
    pub host: String,
    pub port: Option<u16>,
    /// Path segments, without the leading slash.
    pub path: Vec<String>,
    pub query: Vec<String>,
}

impl PackageUri {
    pub fn parse(uri: &str) -> Result<PackageUri, PullError> {
        let bad = |why: &str| PullError::InvalidUri(format!("{uri:?}: {why}"));
        let (scheme, rest) = uri.split_once("://").ok_or_else(|| bad("no scheme"))?;
        let rest = rest.split('#').next().unwrap_or_default();
        let (rest, query) = match rest.split_once('?') {
            Some((r, q)) => (r, q.split('&').map(str::to_string).collect()),
            None => (rest, Vec::new()),
        };
        let (authority, path) = match rest.split_once('/') {
            Some((a, p)) => (a, p),
            None => (rest, ""),
        };
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (h, after) = v6.split_once(']').ok_or_else(|| bad("unclosed ["))?;
            (h, after.strip_prefix(':'))
        } else {
            match authority.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (authority, None),
            }
        };
        if host.is_empty() {
            return Err(bad("no host"));
        }
        let port = port
            .map(|p| p.parse::<u16>().map_err(|_| bad("bad port")))
            .transpose()?;
        Ok(PackageUri {
            scheme: scheme.to_ascii_lowercase(),
            host: host.to_string(),
            port,
            path: path
                .split('/')
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect(),
            query,
        })
    }
}

/// Downloads `uri` into `dest`, continuing what `dest` already holds. Returns the
/// package's length.
pub async fn fetch(uri: &str, dest: &FsPath, config: &PullConfig) -> Result<u64, PullError> {
    let parsed = PackageUri::parse(uri)?;
    if let Some(dir) = dest.parent() {
        std::fs::create_dir_all(dir).map_err(PullError::Storage)?;
    }
    let mut delay = RETRY_FIRST;
    let mut attempt = 0;
    loop {
        let result = match parsed.scheme.as_str() {
            "coap" | "coaps" => coap_get(&parsed, dest, config).await,
            "http" | "https" => http_get(uri.to_string(), dest.to_path_buf(), config).await,
            other => return Err(PullError::UnsupportedProtocol(other.to_string())),
        };
        match result {
            Err(e) if e.retryable() && attempt < config.retries => {
                attempt += 1;
                tracing::warn!(
                    %uri,
                    "package download: {e}; resuming in {} s ({attempt} of {})",
                    delay.as_secs(),
                    config.retries
                );
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(RETRY_MAX);
            }
            Err(PullError::Storage(e)) => {
                let dir = dest.parent().unwrap_or(FsPath::new("."));
                return Err(PullError::Storage(crate::fwupdate::staging_error(dir, e)));
            }
            other => return other,
        }
    }
}

/// The staging file opened for writing at its current end, cut back to a multiple of
/// `align` (a partial block is fetched again).
fn open_at_end(dest: &FsPath, align: u64) -> Result<(std::fs::File, u64), PullError> {
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dest)
        .map_err(PullError::Storage)?;
    let len = file.metadata().map_err(PullError::Storage)?.len();
    let offset = len - len % align.max(1);
    file.set_len(offset).map_err(PullError::Storage)?;
    Ok((file, offset))
}

async fn coap_get(uri: &PackageUri, dest: &FsPath, config: &PullConfig) -> Result<u64, PullError> {
    let secure = uri.scheme == "coaps";
    let port = uri.port.unwrap_or(if secure { 5684 } else { 5683 });
    let addr = tokio::net::lookup_host((uri.host.as_str(), port))
        .await
        .map_err(|e| PullError::InvalidUri(format!("{}: {e}", uri.host)))?
        .next()
        .ok_or_else(|| PullError::InvalidUri(format!("{}: no address", uri.host)))?;
    let local: SocketAddr = if addr.is_ipv4() {
        "0.0.0.0:0"
            .parse()
            .map_err(|_| PullError::InvalidUri("bind".into()))?
    } else {
        "[::]:0"
            .parse()
            .map_err(|_| PullError::InvalidUri("bind".into()))?
    };
    let socket = UdpSocket::bind(local)
        .await
        .map_err(|e| PullError::ConnectionLost(format!("binding: {e}")))?;
    socket
        .connect(addr)
        .await
        .map_err(|e| PullError::ConnectionLost(format!("{addr}: {e}")))?;
    let mut link = if secure {
        let account = config
            .psk
            .iter()
            .filter(|a| a.host.eq_ignore_ascii_case(&uri.host))
            .min_by_key(|a| a.port != port)
            .ok_or_else(|| {
                PullError::UnsupportedProtocol(format!(
                    "coaps to {}: no server account with PSK credentials on that host",
                    uri.host
                ))
            })?;
        let mut dtls = crate::dtls::DtlsConfig::psk(account.identity.clone(), account.key.clone());
        dtls.handshake_timeout = config.ack_timeout * 30;
        Link::secure(socket, &dtls).await?
    } else {
        Link::Plain(socket)
    };
    let (file, mut offset) = open_at_end(dest, BLOCK_SIZE)?;
    if offset > 0 {
        tracing::info!("resuming the package download at byte {offset}");
    }
    let mut szx = MAX_SZX;
    let mut mid: u16 = rand::random();
    loop {
        let size = 1u64 << (u32::from(szx) + 4);
        let num = u32::try_from(offset / size)
            .ok()
            .filter(|&n| n <= block::MAX_BLOCK_NUM)
            .ok_or(PullError::TooLarge {
                max: config.max_size,
            })?;
        mid = mid.wrapping_add(1);
        let token: [u8; 4] = rand::random();
        let mut req = Packet::new();
        req.header.set_type(MessageType::Confirmable);
        req.header.code = MessageClass::Request(RequestType::Get);
        req.header.message_id = mid;
        req.set_token(token.to_vec());
        add_string_options(
            &mut req,
            CoapOption::UriPath,
            uri.path.iter().map(String::as_str),
        );
        add_string_options(
            &mut req,
            CoapOption::UriQuery,
            uri.query.iter().map(String::as_str),
        );
        block::set_block2(
            &mut req,
            BlockOption {
                num,
                more: false,
                szx,
            },
        );
        let resp = exchange(&mut link, &req, config).await?;
        match resp.header.code {
            MessageClass::Response(ResponseType::Content) => {}
            MessageClass::Response(
                code @ (ResponseType::NotFound
                | ResponseType::BadRequest
                | ResponseType::Forbidden
                | ResponseType::Unauthorized
                | ResponseType::BadOption),
            ) => {
                return Err(PullError::InvalidUri(format!(
                    "the server answered {code:?}"
                )));
            }
            other => {
                return Err(PullError::ConnectionLost(format!(
                    "the server answered {other:?}"
                )))
            }
        }
        if num == 0 {
            if let Some(total) = block::size2(&resp) {
                if u64::from(total) > config.max_size {
                    return Err(PullError::TooLarge {
                        max: config.max_size,
                    });
                }
            }
        }
        let (start, more) = match block::block2(&resp) {
            Some(Ok(b)) => {
                // The server may pick smaller blocks (RFC 7959 §2.4).
                szx = szx.min(b.szx);
                (b.offset(), b.more)
            }
            Some(Err(e)) => return Err(PullError::ConnectionLost(format!("Block2: {e}"))),
            None if offset == 0 => (0, false),
            None => {
                return Err(PullError::ConnectionLost(
                    "the server ignored the block asked for".into(),
                ))
            }
        };
        if start != offset {
            return Err(PullError::ConnectionLost(format!(
                "block at byte {start} while {offset} was asked for"
            )));
        }
        let end = offset.saturating_add(resp.payload.len() as u64);
        if end > config.max_size {
            return Err(PullError::TooLarge {
                max: config.max_size,
            });
        }
        file.write_all_at(&resp.payload, offset)
            .map_err(PullError::Storage)?;
        offset = end;
        if !more {
            file.sync_all().map_err(PullError::Storage)?;
            return Ok(end);
        }
        if resp.payload.is_empty() {
            return Err(PullError::ConnectionLost("empty block".into()));
        }
    }
}

/// One confirmable request and its response (piggybacked or separate), with RFC 7252
/// retransmissions.
async fn exchange(
    socket: &mut Link,
    req: &Packet,
    config: &PullConfig,
) -> Result<Packet, PullError> {
    let bytes = req
        .to_bytes()
        .map_err(|e| PullError::InvalidUri(format!("request: {e:?}")))?;
    let token = req.get_token().to_vec();
    let mut wait = config
        .ack_timeout
        .mul_f64(1.0 + rand::random::<f64>() * 0.5);
    let mut buf = vec![0u8; 2048];
    for _ in 0..=config.max_retransmit {
        socket.send(&bytes).await?;
        let mut deadline = tokio::time::Instant::now() + wait;
        loop {
            let datagram = match tokio::time::timeout_at(deadline, socket.recv(&mut buf)).await {
                Err(_) => break,
                Ok(Err(e)) => return Err(e),
                Ok(Ok(d)) => d,
            };
            let Ok(resp) = Packet::from_bytes(&datagram) else {
                continue;
            };
            let acked = resp.header.get_type() == MessageType::Acknowledgement
                && resp.header.message_id == req.header.message_id;
            if acked && resp.header.code == MessageClass::Empty {
                // A separate response follows: no more retransmissions.
                deadline = tokio::time::Instant::now() + SEPARATE_WAIT;
                continue;
            }
            if resp.get_token() != token.as_slice() {
                continue;
            }
            if resp.header.get_type() == MessageType::Confirmable {
                let mut ack = Packet::new();
                ack.header.set_type(MessageType::Acknowledgement);
                ack.header.code = MessageClass::Empty;
                ack.header.message_id = resp.header.message_id;
                if let Ok(b) = ack.to_bytes() {
                    let _ = socket.send(&b).await;
                }
            }
            return Ok(resp);
        }
        wait *= 2;
    }
    Err(PullError::ConnectionLost(
        "no answer from the server".into(),
    ))
}

/// A connected UDP socket, plain or through a DTLS session.
enum Link {
    Plain(UdpSocket),
    Secure {
        socket: UdpSocket,
        session: Box<DtlsSession>,
        /// Plaintexts decrypted but not yet handed out.
        pending: std::collections::VecDeque<Vec<u8>>,
    },
}

impl Link {
    /// Runs the handshake to completion.
    async fn secure(socket: UdpSocket, config: &DtlsConfig) -> Result<Link, PullError> {
        let lost = |e: DtlsError| PullError::ConnectionLost(format!("DTLS: {e}"));
        let mut session = DtlsSession::new(config, std::time::Instant::now()).map_err(lost)?;
        let mut pending = std::collections::VecDeque::new();
        let mut buf = vec![0u8; 2048];
        loop {
            while let Some(d) = session.poll_transmit() {
                socket
                    .send(&d)
                    .await
                    .map_err(|e| PullError::ConnectionLost(e.to_string()))?;
            }
            if session.is_established() {
                break;
            }
            let wake = session
                .poll_timeout()
                .unwrap_or_else(|| std::time::Instant::now() + Duration::from_secs(1));
            match tokio::time::timeout_at(wake.into(), socket.recv(&mut buf)).await {
                Ok(Ok(n)) => {
                    pending.extend(
                        session
                            .handle_datagram(buf.get(..n).unwrap_or_default())
                            .map_err(lost)?,
                    );
                }
                Ok(Err(e)) => return Err(PullError::ConnectionLost(e.to_string())),
                Err(_) => session
                    .handle_timeout(std::time::Instant::now())
                    .map_err(lost)?,
            }
        }
        Ok(Link::Secure {
            socket,
            session: Box::new(session),
            pending,
        })
    }

    async fn send(&mut self, data: &[u8]) -> Result<(), PullError> {
        let io = |e: io::Error| PullError::ConnectionLost(e.to_string());
        match self {
            Link::Plain(socket) => socket.send(data).await.map(|_| ()).map_err(io),
            Link::Secure {
                socket, session, ..
            } => {
                session
                    .send(data)
                    .map_err(|e| PullError::ConnectionLost(format!("DTLS: {e}")))?;
                while let Some(d) = session.poll_transmit() {
                    socket.send(&d).await.map_err(io)?;
                }
                Ok(())
            }
        }
    }

    /// The next datagram's plaintext.
    async fn recv(&mut self, buf: &mut [u8]) -> Result<Vec<u8>, PullError> {
        let io = |e: io::Error| PullError::ConnectionLost(e.to_string());
        match self {
            Link::Plain(socket) => {
                let n = socket.recv(buf).await.map_err(io)?;
                Ok(buf.get(..n).unwrap_or_default().to_vec())
            }
            Link::Secure {
                socket,
                session,
                pending,
            } => loop {
                if let Some(p) = pending.pop_front() {
                    return Ok(p);
                }
                let n = socket.recv(buf).await.map_err(io)?;
                pending.extend(
                    session
                        .handle_datagram(buf.get(..n).unwrap_or_default())
                        .map_err(|e| PullError::ConnectionLost(format!("DTLS: {e}")))?,
                );
                while let Some(d) = session.poll_transmit() {
                    socket.send(&d).await.map_err(io)?;
                }
            },
        }
    }
}

async fn http_get(uri: String, dest: PathBuf, config: &PullConfig) -> Result<u64, PullError> {
    let config = config.clone();
    // ureq blocks: the download runs on the blocking pool, the daemon's loop stays free.
    tokio::task::spawn_blocking(move || http_get_blocking(&uri, &dest, &config))
        .await
        .map_err(|e| PullError::ConnectionLost(format!("download task: {e}")))?
}

fn agent(config: &PullConfig) -> Result<ureq::Agent, PullError> {
    use ureq::tls::{Certificate, RootCerts, TlsConfig, TlsProvider};
    let roots = match &config.ca_file {
        // The system's trust store, as OpenSSL finds it.
        None => RootCerts::PlatformVerifier,
        Some(path) => {
            let pem = std::fs::read(path).map_err(|e| {
                PullError::ConnectionLost(format!("ca_file {}: {e}", path.display()))
            })?;
            let certs: Vec<Certificate<'static>> = ureq::tls::parse_pem(&pem)
                .filter_map(|item| match item {
                    Ok(ureq::tls::PemItem::Certificate(c)) => Some(c),
                    _ => None,
                })
                .collect();
            if certs.is_empty() {
                return Err(PullError::ConnectionLost(format!(
                    "ca_file {}: no certificate",
                    path.display()
                )));
            }
            RootCerts::from(certs)
        }
    };
    let tls = TlsConfig::builder()
        .provider(TlsProvider::NativeTls)
        .root_certs(roots)
        .build();
    Ok(ureq::Agent::config_builder()
        .tls_config(tls)
        .http_status_as_error(false)
        .timeout_connect(Some(HTTP_CONNECT_TIMEOUT))
        .timeout_recv_response(Some(HTTP_IDLE_TIMEOUT))
        .timeout_per_read(Some(HTTP_IDLE_TIMEOUT))
        .build()
        .into())
}

fn http_get_blocking(uri: &str, dest: &FsPath, config: &PullConfig) -> Result<u64, PullError> {
    let (file, mut offset) = open_at_end(dest, 1)?;
    let agent = agent(config)?;
    let mut request = agent.get(uri);
    if offset > 0 {
        tracing::info!("resuming the package download at byte {offset}");
        request = request.header("Range", format!("bytes={offset}-"));
    }
    let mut response = request.call().map_err(http_error)?;
    let status = response.status().as_u16();
    match status {
        200 => {
            if offset > 0 {
                // The server ignored the Range: the whole package comes again.
                offset = 0;
                file.set_len(0).map_err(PullError::Storage)?;
            }
        }
        206 => {
            let from = response
                .headers()
                .get("content-range")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("bytes "))
                .and_then(|v| v.split('-').next())
                .and_then(|v| v.parse::<u64>().ok());
            if from != Some(offset) {
                return Err(PullError::ConnectionLost(format!(
                    "asked for byte {offset} on, got Content-Range from {from:?}"
                )));
            }
        }
        // Everything was there already.
        416 if offset > 0 => return Ok(offset),
        400..=499 => {
            return Err(PullError::InvalidUri(format!(
                "the server answered {status}"
            )))
        }
        _ => {
            return Err(PullError::ConnectionLost(format!(
                "the server answered {status}"
            )))
        }
    }
    let announced = response
        .headers()
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if announced.is_some_and(|n| offset.saturating_add(n) > config.max_size) {
        return Err(PullError::TooLarge {
            max: config.max_size,
        });
    }
    let expected_end = announced.map(|n| offset.saturating_add(n));
    let mut reader = response
        .body_mut()
        .with_config()
        .limit(config.max_size.saturating_sub(offset).saturating_add(1))
        .reader();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match std::io::Read::read(&mut reader, &mut buf) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                return Err(PullError::ConnectionLost(format!(
                    "after byte {offset}: {e}"
                )))
            }
        };
        if n == 0 {
            break;
        }
        let chunk = buf.get(..n).unwrap_or_default();
        if offset.saturating_add(n as u64) > config.max_size {
            return Err(PullError::TooLarge {
                max: config.max_size,
            });
        }
        file.write_all_at(chunk, offset)
            .map_err(PullError::Storage)?;
        offset = offset.saturating_add(n as u64);
    }
    if expected_end.is_some_and(|end| end != offset) {
        return Err(PullError::ConnectionLost(format!(
            "the body ended at byte {offset}, before {expected_end:?}"
        )));
    }
    file.sync_all().map_err(PullError::Storage)?;
    Ok(offset)
}

fn http_error(e: ureq::Error) -> PullError {
    match e {
        ureq::Error::BadUri(why) => PullError::InvalidUri(why),
        ureq::Error::HostNotFound => PullError::InvalidUri("host not found".into()),
        other => PullError::ConnectionLost(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uri_parts() {
        let u = PackageUri::parse("coap://[::1]:5690/fw/image.bin?v=2&x").unwrap();
        assert_eq!(u.scheme, "coap");
        assert_eq!(u.host, "::1");
        assert_eq!(u.port, Some(5690));
        assert_eq!(u.path, ["fw", "image.bin"]);
        assert_eq!(u.query, ["v=2", "x"]);
        let u = PackageUri::parse("HTTPS://example.net").unwrap();
        assert_eq!(
            (u.scheme.as_str(), u.port, u.path.len()),
            ("https", None, 0)
        );
        for bad in ["noscheme", "coap:///x", "coap://h:99999/x", "coap://[::1/x"] {
            assert!(
                matches!(PackageUri::parse(bad), Err(PullError::InvalidUri(_))),
                "{bad}"
            );
        }
    }
}
