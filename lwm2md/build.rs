//! Raw public keys (RFC 7250) exist in OpenSSL from 3.2 on: the `ossl_rpk` cfg says
//! whether the OpenSSL this build links (openssl-sys reports its version) has them.

use std::env;

/// OpenSSL 3.2.0 in OPENSSL_VERSION_NUMBER form.
const OPENSSL_3_2: u64 = 0x3020_0000;

fn main() {
    println!("cargo::rustc-check-cfg=cfg(ossl_rpk)");
    println!("cargo::rerun-if-env-changed=DEP_OPENSSL_VERSION_NUMBER");
    println!("cargo::rerun-if-env-changed=DEP_OPENSSL_LIBRESSL_VERSION_NUMBER");
    // LibreSSL reports a version number too, but has no raw public keys.
    if env::var_os("DEP_OPENSSL_LIBRESSL_VERSION_NUMBER").is_some() {
        return;
    }
    let version = env::var("DEP_OPENSSL_VERSION_NUMBER")
        .ok()
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok());
    if version.is_some_and(|v| v >= OPENSSL_3_2) {
        println!("cargo::rustc-cfg=ossl_rpk");
    }
}
