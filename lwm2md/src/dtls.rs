//! DTLS 1.2 client sessions with a pre-shared key (RFC 6347, RFC 4279), sans-IO.
//!
//! OpenSSL does the protocol work; it is fed through an in-memory datagram channel so that
//! the daemon keeps owning the socket and the engine keeps seeing plaintext CoAP. OpenSSL
//! keeps its own clock for the handshake retransmission timer: [`DtlsSession::poll_timeout`]
//! translates it into an `Instant` and [`DtlsSession::handle_timeout`] lets OpenSSL act on it.

use std::collections::VecDeque;
use std::ffi::c_void;
use std::fmt;
use std::io::{self, Read, Write};
use std::time::{Duration, Instant};

use foreign_types::ForeignTypeRef;
use openssl::ssl::{ErrorCode, Ssl, SslContext, SslMethod, SslOptions, SslStream, SslVersion};

/// IPv6 minimum MTU less the IPv6 and UDP headers: a flight never needs IP fragmentation.
pub const DEFAULT_MTU: u32 = 1280 - 40 - 8;
/// How long a handshake may take before the session gives up, whatever OpenSSL's own
/// retransmission count (which reaches several minutes) says.
pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(60);

/// The suites LwM2M names (CCM8 is mandatory in LwM2M 1.0/1.1 and the only one tinydtls
/// speaks), then common alternatives. OpenSSL 3.2 and later rank CCM8 below security
/// level 1; the list is explicit and there are no certificates, so level 0 only keeps it.
const CIPHERS: &str = "PSK-AES128-CCM8:PSK-AES128-CBC-SHA256:PSK-AES128-GCM-SHA256:\
                       ECDHE-PSK-AES128-CBC-SHA256:@SECLEVEL=0";

/// Datagrams queued for a handshake that has not finished; older ones are dropped first
/// (the engine retransmits what still matters).
const MAX_PENDING: usize = 32;
/// Larger than any DTLS record (2^14 plaintext plus expansion).
const READ_BUFFER: usize = 17 * 1024;

// ssl.h: the controls behind the DTLSv1_get_timeout and DTLSv1_handle_timeout macros,
// which openssl-sys does not bind.
const DTLS_CTRL_GET_TIMEOUT: i32 = 73;
const DTLS_CTRL_HANDLE_TIMEOUT: i32 = 74;

/// The credentials and limits of one session.
#[derive(Clone)]
pub struct DtlsConfig {
    pub identity: Vec<u8>,
    pub key: Vec<u8>,
    /// Largest datagram OpenSSL writes (without IP and UDP headers).
    pub mtu: u32,
    pub handshake_timeout: Duration,
}

impl DtlsConfig {
    pub fn psk(identity: Vec<u8>, key: Vec<u8>) -> DtlsConfig {
        DtlsConfig {
            identity,
            key,
            mtu: DEFAULT_MTU,
            handshake_timeout: DEFAULT_HANDSHAKE_TIMEOUT,
        }
    }
}

impl fmt::Debug for DtlsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DtlsConfig")
            .field("identity", &String::from_utf8_lossy(&self.identity))
            .field("key", &"<redacted>")
            .field("mtu", &self.mtu)
            .field("handshake_timeout", &self.handshake_timeout)
            .finish()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DtlsError {
    /// OpenSSL refused the session's settings (a library built without PSK, for example).
    Setup(String),
    /// The handshake was refused; the text is OpenSSL's reason ("tlsv1 alert decrypt
    /// error" is what a wrong key usually looks like).
    Handshake(String),
    /// No complete handshake within the time limit or OpenSSL's retransmissions.
    /// DTLS drops records it cannot authenticate without a word, so a server that answered
    /// and then went silent most likely holds a different key for this identity.
    HandshakeTimeout { server_answered: bool },
    /// The server closed the session (close_notify).
    Closed,
    /// The established session failed.
    Session(String),
}

impl fmt::Display for DtlsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DtlsError::Setup(e) => write!(f, "cannot set up DTLS: {e}"),
            DtlsError::Handshake(e) => write!(f, "DTLS handshake failed: {e}"),
            DtlsError::HandshakeTimeout {
                server_answered: false,
            } => write!(f, "DTLS handshake timed out: no answer from the server"),
            DtlsError::HandshakeTimeout {
                server_answered: true,
            } => write!(
                f,
                "DTLS handshake timed out after the server's hello: \
                 the server most likely holds a different PSK for this identity"
            ),
            DtlsError::Closed => write!(f, "the server closed the DTLS session"),
            DtlsError::Session(e) => write!(f, "DTLS session failed: {e}"),
        }
    }
}

impl std::error::Error for DtlsError {}

/// Whole datagrams in and out, for OpenSSL's BIO: one `write` is one datagram, one `read`
/// returns one datagram, and an empty queue reads as `WouldBlock`.
#[derive(Debug, Default)]
struct Channel {
    incoming: VecDeque<Vec<u8>>,
    outgoing: VecDeque<Vec<u8>>,
}

impl Read for Channel {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let Some(datagram) = self.incoming.pop_front() else {
            return Err(io::ErrorKind::WouldBlock.into());
        };
        // A datagram larger than the buffer is truncated, as recv(2) would.
        let n = datagram.len().min(buf.len());
        buf[..n].copy_from_slice(&datagram[..n]);
        Ok(n)
    }
}

impl Write for Channel {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.outgoing.push_back(buf.to_vec());
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Handshaking,
    Established,
    Failed,
}

/// One DTLS client session with one server.
pub struct DtlsSession {
    stream: SslStream<Channel>,
    state: State,
    /// Plaintext waiting for the handshake to finish.
    pending: VecDeque<Vec<u8>>,
    handshake_deadline: Instant,
    heard_from_server: bool,
}

impl fmt::Debug for DtlsSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DtlsSession")
            .field("state", &self.state)
            .field("pending", &self.pending.len())
            .finish()
    }
}

impl DtlsSession {
    /// Starts a handshake: the ClientHello is ready in [`DtlsSession::poll_transmit`].
    pub fn new(config: &DtlsConfig, now: Instant) -> Result<DtlsSession, DtlsError> {
        let setup = |e: openssl::error::ErrorStack| DtlsError::Setup(e.to_string());
        let mut ctx = SslContext::builder(SslMethod::dtls_client()).map_err(setup)?;
        ctx.set_min_proto_version(Some(SslVersion::DTLS1_2))
            .map_err(setup)?;
        ctx.set_options(SslOptions::NO_QUERY_MTU | SslOptions::NO_TICKET);
        ctx.set_cipher_list(CIPHERS).map_err(setup)?;
        let identity = config.identity.clone();
        let key = config.key.clone();
        ctx.set_psk_client_callback(move |_, _hint, identity_out, key_out| {
            // The identity goes out as a NUL-terminated C string.
            let (Some(id), Some(k)) = (
                identity_out.get_mut(..identity.len() + 1),
                key_out.get_mut(..key.len()),
            ) else {
                return Ok(0);
            };
            id[..identity.len()].copy_from_slice(&identity);
            id[identity.len()] = 0;
            k.copy_from_slice(&key);
            Ok(key.len())
        });
        let ctx = ctx.build();
        let mut ssl = Ssl::new(&ctx).map_err(setup)?;
        ssl.set_mtu(config.mtu).map_err(setup)?;
        ssl.set_connect_state();
        let stream = SslStream::new(ssl, Channel::default()).map_err(setup)?;
        let mut session = DtlsSession {
            stream,
            state: State::Handshaking,
            pending: VecDeque::new(),
            handshake_deadline: now + config.handshake_timeout,
            heard_from_server: false,
        };
        session.drive_handshake()?;
        Ok(session)
    }

    pub fn is_established(&self) -> bool {
        self.state == State::Established
    }

    /// The negotiated cipher suite (OpenSSL's name), once established.
    pub fn cipher(&self) -> Option<&'static str> {
        if !self.is_established() {
            return None;
        }
        self.stream.ssl().current_cipher().map(|c| c.name())
    }

    /// Takes a datagram from the server; returns the plaintext datagrams it carried.
    /// Records that fail authentication are dropped silently, as RFC 6347 4.1.2.7 asks.
    pub fn handle_datagram(&mut self, datagram: &[u8]) -> Result<Vec<Vec<u8>>, DtlsError> {
        // An empty read would look like end-of-file to OpenSSL.
        if self.state == State::Failed || datagram.is_empty() {
            return Ok(Vec::new());
        }
        self.heard_from_server = true;
        if self.state == State::Established && has_short_record(datagram, self.min_record()) {
            return Ok(Vec::new());
        }
        self.stream.get_mut().incoming.push_back(datagram.to_vec());
        if self.state == State::Handshaking {
            self.drive_handshake()?;
        }
        let mut out = Vec::new();
        if self.state == State::Established {
            let mut buf = vec![0u8; READ_BUFFER];
            loop {
                match self.stream.ssl_read(&mut buf) {
                    Ok(n) => out.push(buf.get(..n).unwrap_or_default().to_vec()),
                    Err(e) if e.code() == ErrorCode::WANT_READ => break,
                    Err(e) if e.code() == ErrorCode::ZERO_RETURN => {
                        self.state = State::Failed;
                        return Err(DtlsError::Closed);
                    }
                    Err(e) => {
                        self.state = State::Failed;
                        return Err(DtlsError::Session(reason(&e)));
                    }
                }
            }
        }
        // Whatever OpenSSL did not consume (a datagram after a fatal alert) is stale.
        self.stream.get_mut().incoming.clear();
        Ok(out)
    }

    /// Encrypts one plaintext datagram; before the handshake has finished it waits.
    pub fn send(&mut self, plaintext: &[u8]) -> Result<(), DtlsError> {
        match self.state {
            State::Failed => Ok(()),
            State::Handshaking => {
                if self.pending.len() >= MAX_PENDING {
                    self.pending.pop_front();
                }
                self.pending.push_back(plaintext.to_vec());
                Ok(())
            }
            State::Established => self.write(plaintext),
        }
    }

    /// The next ciphertext datagram for the server.
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.stream.get_mut().outgoing.pop_front()
    }

    /// When [`DtlsSession::handle_timeout`] wants to be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.state != State::Handshaking {
            return None;
        }
        let mut tv = libc::timeval {
            tv_sec: 0,
            tv_usec: 0,
        };
        // SAFETY: the SSL pointer is valid for the lifetime of `self.stream`, and
        // DTLS_CTRL_GET_TIMEOUT writes one `struct timeval` to the pointer it is given,
        // which points to a live, properly aligned `libc::timeval`.
        let running = unsafe {
            openssl_sys::SSL_ctrl(
                self.stream.ssl().as_ptr(),
                DTLS_CTRL_GET_TIMEOUT,
                0,
                &mut tv as *mut libc::timeval as *mut c_void,
            )
        };
        let now = Instant::now();
        let retransmit = (running == 1).then(|| {
            let secs = u64::try_from(tv.tv_sec).unwrap_or(0);
            let micros = u32::try_from(tv.tv_usec).unwrap_or(0);
            now + Duration::from_secs(secs) + Duration::from_micros(micros.into())
        });
        Some(
            retransmit
                .into_iter()
                .chain([self.handshake_deadline])
                .min()
                .unwrap_or(self.handshake_deadline),
        )
    }

    /// Resends the last handshake flight when OpenSSL's timer has run out; fails the
    /// session when the handshake took too long.
    pub fn handle_timeout(&mut self, now: Instant) -> Result<(), DtlsError> {
        if self.state != State::Handshaking {
            return Ok(());
        }
        if now >= self.handshake_deadline {
            self.state = State::Failed;
            return Err(DtlsError::HandshakeTimeout {
                server_answered: self.heard_from_server,
            });
        }
        // SAFETY: the SSL pointer is valid for the lifetime of `self.stream`;
        // DTLS_CTRL_HANDLE_TIMEOUT takes no argument (the NULL pointer is ignored).
        let r = unsafe {
            openssl_sys::SSL_ctrl(
                self.stream.ssl().as_ptr(),
                DTLS_CTRL_HANDLE_TIMEOUT,
                0,
                std::ptr::null_mut(),
            )
        };
        if r < 0 {
            self.state = State::Failed;
            return Err(DtlsError::HandshakeTimeout {
                server_answered: self.heard_from_server,
            });
        }
        Ok(())
    }

    /// The shortest protected record the negotiated suite can produce: explicit nonce and
    /// tag for AEAD suites, IV, MAC and one block of padding for CBC.
    fn min_record(&self) -> usize {
        match self.cipher() {
            Some(name) if name.ends_with("CCM8") => 8 + 8,
            Some(name) if name.contains("GCM") || name.contains("CCM") => 8 + 16,
            Some(name) if name.contains("CBC") => 16 + 48,
            _ => 8 + 8,
        }
    }

    fn drive_handshake(&mut self) -> Result<(), DtlsError> {
        match self.stream.do_handshake() {
            Ok(()) => {
                self.state = State::Established;
                while let Some(p) = self.pending.pop_front() {
                    self.write(&p)?;
                }
                Ok(())
            }
            Err(e) if e.code() == ErrorCode::WANT_READ || e.code() == ErrorCode::WANT_WRITE => {
                Ok(())
            }
            Err(e) => {
                self.state = State::Failed;
                Err(DtlsError::Handshake(reason(&e)))
            }
        }
    }

    fn write(&mut self, plaintext: &[u8]) -> Result<(), DtlsError> {
        match self.stream.ssl_write(plaintext) {
            Ok(_) => Ok(()),
            // Nothing would block on an in-memory channel; a renegotiation in progress
            // is the only way here, and the engine retransmits.
            Err(e) if e.code() == ErrorCode::WANT_READ || e.code() == ErrorCode::WANT_WRITE => {
                Ok(())
            }
            Err(e) => {
                self.state = State::Failed;
                Err(DtlsError::Session(reason(&e)))
            }
        }
    }
}

/// Whether a datagram holds a protected record (epoch above 0) shorter than any the suite
/// produces. RFC 6347 4.1.2.7 has invalid records discarded, but OpenSSL 3.2 and later end
/// the session on such a "publicly invalid" record, so anyone able to spoof the server's
/// address could tear it down with one datagram; those are dropped before OpenSSL sees
/// them. Malformed headers are left to OpenSSL, which discards them.
fn has_short_record(datagram: &[u8], min_len: usize) -> bool {
    const HEADER: usize = 13;
    let mut rest = datagram;
    while let Some(header) = rest.get(..HEADER) {
        let epoch = u16::from_be_bytes([header[3], header[4]]);
        let len = usize::from(u16::from_be_bytes([header[11], header[12]]));
        if epoch > 0 && len < min_len {
            return true;
        }
        match rest.get(HEADER + len..) {
            Some(next) => rest = next,
            None => break,
        }
    }
    false
}

/// OpenSSL's reason texts, without the error-code noise around them.
fn reason(e: &openssl::ssl::Error) -> String {
    if let Some(stack) = e.ssl_error() {
        let reasons: Vec<&str> = stack.errors().iter().filter_map(|e| e.reason()).collect();
        if !reasons.is_empty() {
            return reasons.join("; ");
        }
    }
    if let Some(io) = e.io_error() {
        return io.to_string();
    }
    e.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    const IDENTITY: &[u8] = b"gateway-1";
    const KEY: &[u8] = &[
        0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee,
        0xff,
    ];

    /// An OpenSSL DTLS server in memory, knowing one identity and key.
    struct Server {
        stream: SslStream<Channel>,
        identities_seen: std::sync::Arc<std::sync::Mutex<Vec<Vec<u8>>>>,
    }

    impl Server {
        fn new(key: &'static [u8]) -> Server {
            Server::with_ciphers(key, CIPHERS)
        }

        fn with_ciphers(key: &'static [u8], ciphers: &str) -> Server {
            let mut ctx = SslContext::builder(SslMethod::dtls_server()).unwrap();
            ctx.set_options(SslOptions::NO_QUERY_MTU);
            ctx.set_cipher_list(ciphers).unwrap();
            let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
            let seen2 = seen.clone();
            ctx.set_psk_server_callback(move |_, identity, key_out| {
                let identity = identity.unwrap_or_default();
                seen2.lock().unwrap().push(identity.to_vec());
                if identity != IDENTITY {
                    return Ok(0);
                }
                key_out[..key.len()].copy_from_slice(key);
                Ok(key.len())
            });
            let ctx = ctx.build();
            let mut ssl = Ssl::new(&ctx).unwrap();
            ssl.set_mtu(DEFAULT_MTU).unwrap();
            ssl.set_accept_state();
            Server {
                stream: SslStream::new(ssl, Channel::default()).unwrap(),
                identities_seen: seen,
            }
        }

        /// Takes a datagram; returns plaintext once established, or the handshake error.
        fn receive(&mut self, datagram: Vec<u8>) -> Result<Vec<Vec<u8>>, String> {
            self.stream.get_mut().incoming.push_back(datagram);
            let mut out = Vec::new();
            let mut buf = vec![0u8; READ_BUFFER];
            loop {
                match self.stream.ssl_read(&mut buf) {
                    Ok(n) => out.push(buf[..n].to_vec()),
                    Err(e) if e.code() == ErrorCode::WANT_READ => return Ok(out),
                    Err(e) => return Err(reason(&e)),
                }
            }
        }

        fn transmit(&mut self) -> Vec<Vec<u8>> {
            self.stream.get_mut().outgoing.drain(..).collect()
        }
    }

    /// What a pump delivered: plaintext at the server, plaintext at the client.
    type Delivered = (Vec<Vec<u8>>, Vec<Vec<u8>>);

    /// Moves datagrams both ways until neither side has anything to say; `drop_server`
    /// decides, by the index of the server's datagram, which ones are lost.
    fn pump(
        client: &mut DtlsSession,
        server: &mut Server,
        drop_server: &mut dyn FnMut(usize) -> bool,
        server_sent: &mut usize,
    ) -> (Delivered, Result<(), DtlsError>) {
        let mut at_server = Vec::new();
        let mut at_client = Vec::new();
        loop {
            let mut moved = false;
            while let Some(d) = client.poll_transmit() {
                moved = true;
                // The server's errors show up as alerts to the client.
                if let Ok(p) = server.receive(d) {
                    at_server.extend(p);
                }
            }
            for d in server.transmit() {
                moved = true;
                let n = *server_sent;
                *server_sent += 1;
                if drop_server(n) {
                    continue;
                }
                match client.handle_datagram(&d) {
                    Ok(p) => at_client.extend(p),
                    Err(e) => return ((at_server, at_client), Err(e)),
                }
            }
            if !moved {
                return ((at_server, at_client), Ok(()));
            }
        }
    }

    fn handshake(key: &'static [u8]) -> (DtlsSession, Server, Result<(), DtlsError>) {
        let mut client = DtlsSession::new(
            &DtlsConfig::psk(IDENTITY.to_vec(), KEY.to_vec()),
            Instant::now(),
        )
        .unwrap();
        let mut server = Server::new(key);
        let (_, r) = pump(&mut client, &mut server, &mut |_| false, &mut 0);
        (client, server, r)
    }

    #[test]
    fn handshake_completes_with_ccm8_and_data_flows_both_ways() {
        let (mut client, mut server, r) = handshake(KEY);
        r.unwrap();
        assert!(client.is_established());
        assert_eq!(client.cipher(), Some("PSK-AES128-CCM8"));
        assert_eq!(
            *server.identities_seen.lock().unwrap(),
            vec![IDENTITY.to_vec()]
        );
        assert_eq!(client.poll_timeout(), None);

        client.send(b"POST /rd").unwrap();
        let record = client.poll_transmit().unwrap();
        // 13-byte record header, 8-byte explicit nonce, 8-byte CCM8 tag.
        assert_eq!(record.len(), 13 + 8 + 8 + 8);
        assert_eq!(server.receive(record).unwrap(), vec![b"POST /rd".to_vec()]);

        server.stream.ssl_write(b"2.01 Created").unwrap();
        let [record] = server.transmit().try_into().unwrap();
        assert_eq!(
            client.handle_datagram(&record).unwrap(),
            vec![b"2.01 Created".to_vec()]
        );
    }

    #[test]
    fn the_other_offered_suites_are_negotiated() {
        for suite in [
            "PSK-AES128-CBC-SHA256",
            "PSK-AES128-GCM-SHA256",
            "ECDHE-PSK-AES128-CBC-SHA256",
        ] {
            let mut client = DtlsSession::new(
                &DtlsConfig::psk(IDENTITY.to_vec(), KEY.to_vec()),
                Instant::now(),
            )
            .unwrap();
            let mut server = Server::with_ciphers(KEY, suite);
            let (_, r) = pump(&mut client, &mut server, &mut |_| false, &mut 0);
            r.unwrap();
            assert_eq!(client.cipher(), Some(suite));
            client.send(b"ping").unwrap();
            let record = client.poll_transmit().unwrap();
            assert!(record.len() >= 13 + client.min_record(), "{suite}");
            assert_eq!(server.receive(record).unwrap(), vec![b"ping".to_vec()]);
        }
    }

    #[test]
    fn data_sent_during_the_handshake_waits_for_it() {
        let mut client = DtlsSession::new(
            &DtlsConfig::psk(IDENTITY.to_vec(), KEY.to_vec()),
            Instant::now(),
        )
        .unwrap();
        client.send(b"first").unwrap();
        client.send(b"second").unwrap();
        let mut server = Server::new(KEY);
        let ((at_server, _), r) = pump(&mut client, &mut server, &mut |_| false, &mut 0);
        r.unwrap();
        assert_eq!(at_server, vec![b"first".to_vec(), b"second".to_vec()]);
    }

    #[test]
    fn wrong_key_stalls_the_handshake_until_the_deadline() {
        static OTHER: [u8; 16] = [0x42; 16];
        let start = Instant::now();
        let (mut client, _server, r) = handshake(&OTHER);
        // The server drops the undecryptable Finished without an alert.
        r.unwrap();
        assert!(!client.is_established());
        let e = client
            .handle_timeout(start + DEFAULT_HANDSHAKE_TIMEOUT + Duration::from_secs(1))
            .unwrap_err();
        assert_eq!(
            e,
            DtlsError::HandshakeTimeout {
                server_answered: true
            }
        );
        assert!(e.to_string().contains("different PSK"), "{e}");
    }

    #[test]
    fn unknown_identity_fails_with_openssl_reason() {
        let mut client = DtlsSession::new(
            &DtlsConfig::psk(b"stranger".to_vec(), KEY.to_vec()),
            Instant::now(),
        )
        .unwrap();
        let mut server = Server::new(KEY);
        let (_, r) = pump(&mut client, &mut server, &mut |_| false, &mut 0);
        let e = r.unwrap_err();
        assert!(matches!(e, DtlsError::Handshake(_)), "{e:?}");
        assert!(e.to_string().contains("unknown psk identity"), "{e}");
        assert!(!client.is_established());
        assert_eq!(client.poll_timeout(), None);
    }

    #[test]
    fn garbage_from_the_network_is_not_fatal() {
        let (mut client, mut server, r) = handshake(KEY);
        r.unwrap();
        let mut short_ccm8 = vec![0x17, 0xfe, 0xfd, 0, 1, 0, 0, 0, 0, 0, 9, 0, 15];
        short_ccm8.extend([0xa5; 15]);
        let mut bad_tag = vec![0x17, 0xfe, 0xfd, 0, 1, 0, 0, 0, 0, 0, 10, 0, 24];
        bad_tag.extend([0x5a; 24]);
        for junk in [&short_ccm8[..], &bad_tag[..]] {
            assert_eq!(client.handle_datagram(junk), Ok(Vec::new()), "{junk:?}");
        }
        for junk in [
            &b""[..],
            b"\x17\xfe\xfd",
            &[0x17, 0xfe, 0xfd, 0, 1, 0, 0, 0, 0, 0, 9, 0, 4, 1, 2, 3, 4],
        ] {
            assert_eq!(client.handle_datagram(junk), Ok(Vec::new()), "{junk:?}");
        }
        assert!(client.is_established());
        // Still working.
        server.stream.ssl_write(b"2.05").unwrap();
        let [record] = server.transmit().try_into().unwrap();
        assert_eq!(client.handle_datagram(&record), Ok(vec![b"2.05".to_vec()]));
    }

    #[test]
    fn short_protected_records_are_found() {
        let record = |epoch: u8, len: u8| {
            let mut r = vec![0x17, 0xfe, 0xfd, 0, epoch, 0, 0, 0, 0, 0, 1, 0, len];
            r.extend(std::iter::repeat_n(0u8, len.into()));
            r
        };
        assert!(!has_short_record(&record(1, 16), 16));
        assert!(has_short_record(&record(1, 15), 16));
        // Epoch 0 records are the handshake's, in the clear.
        assert!(!has_short_record(&record(0, 3), 16));
        let two = [record(1, 16), record(1, 4)].concat();
        assert!(has_short_record(&two, 16));
        // Truncated headers and bodies are OpenSSL's to discard.
        assert!(!has_short_record(&record(1, 16)[..20], 16));
        assert!(!has_short_record(&[0x17, 0xfe], 16));
        assert!(!has_short_record(&[], 16));
    }

    #[test]
    fn lost_server_flight_is_recovered_by_the_retransmission_timer() {
        let mut client = DtlsSession::new(
            &DtlsConfig::psk(IDENTITY.to_vec(), KEY.to_vec()),
            Instant::now(),
        )
        .unwrap();
        let mut server = Server::new(KEY);
        let mut sent = 0;
        // Lose the whole first server flight (HelloVerifyRequest or ServerHello..Done).
        let first_flight = {
            let (_, r) = pump(&mut client, &mut server, &mut |_| true, &mut sent);
            r.unwrap();
            sent
        };
        assert!(first_flight > 0);
        assert!(!client.is_established());
        let deadline = client.poll_timeout().unwrap();
        // OpenSSL's initial timer is one second on its own clock.
        std::thread::sleep(deadline.saturating_duration_since(Instant::now()));
        client.handle_timeout(Instant::now()).unwrap();
        // A retransmitted ClientHello; the server answers it again.
        let (_, r) = pump(&mut client, &mut server, &mut |_| false, &mut sent);
        r.unwrap();
        assert!(client.is_established());
    }

    #[test]
    fn silent_server_ends_the_handshake_at_the_deadline() {
        let start = Instant::now();
        let mut config = DtlsConfig::psk(IDENTITY.to_vec(), KEY.to_vec());
        config.handshake_timeout = Duration::from_secs(30);
        let mut client = DtlsSession::new(&config, start).unwrap();
        assert!(client.poll_transmit().is_some());
        assert!(client.poll_timeout().unwrap() <= start + Duration::from_secs(30));
        client
            .handle_timeout(start + Duration::from_secs(10))
            .unwrap();
        assert_eq!(
            client.handle_timeout(start + Duration::from_secs(30)),
            Err(DtlsError::HandshakeTimeout {
                server_answered: false
            })
        );
        assert_eq!(client.poll_timeout(), None);
    }

    #[test]
    fn handshake_datagrams_fit_the_mtu() {
        let mut client = DtlsSession::new(
            &DtlsConfig::psk(IDENTITY.to_vec(), KEY.to_vec()),
            Instant::now(),
        )
        .unwrap();
        let mut server = Server::new(KEY);
        let (mut to_server, mut to_client) = (Vec::new(), Vec::new());
        while !client.is_established() {
            let mut moved = false;
            while let Some(d) = client.poll_transmit() {
                moved = true;
                to_server.push(d.len());
                server.receive(d).unwrap();
            }
            for d in server.transmit() {
                moved = true;
                to_client.push(d.len());
                client.handle_datagram(&d).unwrap();
            }
            assert!(moved, "handshake stalled");
        }
        for n in to_server.iter().chain(&to_client) {
            assert!(*n <= DEFAULT_MTU as usize, "{to_server:?} {to_client:?}");
        }
    }
}
