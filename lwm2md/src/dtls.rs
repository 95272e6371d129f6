//! DTLS 1.2 client sessions (RFC 6347) with a pre-shared key (RFC 4279), X.509
//! certificates or raw public keys (RFC 7250, OpenSSL 3.2+), sans-IO, with session
//! resumption.
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
use openssl::pkey::PKey;
use openssl::ssl::{
    ErrorCode, Ssl, SslContext, SslMethod, SslOptions, SslSession, SslStream, SslVerifyMode,
    SslVersion,
};
use openssl::x509::store::X509StoreBuilder;
use openssl::x509::{X509StoreContextRef, X509VerifyResult, X509};

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
/// The certificate suites LwM2M names (ECDHE-ECDSA with CCM8 is mandatory), then common
/// ones for RSA keys. With certificates the security level also bounds key sizes, so it is
/// lowered only where OpenSSL (3.2+) would otherwise drop CCM8.
const CERT_CIPHERS: &str = "ECDHE-ECDSA-AES128-CCM8:ECDHE-ECDSA-AES128-GCM-SHA256:\
                            ECDHE-ECDSA-AES128-CBC-SHA256:ECDHE-RSA-AES128-GCM-SHA256:\
                            ECDHE-RSA-AES128-SHA256";
/// OpenSSL 3.2.0 in OPENSSL_VERSION_NUMBER form.
const OPENSSL_3_2: i64 = 0x3020_0000;

/// The suites for raw public keys: ECDHE-ECDSA only (LwM2M's RPK mode uses P-256 keys),
/// CCM8 as LwM2M mandates, then GCM. OpenSSL 3.2+ ranks CCM8 below security level 1.
#[cfg(ossl_rpk)]
const RPK_CIPHERS: &str = "ECDHE-ECDSA-AES128-CCM8:ECDHE-ECDSA-AES128-GCM-SHA256:@SECLEVEL=0";

/// Whether this build has raw public keys (Security Mode 1, RFC 7250): decided when it
/// was built, from the version of the OpenSSL it was built against (3.2 or newer).
pub const RAW_PUBLIC_KEYS: bool = cfg!(ossl_rpk);

/// The DER SubjectPublicKeyInfo of a DER private key: the Public Key (/0/x/3) that a raw
/// public key account shows the server.
pub fn public_key_of(private_key: &[u8]) -> Result<Vec<u8>, openssl::error::ErrorStack> {
    PKey::private_key_from_der(private_key)?.public_key_to_der()
}

/// Why raw public keys (Security Mode 1, RFC 7250) cannot be used by this build.
pub fn raw_public_keys_unavailable() -> String {
    let linked = openssl::version::version();
    format!(
        "raw public keys (RFC 7250) need OpenSSL 3.2 or newer, and this build was made \
         against an older one (linked: {linked}); rebuild with `--features vendored` or \
         against a newer system OpenSSL, or use certificates or a pre-shared key"
    )
}

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
#[derive(Clone, Debug)]
pub struct DtlsConfig {
    pub credentials: Credentials,
    /// Largest datagram OpenSSL writes (without IP and UDP headers).
    pub mtu: u32,
    pub handshake_timeout: Duration,
}

/// What the client proves itself with, and how it checks the server.
#[derive(Clone, PartialEq, Eq)]
pub enum Credentials {
    /// Security mode 0: PSK identity (/0/x/3) and key (/0/x/5).
    Psk { identity: Vec<u8>, key: Vec<u8> },
    /// Security mode 2.
    Certificate(Certificates),
    /// Security mode 1, raw public keys (RFC 7250).
    RawPublicKey(RawPublicKey),
}

/// Security mode 1: our key pair and the server's public key, as the Security object
/// holds them (DER).
#[derive(Clone, PartialEq, Eq)]
pub struct RawPublicKey {
    /// Our private key (/0/x/5), PKCS#8 or traditional DER; its public half is what the
    /// server knows us by (/0/x/3).
    pub private_key: Vec<u8>,
    /// The server's public key (/0/x/4), DER SubjectPublicKeyInfo: the only key the
    /// session accepts from the server.
    pub server_public_key: Vec<u8>,
}

impl fmt::Debug for RawPublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RawPublicKey")
            .field("private_key", &"<redacted>")
            .field("server_public_key", &self.server_public_key.len())
            .finish()
    }
}

/// Security mode 2, X.509 certificates, as the Security object holds them (DER).
#[derive(Clone, PartialEq, Eq)]
pub struct Certificates {
    /// Our certificate (/0/x/3), then any intermediates to send with it.
    pub chain: Vec<Vec<u8>>,
    /// Our private key (/0/x/5), PKCS#8 or traditional DER.
    pub private_key: Vec<u8>,
    /// The server's certificate or its CA (/0/x/4), as `usage` says.
    pub server_certificate: Option<Vec<u8>>,
    /// Certificate Usage (/0/x/15, RFC 6698 semantics).
    pub usage: CertificateUsage,
    /// CA certificates (a PEM file or a hashed directory) for PKIX validation; the
    /// system's default paths when `None`.
    pub trust_store: Option<std::path::PathBuf>,
    /// Server Name Indication (/0/x/14), also the name the certificate must carry when
    /// PKIX validation applies.
    pub sni: Option<String>,
}

/// /0/x/15, with RFC 6698's meanings (DANE's certificate usages).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CertificateUsage {
    /// 0: PKIX validation, and the chain must contain the given CA certificate.
    CaConstraint,
    /// 1: PKIX validation, and the server's certificate must be the given one.
    ServiceCertificateConstraint,
    /// 2: the given certificate is the trust anchor the chain must lead to.
    TrustAnchorAssertion,
    /// 3 (the default): the server's certificate must be the given one; no PKIX.
    DomainIssuedCertificate,
}

impl CertificateUsage {
    pub fn from_code(code: i64) -> Option<CertificateUsage> {
        Some(match code {
            0 => CertificateUsage::CaConstraint,
            1 => CertificateUsage::ServiceCertificateConstraint,
            2 => CertificateUsage::TrustAnchorAssertion,
            3 => CertificateUsage::DomainIssuedCertificate,
            _ => return None,
        })
    }

    pub fn code(self) -> i64 {
        match self {
            CertificateUsage::CaConstraint => 0,
            CertificateUsage::ServiceCertificateConstraint => 1,
            CertificateUsage::TrustAnchorAssertion => 2,
            CertificateUsage::DomainIssuedCertificate => 3,
        }
    }
}

impl DtlsConfig {
    pub fn psk(identity: Vec<u8>, key: Vec<u8>) -> DtlsConfig {
        DtlsConfig::with(Credentials::Psk { identity, key })
    }

    pub fn certificate(certificates: Certificates) -> DtlsConfig {
        DtlsConfig::with(Credentials::Certificate(certificates))
    }

    fn with(credentials: Credentials) -> DtlsConfig {
        DtlsConfig {
            credentials,
            mtu: DEFAULT_MTU,
            handshake_timeout: DEFAULT_HANDSHAKE_TIMEOUT,
        }
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Credentials::Psk { identity, .. } => f
                .debug_struct("Psk")
                .field("identity", &String::from_utf8_lossy(identity))
                .field("key", &"<redacted>")
                .finish(),
            Credentials::Certificate(c) => c.fmt(f),
            Credentials::RawPublicKey(k) => k.fmt(f),
        }
    }
}

impl fmt::Debug for Certificates {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Certificates")
            .field("chain", &self.chain.len())
            .field("private_key", &"<redacted>")
            .field("server_certificate", &self.server_certificate.is_some())
            .field("usage", &self.usage)
            .field("trust_store", &self.trust_store)
            .field("sni", &self.sni)
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
                 the server most likely holds a different PSK for this identity \
                 (or, with certificates or raw public keys, refused ours)"
            ),
            DtlsError::Closed => write!(f, "the server closed the DTLS session"),
            DtlsError::Session(e) => write!(f, "DTLS session failed: {e}"),
        }
    }
}

impl std::error::Error for DtlsError {}

/// Whole datagrams in and out, for OpenSSL's BIO: one `write` is one datagram, one `read`
/// returns one datagram, and an empty queue reads as `WouldBlock`. Public so that an
/// OpenSSL server in a benchmark or test runs over the same channel.
#[derive(Debug, Default)]
pub struct Channel {
    pub incoming: VecDeque<Vec<u8>>,
    pub outgoing: VecDeque<Vec<u8>>,
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

/// The long-lived half of a server's DTLS: the OpenSSL context built once from the
/// credentials, and the last established session, offered again on the next handshake
/// (RFC 5246 §7.3 abbreviated handshake) so that a NAT rebinding or a lost session costs
/// one round trip and no certificate or key exchange, where the server still has it.
pub struct DtlsClient {
    ctx: SslContext,
    /// The Server Name Indication sent (never an address literal, RFC 6066 §3).
    sni: Option<String>,
    mtu: u32,
    handshake_timeout: Duration,
    resumable: Option<SslSession>,
}

impl fmt::Debug for DtlsClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DtlsClient")
            .field("resumable", &self.resumable.is_some())
            .finish()
    }
}

impl DtlsClient {
    pub fn new(config: &DtlsConfig) -> Result<DtlsClient, DtlsError> {
        let setup = |e: openssl::error::ErrorStack| DtlsError::Setup(e.to_string());
        let mut ctx = SslContext::builder(SslMethod::dtls_client()).map_err(setup)?;
        ctx.set_min_proto_version(Some(SslVersion::DTLS1_2))
            .map_err(setup)?;
        // Resumption by session ID only: tickets would add bytes to every handshake.
        ctx.set_options(SslOptions::NO_QUERY_MTU | SslOptions::NO_TICKET);
        ctx.set_session_cache_mode(openssl::ssl::SslSessionCacheMode::CLIENT);
        match &config.credentials {
            Credentials::Psk { identity, key } => {
                ctx.set_cipher_list(CIPHERS).map_err(setup)?;
                let (identity, key) = (identity.clone(), key.clone());
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
            }
            Credentials::Certificate(c) => configure_certificates(&mut ctx, c)?,
            #[cfg(ossl_rpk)]
            Credentials::RawPublicKey(k) => rpk::configure(&mut ctx, k)?,
            #[cfg(not(ossl_rpk))]
            Credentials::RawPublicKey(_) => {
                return Err(DtlsError::Setup(raw_public_keys_unavailable()))
            }
        }
        let sni = match &config.credentials {
            Credentials::Certificate(c) => c
                .sni
                .clone()
                .filter(|name| name.parse::<std::net::IpAddr>().is_err()),
            Credentials::Psk { .. } | Credentials::RawPublicKey(_) => None,
        };
        Ok(DtlsClient {
            ctx: ctx.build(),
            sni,
            mtu: config.mtu,
            handshake_timeout: config.handshake_timeout,
            resumable: None,
        })
    }

    /// Starts a handshake, offering the last session when there is one.
    pub fn connect(&self, now: Instant) -> Result<DtlsSession, DtlsError> {
        let setup = |e: openssl::error::ErrorStack| DtlsError::Setup(e.to_string());
        let mut ssl = Ssl::new(&self.ctx).map_err(setup)?;
        ssl.set_mtu(self.mtu).map_err(setup)?;
        if let Some(name) = &self.sni {
            ssl.set_hostname(name).map_err(setup)?;
        }
        if let Some(session) = &self.resumable {
            // SAFETY: the session was established through an `Ssl` of this same
            // context (see `remember`), which is what SSL_set_session requires.
            unsafe { ssl.set_session(session) }.map_err(setup)?;
        }
        ssl.set_connect_state();
        let stream = SslStream::new(ssl, Channel::default()).map_err(setup)?;
        let mut session = DtlsSession {
            stream,
            state: State::Handshaking,
            pending: VecDeque::new(),
            handshake_deadline: now + self.handshake_timeout,
            heard_from_server: false,
        };
        session.drive_handshake()?;
        Ok(session)
    }

    /// Keeps an established session for the next `connect`.
    pub fn remember(&mut self, session: &DtlsSession) {
        if session.is_established() {
            self.resumable = session.stream.ssl().session().map(|s| s.to_owned());
        }
    }

    /// Forgets the session to resume (the server refused it or the credentials changed).
    pub fn forget(&mut self) {
        self.resumable = None;
    }
}

/// Our certificate and key, and the check of the server's certificate that the
/// Certificate Usage asks for.
fn configure_certificates(
    ctx: &mut openssl::ssl::SslContextBuilder,
    c: &Certificates,
) -> Result<(), DtlsError> {
    let setup = |what: &str| {
        let what = what.to_string();
        move |e: openssl::error::ErrorStack| DtlsError::Setup(format!("{what}: {e}"))
    };
    let mut ciphers = CERT_CIPHERS.to_string();
    if openssl::version::number() >= OPENSSL_3_2 {
        ciphers.push_str(":@SECLEVEL=0");
    }
    ctx.set_cipher_list(&ciphers)
        .map_err(setup("cipher list"))?;
    let mut chain = c.chain.iter();
    let leaf = chain
        .next()
        .ok_or_else(|| DtlsError::Setup("no client certificate".into()))?;
    let leaf = X509::from_der(leaf).map_err(setup("client certificate"))?;
    ctx.set_certificate(&leaf)
        .map_err(setup("client certificate"))?;
    for der in chain {
        ctx.add_extra_chain_cert(X509::from_der(der).map_err(setup("certificate chain"))?)
            .map_err(setup("certificate chain"))?;
    }
    let key = PKey::private_key_from_der(&c.private_key).map_err(setup("private key"))?;
    ctx.set_private_key(&key)
        .map_err(setup("the private key does not match the certificate"))?;
    ctx.check_private_key()
        .map_err(setup("the private key does not match the certificate"))?;

    let pinned = c
        .server_certificate
        .as_ref()
        .map(|der| X509::from_der(der).map_err(setup("server certificate")))
        .transpose()?;
    let pkix = match (c.usage, &pinned) {
        (CertificateUsage::DomainIssuedCertificate, Some(_)) => false,
        (CertificateUsage::TrustAnchorAssertion, Some(anchor)) => {
            let mut store = X509StoreBuilder::new().map_err(setup("trust store"))?;
            store
                .add_cert(anchor.clone())
                .map_err(setup("trust anchor"))?;
            ctx.set_verify_cert_store(store.build())
                .map_err(setup("trust anchor"))?;
            true
        }
        _ => {
            match &c.trust_store {
                Some(path) if path.is_dir() => ctx
                    .load_verify_locations(None, Some(path))
                    .map_err(setup("trust_store"))?,
                Some(path) => ctx
                    .load_verify_locations(Some(path), None)
                    .map_err(setup("trust_store"))?,
                None => ctx
                    .set_default_verify_paths()
                    .map_err(setup("default trust store"))?,
            }
            true
        }
    };
    if pkix {
        if let Some(name) = &c.sni {
            let param = ctx.verify_param_mut();
            match name.parse::<std::net::IpAddr>() {
                Ok(ip) => param.set_ip(ip).map_err(setup("server address"))?,
                Err(_) => param.set_host(name).map_err(setup("server name"))?,
            }
        }
    }
    let usage = c.usage;
    let pinned_der = pinned
        .map(|p| p.to_der().map_err(setup("server certificate")))
        .transpose()?;
    // Called for each certificate of the chain, the server's own (depth 0) last, when
    // the verified chain is complete.
    ctx.set_verify_callback(SslVerifyMode::PEER, move |preverified, store| {
        let Some(pinned) = pinned_der.as_ref() else {
            return preverified;
        };
        let depth = store.error_depth();
        let leaf_is_pinned = || cert_der(store).as_ref() == Some(pinned);
        match usage {
            CertificateUsage::TrustAnchorAssertion => preverified,
            CertificateUsage::DomainIssuedCertificate => depth > 0 || leaf_is_pinned(),
            CertificateUsage::ServiceCertificateConstraint => {
                preverified && (depth > 0 || leaf_is_pinned())
            }
            CertificateUsage::CaConstraint if depth > 0 => preverified,
            CertificateUsage::CaConstraint => {
                let in_chain = store.chain().is_some_and(|chain| {
                    chain
                        .iter()
                        .skip(1)
                        .any(|c| c.to_der().ok().as_ref() == Some(pinned))
                });
                if preverified && !in_chain {
                    store.set_error(X509VerifyResult::APPLICATION_VERIFICATION);
                }
                preverified && in_chain
            }
        }
    });
    Ok(())
}

/// Raw public keys (RFC 7250), through the OpenSSL 3.2 API that the `openssl` crate does
/// not bind.
#[cfg(ossl_rpk)]
mod rpk {
    use super::{DtlsError, RawPublicKey, RPK_CIPHERS};
    use foreign_types::ForeignTypeRef;
    use openssl::pkey::{PKey, PKeyRef, Public};
    use openssl::ssl::{SslContextBuilder, SslVerifyMode};
    use openssl::x509::X509StoreContextRef;
    use std::ffi::{c_int, c_uchar};

    /// tls1.h: the certificate type of RFC 7250 (IANA TLS Certificate Types 2).
    const TLSEXT_CERT_TYPE_RPK: c_uchar = 2;

    extern "C" {
        fn SSL_CTX_set1_client_cert_type(
            ctx: *mut openssl_sys::SSL_CTX,
            val: *const c_uchar,
            len: usize,
        ) -> c_int;
        fn SSL_CTX_set1_server_cert_type(
            ctx: *mut openssl_sys::SSL_CTX,
            val: *const c_uchar,
            len: usize,
        ) -> c_int;
        fn X509_STORE_CTX_get0_rpk(
            ctx: *const openssl_sys::X509_STORE_CTX,
        ) -> *mut openssl_sys::EVP_PKEY;
    }

    /// Both sides authenticate with raw public keys only (a server offering only X.509
    /// fails the handshake), and the server's must be the configured one.
    pub fn configure(ctx: &mut SslContextBuilder, k: &RawPublicKey) -> Result<(), DtlsError> {
        let setup = |what: &'static str| {
            move |e: openssl::error::ErrorStack| DtlsError::Setup(format!("{what}: {e}"))
        };
        set_cert_types(ctx).map_err(setup("raw public key certificate type"))?;
        ctx.set_cipher_list(RPK_CIPHERS)
            .map_err(setup("cipher list"))?;
        let key = PKey::private_key_from_der(&k.private_key).map_err(setup("private key"))?;
        ctx.set_private_key(&key).map_err(setup("private key"))?;
        let expected =
            PKey::public_key_from_der(&k.server_public_key).map_err(setup("server public key"))?;
        // OpenSSL has no trust for a raw key of its own and reports every one as
        // untrusted: the callback alone decides, by comparing it with the configured key.
        ctx.set_verify_callback(SslVerifyMode::PEER, move |_, store| {
            // SAFETY: called from OpenSSL's verification of the peer's key.
            unsafe { peer_key(store) }.is_some_and(|peer| peer.public_eq(&expected))
        });
        Ok(())
    }

    /// The raw public key being verified, if the peer sent one.
    ///
    /// # Safety
    /// `store` must be the store context of a verify callback; the key lives as long.
    pub unsafe fn peer_key(store: &X509StoreContextRef) -> Option<&PKeyRef<Public>> {
        // SAFETY: `store` is a live X509_STORE_CTX; get0 lends a key it owns.
        let peer = unsafe { X509_STORE_CTX_get0_rpk(store.as_ptr()) };
        // SAFETY: a non-null EVP_PKEY that outlives the borrow of `store`.
        (!peer.is_null()).then(|| unsafe { PKeyRef::from_ptr(peer) })
    }

    /// Offers and accepts only RFC 7250 raw public keys, for both sides' keys. Public so
    /// that a test server is set up the same way.
    pub fn set_cert_types(ctx: &mut SslContextBuilder) -> Result<(), openssl::error::ErrorStack> {
        let types = [TLSEXT_CERT_TYPE_RPK];
        // SAFETY: the context is valid and OpenSSL copies the list.
        let ok = unsafe {
            SSL_CTX_set1_client_cert_type(ctx.as_ptr(), types.as_ptr(), types.len()) == 1
                && SSL_CTX_set1_server_cert_type(ctx.as_ptr(), types.as_ptr(), types.len()) == 1
        };
        if ok {
            Ok(())
        } else {
            Err(openssl::error::ErrorStack::get())
        }
    }
}

fn cert_der(store: &X509StoreContextRef) -> Option<Vec<u8>> {
    store.current_cert().and_then(|c| c.to_der().ok())
}

impl Drop for DtlsSession {
    fn drop(&mut self) {
        // OpenSSL marks the session of a connection freed without a shutdown as not
        // resumable. An established session is only dropped to be replaced (a new
        // handshake after silence); it stays good for resumption, and nothing is sent.
        if self.state == State::Established {
            self.stream.set_shutdown(
                openssl::ssl::ShutdownState::SENT | openssl::ssl::ShutdownState::RECEIVED,
            );
        }
    }
}

impl DtlsSession {
    /// Starts a full handshake with a context of its own (no resumption): the
    /// ClientHello is ready in [`DtlsSession::poll_transmit`].
    pub fn new(config: &DtlsConfig, now: Instant) -> Result<DtlsSession, DtlsError> {
        DtlsClient::new(config)?.connect(now)
    }

    /// Whether the handshake resumed an earlier session (abbreviated handshake).
    pub fn resumed(&self) -> bool {
        self.stream.ssl().session_reused()
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
                let mut why = reason(&e);
                // "certificate verify failed" alone does not say what to fix.
                let verify = self.stream.ssl().verify_result();
                if verify != X509VerifyResult::OK {
                    why.push_str(&format!(" ({})", verify.error_string()));
                }
                Err(DtlsError::Handshake(why))
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

    type Seen = std::sync::Arc<std::sync::Mutex<Vec<Vec<u8>>>>;

    /// An OpenSSL DTLS server in memory, knowing one identity and key.
    struct Server {
        stream: SslStream<Channel>,
        identities_seen: Seen,
    }

    fn psk_server_context(key: &'static [u8], ciphers: &str) -> (SslContext, Seen) {
        let mut ctx = SslContext::builder(SslMethod::dtls_server()).unwrap();
        ctx.set_options(SslOptions::NO_QUERY_MTU);
        ctx.set_cipher_list(ciphers).unwrap();
        ctx.set_session_id_context(b"lwm2md-test").unwrap();
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
        (ctx.build(), seen)
    }

    impl Server {
        fn new(key: &'static [u8]) -> Server {
            Server::with_ciphers(key, CIPHERS)
        }

        fn with_ciphers(key: &'static [u8], ciphers: &str) -> Server {
            let (ctx, seen) = psk_server_context(key, ciphers);
            Server::on(&ctx, seen)
        }

        /// A new server connection on a shared context (its session cache included).
        fn on(ctx: &SslContext, identities_seen: Seen) -> Server {
            let mut ssl = Ssl::new(ctx).unwrap();
            ssl.set_mtu(DEFAULT_MTU).unwrap();
            ssl.set_accept_state();
            Server {
                stream: SslStream::new(ssl, Channel::default()).unwrap(),
                identities_seen,
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

    /// Bytes of a whole handshake, both ways.
    fn handshake_bytes(client: &mut DtlsSession, server: &mut Server) -> usize {
        let mut bytes = 0;
        while !client.is_established() {
            let mut moved = false;
            while let Some(d) = client.poll_transmit() {
                moved = true;
                bytes += d.len();
                server.receive(d).unwrap();
            }
            for d in server.transmit() {
                moved = true;
                bytes += d.len();
                client.handle_datagram(&d).unwrap();
            }
            assert!(moved, "handshake stalled");
        }
        bytes
    }

    #[test]
    fn a_new_handshake_resumes_the_last_session() {
        let (ctx, seen) = psk_server_context(KEY, CIPHERS);
        let mut client =
            DtlsClient::new(&DtlsConfig::psk(IDENTITY.to_vec(), KEY.to_vec())).unwrap();
        let mut first = client.connect(Instant::now()).unwrap();
        // The server keeps its side of the session while this test runs.
        let mut first_server = Server::on(&ctx, seen.clone());
        let full = handshake_bytes(&mut first, &mut first_server);
        assert!(!first.resumed());
        client.remember(&first);
        drop(first);

        // The NAT forgot the mapping, or the session failed: an abbreviated handshake.
        let mut second = client.connect(Instant::now()).unwrap();
        let mut server = Server::on(&ctx, seen.clone());
        let short = handshake_bytes(&mut second, &mut server);
        assert!(second.resumed());
        assert!(short < full, "{short} >= {full}");
        // No PSK lookup happened for the resumed one.
        assert_eq!(seen.lock().unwrap().len(), 1);
        // In an abbreviated handshake the client's Finished is the last flight.
        second.send(b"POST /rd/5a3f").unwrap();
        let ((at_server, _), r) = pump(&mut second, &mut server, &mut |_| false, &mut 0);
        r.unwrap();
        assert_eq!(at_server, vec![b"POST /rd/5a3f".to_vec()]);

        // A server that lost its cache answers with a full handshake, transparently.
        let (other_ctx, other_seen) = psk_server_context(KEY, CIPHERS);
        let mut third = client.connect(Instant::now()).unwrap();
        handshake_bytes(&mut third, &mut Server::on(&other_ctx, other_seen));
        assert!(third.is_established() && !third.resumed());
    }

    /// Raw public keys (RFC 7250) against an OpenSSL server set up for them.
    #[cfg(ossl_rpk)]
    mod rpk {
        use super::*;
        use openssl::ec::{EcGroup, EcKey};
        use openssl::nid::Nid;
        use openssl::pkey::Private;

        fn key() -> PKey<Private> {
            let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap();
            PKey::from_ec_key(EcKey::generate(&group).unwrap()).unwrap()
        }

        /// A server with its own key pair that accepts only `client`'s public key, and
        /// counts the client keys it was shown.
        fn server(own: &PKey<Private>, client: &PKey<Private>, ciphers: &str) -> (Server, Seen) {
            let mut ctx = SslContext::builder(SslMethod::dtls_server()).unwrap();
            ctx.set_options(SslOptions::NO_QUERY_MTU);
            super::super::rpk::set_cert_types(&mut ctx).unwrap();
            ctx.set_cipher_list(ciphers).unwrap();
            ctx.set_private_key(own).unwrap();
            let expected = PKey::public_key_from_der(&client.public_key_to_der().unwrap()).unwrap();
            let seen: Seen = Default::default();
            let seen2 = seen.clone();
            ctx.set_verify_callback(
                SslVerifyMode::PEER | SslVerifyMode::FAIL_IF_NO_PEER_CERT,
                move |_, store| {
                    let peer = unsafe { super::super::rpk::peer_key(store) };
                    let Some(peer) = peer else { return false };
                    seen2
                        .lock()
                        .unwrap()
                        .push(peer.public_key_to_der().unwrap());
                    peer.public_eq(&expected)
                },
            );
            (Server::on(&ctx.build(), seen.clone()), seen)
        }

        fn config(client: &PKey<Private>, server: &PKey<Private>) -> DtlsConfig {
            DtlsConfig {
                credentials: Credentials::RawPublicKey(RawPublicKey {
                    private_key: client.private_key_to_der().unwrap(),
                    server_public_key: server.public_key_to_der().unwrap(),
                }),
                mtu: DEFAULT_MTU,
                handshake_timeout: DEFAULT_HANDSHAKE_TIMEOUT,
            }
        }

        #[test]
        fn rpk_handshake_with_ccm8_and_gcm_and_data_flows() {
            let (ours, theirs) = (key(), key());
            for (ciphers, expected) in [
                (RPK_CIPHERS, "ECDHE-ECDSA-AES128-CCM8"),
                (
                    "ECDHE-ECDSA-AES128-GCM-SHA256",
                    "ECDHE-ECDSA-AES128-GCM-SHA256",
                ),
            ] {
                let mut client = DtlsClient::new(&config(&ours, &theirs))
                    .unwrap()
                    .connect(Instant::now())
                    .unwrap();
                let (mut server, seen) = server(&theirs, &ours, ciphers);
                let (_, r) = pump(&mut client, &mut server, &mut |_| false, &mut 0);
                r.unwrap();
                assert!(client.is_established());
                assert_eq!(client.cipher(), Some(expected));
                // The server was shown our raw public key, nothing else.
                assert_eq!(
                    *seen.lock().unwrap(),
                    vec![ours.public_key_to_der().unwrap()]
                );
                client.send(b"POST /rd").unwrap();
                let ((at_server, _), r) = pump(&mut client, &mut server, &mut |_| false, &mut 0);
                r.unwrap();
                assert_eq!(at_server, vec![b"POST /rd".to_vec()]);
            }
        }

        #[test]
        fn rpk_server_with_another_key_is_refused() {
            let (ours, theirs, impostor) = (key(), key(), key());
            let mut client = DtlsClient::new(&config(&ours, &theirs))
                .unwrap()
                .connect(Instant::now())
                .unwrap();
            let (mut server, _) = server(&impostor, &ours, RPK_CIPHERS);
            let (_, r) = pump(&mut client, &mut server, &mut |_| false, &mut 0);
            match r {
                Err(DtlsError::Handshake(reason)) => {
                    assert!(reason.contains("certificate verify failed"), "{reason}")
                }
                other => panic!("{other:?}"),
            }
            assert!(!client.is_established());
        }

        #[test]
        fn rpk_client_key_unknown_to_the_server_is_refused() {
            let (ours, theirs) = (key(), key());
            let mut client = DtlsClient::new(&config(&ours, &theirs))
                .unwrap()
                .connect(Instant::now())
                .unwrap();
            let (mut server, seen) = server(&theirs, &key(), RPK_CIPHERS);
            let (_, r) = pump(&mut client, &mut server, &mut |_| false, &mut 0);
            assert!(matches!(r, Err(DtlsError::Handshake(_))), "{r:?}");
            assert_eq!(seen.lock().unwrap().len(), 1);
        }
    }

    mod certificates {
        use super::*;
        use openssl::asn1::Asn1Time;
        use openssl::bn::BigNum;
        use openssl::ec::{EcGroup, EcKey};
        use openssl::hash::MessageDigest;
        use openssl::nid::Nid;
        use openssl::pkey::Private;
        use openssl::x509::extension::{BasicConstraints, SubjectAlternativeName};
        use openssl::x509::X509NameBuilder;

        struct Issued {
            cert: X509,
            key: PKey<Private>,
        }

        fn key() -> PKey<Private> {
            let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap();
            PKey::from_ec_key(EcKey::generate(&group).unwrap()).unwrap()
        }

        /// A certificate for `cn` (also its DNS name), signed by `issuer` or by itself.
        fn issue(cn: &str, ca: bool, issuer: Option<&Issued>, serial: u32) -> Issued {
            let key = key();
            let mut name = X509NameBuilder::new().unwrap();
            name.append_entry_by_text("CN", cn).unwrap();
            let name = name.build();
            let mut b = X509::builder().unwrap();
            b.set_version(2).unwrap();
            b.set_serial_number(&BigNum::from_u32(serial).unwrap().to_asn1_integer().unwrap())
                .unwrap();
            b.set_subject_name(&name).unwrap();
            b.set_issuer_name(issuer.map_or(&name, |i| i.cert.subject_name()))
                .unwrap();
            b.set_pubkey(&key).unwrap();
            b.set_not_before(&Asn1Time::days_from_now(0).unwrap())
                .unwrap();
            b.set_not_after(&Asn1Time::days_from_now(30).unwrap())
                .unwrap();
            if ca {
                b.append_extension(BasicConstraints::new().critical().ca().build().unwrap())
                    .unwrap();
            } else {
                let san = SubjectAlternativeName::new()
                    .dns(cn)
                    .build(&b.x509v3_context(issuer.map(|i| i.cert.as_ref()), None))
                    .unwrap();
                b.append_extension(san).unwrap();
            }
            b.sign(issuer.map_or(&key, |i| &i.key), MessageDigest::sha256())
                .unwrap();
            Issued {
                cert: b.build(),
                key,
            }
        }

        struct Pki {
            ca: Issued,
            server: Issued,
            client: Issued,
            other_ca: Issued,
            dir: std::path::PathBuf,
        }

        fn pki(tag: &str) -> Pki {
            let ca = issue("lwm2md test CA", true, None, 1);
            let server = issue("lwm2m.test", false, Some(&ca), 2);
            let client = issue("gateway-1", false, Some(&ca), 3);
            let other_ca = issue("another CA", true, None, 4);
            let dir =
                std::env::temp_dir().join(format!("lwm2md-dtls-{tag}-{}", std::process::id()));
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join("ca.pem"), ca.cert.to_pem().unwrap()).unwrap();
            Pki {
                ca,
                server,
                client,
                other_ca,
                dir,
            }
        }

        /// A server presenting its certificate (and the CA's) and requiring ours.
        fn server(pki: &Pki) -> Server {
            let mut ctx = SslContext::builder(SslMethod::dtls_server()).unwrap();
            ctx.set_options(SslOptions::NO_QUERY_MTU);
            ctx.set_cipher_list(CERT_CIPHERS).unwrap();
            ctx.set_certificate(&pki.server.cert).unwrap();
            ctx.set_private_key(&pki.server.key).unwrap();
            let mut store = X509StoreBuilder::new().unwrap();
            store.add_cert(pki.ca.cert.clone()).unwrap();
            ctx.set_verify_cert_store(store.build()).unwrap();
            ctx.set_verify(SslVerifyMode::PEER | SslVerifyMode::FAIL_IF_NO_PEER_CERT);
            Server::on(&ctx.build(), Default::default())
        }

        fn config(pki: &Pki, usage: CertificateUsage, pinned: &X509, sni: &str) -> DtlsConfig {
            DtlsConfig::certificate(Certificates {
                chain: vec![pki.client.cert.to_der().unwrap()],
                private_key: pki.client.key.private_key_to_der().unwrap(),
                server_certificate: Some(pinned.to_der().unwrap()),
                usage,
                trust_store: Some(pki.dir.join("ca.pem")),
                sni: Some(sni.to_string()),
            })
        }

        fn connect(pki: &Pki, config: &DtlsConfig) -> Result<DtlsSession, DtlsError> {
            let mut client = DtlsClient::new(config)?.connect(Instant::now())?;
            let mut server = server(pki);
            let (_, r) = pump(&mut client, &mut server, &mut |_| false, &mut 0);
            if let Err(DtlsError::Handshake(_)) = &r {
                // A refused server hears why (a fatal alert, record type 21) instead of
                // waiting for a flight that never comes.
                let alert = client.poll_transmit();
                assert_eq!(alert.as_deref().and_then(<[u8]>::first), Some(&21));
            }
            r.map(|()| client)
        }

        #[test]
        fn each_certificate_usage_accepts_the_right_server_and_refuses_others() {
            use CertificateUsage::*;
            let pki = pki("usages");
            let cases = [
                (
                    DomainIssuedCertificate,
                    &pki.server.cert,
                    "lwm2m.test",
                    true,
                ),
                (
                    DomainIssuedCertificate,
                    &pki.client.cert,
                    "lwm2m.test",
                    false,
                ),
                // Pinning needs no name or chain check.
                (
                    DomainIssuedCertificate,
                    &pki.server.cert,
                    "elsewhere.test",
                    true,
                ),
                (TrustAnchorAssertion, &pki.ca.cert, "lwm2m.test", true),
                (
                    TrustAnchorAssertion,
                    &pki.other_ca.cert,
                    "lwm2m.test",
                    false,
                ),
                (TrustAnchorAssertion, &pki.ca.cert, "elsewhere.test", false),
                (
                    ServiceCertificateConstraint,
                    &pki.server.cert,
                    "lwm2m.test",
                    true,
                ),
                (
                    ServiceCertificateConstraint,
                    &pki.client.cert,
                    "lwm2m.test",
                    false,
                ),
                (CaConstraint, &pki.ca.cert, "lwm2m.test", true),
                (CaConstraint, &pki.other_ca.cert, "lwm2m.test", false),
            ];
            for (usage, pinned, sni, ok) in cases {
                let r = connect(&pki, &config(&pki, usage, pinned, sni));
                match (ok, r) {
                    (true, Ok(session)) => {
                        assert!(session.cipher().unwrap().starts_with("ECDHE-ECDSA"))
                    }
                    (false, Err(DtlsError::Handshake(reason))) => {
                        assert!(reason.contains("certificate verify failed"), "{reason}")
                    }
                    (_, r) => panic!("{usage:?} {sni}: expected ok={ok}, got {r:?}"),
                }
            }
            std::fs::remove_dir_all(&pki.dir).unwrap();
        }

        #[test]
        fn an_expired_server_certificate_is_named_as_the_cause() {
            let pki = pki("expired");
            let mut expired = X509::builder().unwrap();
            let template = &pki.server.cert;
            expired.set_version(2).unwrap();
            expired
                .set_serial_number(&BigNum::from_u32(9).unwrap().to_asn1_integer().unwrap())
                .unwrap();
            expired.set_subject_name(template.subject_name()).unwrap();
            expired.set_issuer_name(pki.ca.cert.subject_name()).unwrap();
            expired.set_pubkey(&pki.server.key).unwrap();
            expired
                .set_not_before(&Asn1Time::from_unix(1_600_000_000).unwrap())
                .unwrap();
            expired
                .set_not_after(&Asn1Time::from_unix(1_600_086_400).unwrap())
                .unwrap();
            expired.sign(&pki.ca.key, MessageDigest::sha256()).unwrap();
            let expired = Issued {
                cert: expired.build(),
                key: pki.server.key.clone(),
            };
            let pki = Pki {
                server: expired,
                ..pki
            };
            let r = connect(
                &pki,
                &config(
                    &pki,
                    CertificateUsage::TrustAnchorAssertion,
                    &pki.ca.cert,
                    "lwm2m.test",
                ),
            );
            match r {
                Err(DtlsError::Handshake(why)) => assert!(why.contains("expired"), "{why}"),
                other => panic!("{other:?}"),
            }
            std::fs::remove_dir_all(&pki.dir).unwrap();
        }

        #[test]
        fn a_key_that_does_not_match_the_certificate_is_a_setup_error() {
            let pki = pki("mismatch");
            let mut c = config(
                &pki,
                CertificateUsage::DomainIssuedCertificate,
                &pki.server.cert,
                "x",
            );
            if let Credentials::Certificate(certs) = &mut c.credentials {
                certs.private_key = key().private_key_to_der().unwrap();
            }
            match DtlsClient::new(&c) {
                Err(DtlsError::Setup(reason)) => {
                    assert!(reason.contains("does not match"), "{reason}")
                }
                other => panic!("{other:?}"),
            }
            std::fs::remove_dir_all(&pki.dir).unwrap();
        }
    }
}
