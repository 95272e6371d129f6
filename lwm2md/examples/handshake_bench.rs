//! DTLS handshake figures of the client (`lwm2md::dtls`) against an OpenSSL server in
//! the same process: bytes and datagrams each way and round trips of a full handshake
//! and of a resumed one (session ID), with a pre-shared key and with ECDSA P-256
//! certificates, and the time both ends take for one handshake. Run by `scripts/bench`.

use std::time::Instant;

use lwm2md::dtls::{
    CertificateUsage, Certificates, Channel as Datagrams, DtlsClient, DtlsConfig, DtlsSession,
    DEFAULT_MTU,
};
use openssl::asn1::Asn1Time;
use openssl::bn::BigNum;
use openssl::ec::{EcGroup, EcKey};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::ssl::{ErrorCode, ShutdownState, Ssl, SslContext, SslMethod, SslOptions, SslStream};
use openssl::x509::{X509NameBuilder, X509};

const IDENTITY: &[u8] = b"gateway-17";
const KEY: &[u8] = b"0123456789abcdef";
const TIMED: u32 = 200;

#[derive(Default, Clone, Copy)]
struct Wire {
    client_bytes: usize,
    client_datagrams: usize,
    server_bytes: usize,
    server_datagrams: usize,
    /// Client flights that the server answered (round trips).
    round_trips: usize,
}

/// Runs one handshake to completion (the client's last flight delivered); the server
/// keeps its SSL object alive so the session stays in its cache.
fn handshake(
    client: &DtlsClient,
    server_ctx: &SslContext,
) -> (DtlsSession, SslStream<Datagrams>, Wire) {
    let mut session = client.connect(Instant::now()).expect("client");
    let mut ssl = Ssl::new(server_ctx).expect("ssl");
    ssl.set_mtu(DEFAULT_MTU).expect("mtu");
    ssl.set_accept_state();
    let mut server = SslStream::new(ssl, Datagrams::default()).expect("stream");
    let mut wire = Wire::default();
    let mut buf = vec![0u8; 4096];
    loop {
        let mut sent = false;
        while let Some(d) = session.poll_transmit() {
            sent = true;
            wire.client_bytes += d.len();
            wire.client_datagrams += 1;
            server.get_mut().incoming.push_back(d);
        }
        match server.ssl_read(&mut buf) {
            Ok(_) => {}
            Err(e) if e.code() == ErrorCode::WANT_READ => {}
            Err(e) => panic!("server: {e}"),
        }
        let answers: Vec<Vec<u8>> = server.get_mut().outgoing.drain(..).collect();
        if sent && !answers.is_empty() {
            wire.round_trips += 1;
        }
        for d in &answers {
            wire.server_bytes += d.len();
            wire.server_datagrams += 1;
            session.handle_datagram(d).expect("client");
        }
        if !sent && answers.is_empty() {
            break;
        }
    }
    assert!(session.is_established(), "handshake did not complete");
    (session, server, wire)
}

/// Ends the server's side as after a close_notify: OpenSSL drops the session of a
/// connection freed without one from its cache.
fn close(mut server: SslStream<Datagrams>) {
    server.set_shutdown(ShutdownState::SENT | ShutdownState::RECEIVED);
}

fn psk_server() -> SslContext {
    let mut ctx = SslContext::builder(SslMethod::dtls_server()).expect("ctx");
    ctx.set_options(SslOptions::NO_QUERY_MTU);
    ctx.set_cipher_list("PSK-AES128-CCM8:@SECLEVEL=0")
        .expect("ciphers");
    ctx.set_session_id_context(b"bench").expect("sid");
    ctx.set_psk_server_callback(|_, identity, key| {
        if identity != Some(IDENTITY) {
            return Ok(0);
        }
        key[..KEY.len()].copy_from_slice(KEY);
        Ok(KEY.len())
    });
    ctx.build()
}

fn ec_key() -> PKey<Private> {
    let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).expect("group");
    PKey::from_ec_key(EcKey::generate(&group).expect("key")).expect("pkey")
}

fn self_signed(cn: &str, key: &PKey<Private>) -> X509 {
    let mut name = X509NameBuilder::new().expect("name");
    name.append_entry_by_text("CN", cn).expect("cn");
    let name = name.build();
    let mut b = X509::builder().expect("builder");
    b.set_version(2).expect("version");
    b.set_serial_number(
        &BigNum::from_u32(1)
            .expect("bn")
            .to_asn1_integer()
            .expect("serial"),
    )
    .expect("serial");
    b.set_subject_name(&name).expect("subject");
    b.set_issuer_name(&name).expect("issuer");
    b.set_pubkey(key).expect("pubkey");
    b.set_not_before(&Asn1Time::days_from_now(0).expect("t"))
        .expect("nb");
    b.set_not_after(&Asn1Time::days_from_now(30).expect("t"))
        .expect("na");
    b.sign(key, MessageDigest::sha256()).expect("sign");
    b.build()
}

fn cert_setup() -> (DtlsConfig, SslContext) {
    let (server_key, client_key) = (ec_key(), ec_key());
    let server_cert = self_signed("lwm2m.bench", &server_key);
    let client_cert = self_signed("gateway-17", &client_key);
    let mut ctx = SslContext::builder(SslMethod::dtls_server()).expect("ctx");
    ctx.set_options(SslOptions::NO_QUERY_MTU);
    ctx.set_cipher_list("ECDHE-ECDSA-AES128-CCM8")
        .expect("ciphers");
    ctx.set_session_id_context(b"bench").expect("sid");
    ctx.set_certificate(&server_cert).expect("cert");
    ctx.set_private_key(&server_key).expect("key");
    // Mutual authentication as LwM2M servers do; the client certificate is pinned.
    let pinned = client_cert.to_der().expect("der");
    ctx.set_verify_callback(
        openssl::ssl::SslVerifyMode::PEER | openssl::ssl::SslVerifyMode::FAIL_IF_NO_PEER_CERT,
        move |_, store| {
            store.error_depth() > 0
                || store
                    .current_cert()
                    .and_then(|c| c.to_der().ok())
                    .is_some_and(|d| d == pinned)
        },
    );
    let config = DtlsConfig::certificate(Certificates {
        chain: vec![client_cert.to_der().expect("der")],
        private_key: client_key.private_key_to_der().expect("der"),
        server_certificate: Some(server_cert.to_der().expect("der")),
        usage: CertificateUsage::DomainIssuedCertificate,
        trust_store: None,
        sni: Some("lwm2m.bench".into()),
    });
    (config, ctx.build())
}

fn row(name: &str, wire: Wire, micros: f64, cipher: &str) {
    println!(
        "{name:<30} {:>5} B in {:>2} / {:>5} B in {:>2}   {:>2}   {micros:>8.0} µs   {cipher}",
        wire.client_bytes,
        wire.client_datagrams,
        wire.server_bytes,
        wire.server_datagrams,
        wire.round_trips,
    );
}

fn measure(label: &str, config: &DtlsConfig, server_ctx: &SslContext) {
    let mut client = DtlsClient::new(config).expect("client");
    let (first, server, full) = handshake(&client, server_ctx);
    let cipher = first.cipher().unwrap_or("?").to_string();
    client.remember(&first);
    let t = Instant::now();
    for _ in 0..TIMED {
        let fresh = DtlsClient::new(config).expect("client");
        let (_, srv, _) = handshake(&fresh, server_ctx);
        close(srv);
    }
    let full_us = t.elapsed().as_secs_f64() * 1e6 / f64::from(TIMED);
    let (second, _server2, resumed) = handshake(&client, server_ctx);
    assert!(
        second.resumed(),
        "{label}: the server did not resume the session"
    );
    let t = Instant::now();
    for _ in 0..TIMED {
        let (s, srv, _) = handshake(&client, server_ctx);
        assert!(s.resumed());
        close(srv);
    }
    let resumed_us = t.elapsed().as_secs_f64() * 1e6 / f64::from(TIMED);
    close(server);
    row(&format!("{label}, full"), full, full_us, &cipher);
    row(&format!("{label}, resumed"), resumed, resumed_us, &cipher);
}

fn main() {
    println!(
        "{:<30} {:>16}   {:>16}   {:>2}   {:>11}   suite",
        "DTLS 1.2 handshake", "client -> server", "server -> client", "RT", "both ends"
    );
    measure(
        "PSK",
        &DtlsConfig::psk(IDENTITY.to_vec(), KEY.to_vec()),
        &psk_server(),
    );
    let (config, ctx) = cert_setup();
    measure("certificates (P-256)", &config, &ctx);
    println!("(bytes are DTLS records, without IP and UDP headers; RT: round trips)");
}
