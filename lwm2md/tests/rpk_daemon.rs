//! The daemon registers over DTLS with raw public keys (RFC 7250) with an OpenSSL server
//! on a real UDP socket, and refuses a server that holds another key. Only in builds
//! against OpenSSL 3.2 or newer (`--features vendored`).
#![cfg(ossl_rpk)]

use std::ffi::{c_int, c_uchar};
use std::io::{self, Read, Write};
use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use coap_lite::{CoapOption, MessageClass, MessageType, Packet, RequestType, ResponseType};
use foreign_types::ForeignTypeRef;
use openssl::ec::{EcGroup, EcKey};
use openssl::nid::Nid;
use openssl::pkey::{PKey, PKeyRef, Private, Public};
use openssl::ssl::{Ssl, SslContext, SslMethod, SslOptions, SslStream, SslVerifyMode};

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

/// tls1.h TLSEXT_cert_type_rpk.
const RPK: [c_uchar; 1] = [2];
const TIMEOUT: Duration = Duration::from_secs(90);

fn key() -> PKey<Private> {
    let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap();
    PKey::from_ec_key(EcKey::generate(&group).unwrap()).unwrap()
}

/// One datagram per read and write, to the first peer heard from.
#[derive(Debug)]
struct Udp(UdpSocket);

impl Read for Udp {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.recv(buf)
    }
}

impl Write for Udp {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.send(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Kills the daemon when the test ends, however it ends.
struct Daemon {
    child: Child,
    log: PathBuf,
}

impl Daemon {
    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn wait_for_log(&self, text: &str) -> String {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            let log = self.log();
            if log.contains(text) {
                return log;
            }
            assert!(Instant::now() < deadline, "no {text:?} in:\n{log}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(dir: &Path, port: u16, client: &PKey<Private>, server: &PKeyRef<Public>) -> Daemon {
    use std::os::unix::fs::PermissionsExt;
    let key_file = dir.join("client.key");
    std::fs::write(&key_file, client.private_key_to_pem_pkcs8().unwrap()).unwrap();
    std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let server_file = dir.join("server.pub");
    std::fs::write(&server_file, server.public_key_to_pem().unwrap()).unwrap();
    let config = dir.join("lwm2md.toml");
    std::fs::write(
        &config,
        format!(
            "endpoint = \"rpk-gw\"\nstate_dir = {:?}\nlog_level = \"debug\"\n\
             [device]\nreboot = \"none\"\n\
             [[server]]\nuri = \"coaps://127.0.0.1:{port}\"\nshort_server_id = 1\n\
             lifetime = 300\nsecurity = \"rpk\"\nprivate_key_file = {key_file:?}\n\
             server_public_key_file = {server_file:?}\n",
            dir.join("state"),
        ),
    )
    .unwrap();
    let log = dir.join("daemon.log");
    let child = Command::new(env!("CARGO_BIN_EXE_lwm2md"))
        .arg("--config")
        .arg(&config)
        .env_remove("NOTIFY_SOCKET")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    Daemon { child, log }
}

/// A DTLS server with its own key pair that accepts only `client`'s public key.
fn server_context(own: &PKey<Private>, client: &PKeyRef<Public>) -> SslContext {
    let mut ctx = SslContext::builder(SslMethod::dtls_server()).unwrap();
    ctx.set_options(SslOptions::NO_QUERY_MTU);
    // SAFETY: a valid context; OpenSSL copies the lists.
    unsafe {
        assert_eq!(
            SSL_CTX_set1_client_cert_type(ctx.as_ptr(), RPK.as_ptr(), RPK.len()),
            1
        );
        assert_eq!(
            SSL_CTX_set1_server_cert_type(ctx.as_ptr(), RPK.as_ptr(), RPK.len()),
            1
        );
    }
    ctx.set_cipher_list("ECDHE-ECDSA-AES128-CCM8:ECDHE-ECDSA-AES128-GCM-SHA256:@SECLEVEL=0")
        .unwrap();
    ctx.set_private_key(own).unwrap();
    let expected = PKey::public_key_from_der(&client.public_key_to_der().unwrap()).unwrap();
    ctx.set_verify_callback(
        SslVerifyMode::PEER | SslVerifyMode::FAIL_IF_NO_PEER_CERT,
        move |_, store| {
            // SAFETY: a live store context; get0 lends the key it owns.
            let peer = unsafe { X509_STORE_CTX_get0_rpk(store.as_ptr()) };
            // SAFETY: non-null, and only used within the callback.
            !peer.is_null() && unsafe { PKeyRef::<Public>::from_ptr(peer) }.public_eq(&expected)
        },
    );
    ctx.build()
}

/// Waits for the daemon's first datagram and runs the handshake with it.
fn accept(socket: UdpSocket, ctx: &SslContext) -> Result<SslStream<Udp>, String> {
    socket.set_read_timeout(Some(TIMEOUT)).unwrap();
    let mut first = [0u8; 1];
    let (_, peer) = socket.peek_from(&mut first).unwrap();
    socket.connect(peer).unwrap();
    let mut ssl = Ssl::new(ctx).unwrap();
    ssl.set_mtu(1232).unwrap();
    ssl.accept(Udp(socket)).map_err(|e| e.to_string())
}

fn tempdir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("lwm2md-rpk-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn rpk_daemon_registers_over_a_raw_public_key_session() {
    let dir = tempdir("register");
    let (client, server) = (key(), key());
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = socket.local_addr().unwrap().port();
    let server_public = PKey::public_key_from_der(&server.public_key_to_der().unwrap()).unwrap();
    let daemon = start(&dir, port, &client, &server_public);
    let client_public = PKey::public_key_from_der(&client.public_key_to_der().unwrap()).unwrap();
    let mut session = accept(socket, &server_context(&server, &client_public))
        .unwrap_or_else(|e| panic!("{e}\n{}", daemon.log()));

    let mut buf = vec![0u8; 2048];
    let register = loop {
        let n = session.ssl_read(&mut buf).unwrap();
        let packet = Packet::from_bytes(&buf[..n]).unwrap();
        if packet.header.code == MessageClass::Request(RequestType::Post) {
            break packet;
        }
    };
    let path: Vec<String> = register
        .get_option(CoapOption::UriPath)
        .into_iter()
        .flatten()
        .map(|p| String::from_utf8_lossy(p).into_owned())
        .collect();
    assert_eq!(path, ["rd"]);
    let query: Vec<String> = register
        .get_option(CoapOption::UriQuery)
        .into_iter()
        .flatten()
        .map(|q| String::from_utf8_lossy(q).into_owned())
        .collect();
    assert!(query.iter().any(|q| q == "ep=rpk-gw"), "{query:?}");

    let mut created = Packet::new();
    created.header.set_type(MessageType::Acknowledgement);
    created.header.message_id = register.header.message_id;
    created.header.code = MessageClass::Response(ResponseType::Created);
    created.set_token(register.get_token().to_vec());
    created.add_option(CoapOption::LocationPath, b"rd".to_vec());
    created.add_option(CoapOption::LocationPath, b"5a3f".to_vec());
    session.ssl_write(&created.to_bytes().unwrap()).unwrap();
    daemon.wait_for_log("location=rd/5a3f");
    drop(daemon);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn rpk_daemon_refuses_a_server_with_another_key() {
    let dir = tempdir("impostor");
    let (client, server, impostor) = (key(), key(), key());
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = socket.local_addr().unwrap().port();
    let server_public = PKey::public_key_from_der(&server.public_key_to_der().unwrap()).unwrap();
    let daemon = start(&dir, port, &client, &server_public);
    let client_public = PKey::public_key_from_der(&client.public_key_to_der().unwrap()).unwrap();
    let ctx = server_context(&impostor, &client_public);
    // The impostor's side waits for a flight that never comes: the daemon refuses the key
    // and drops the session. It ends with the test process.
    std::thread::spawn(move || accept(socket, &ctx).map(|_| ()));
    let log = daemon.wait_for_log("DTLS handshake failed: certificate verify failed");
    assert!(log.contains("Raw public key untrusted"), "{log}");
    assert!(!log.contains("INFO registered"), "{log}");
    drop(daemon);
    let _ = std::fs::remove_dir_all(&dir);
}
