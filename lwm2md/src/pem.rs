//! Certificate and key files as operators have them (PEM, or DER), read into the DER
//! that the Security object holds (/0/x/3, /0/x/4, /0/x/5).

use std::path::Path;

use openssl::pkey::PKey;
use openssl::x509::X509;

/// The certificates of a file, the first one first (PEM may hold a chain; DER holds one).
/// Errors start with the file name.
pub fn certificates(file: &Path) -> Result<Vec<Vec<u8>>, String> {
    let name = file.display();
    let data = std::fs::read(file).map_err(|e| format!("{name}: {e}"))?;
    let certs = if is_pem(&data) {
        X509::stack_from_pem(&data).map_err(|e| format!("{name}: not a PEM certificate: {e}"))?
    } else {
        vec![X509::from_der(&data).map_err(|e| format!("{name}: not a DER certificate: {e}"))?]
    };
    if certs.is_empty() {
        return Err(format!("{name}: no certificate in the file"));
    }
    certs
        .iter()
        .map(|c| c.to_der().map_err(|e| format!("{name}: {e}")))
        .collect()
}

/// A private key as PKCS#8 DER.
pub fn private_key(file: &Path) -> Result<Vec<u8>, String> {
    let name = file.display();
    let data = std::fs::read(file).map_err(|e| format!("{name}: {e}"))?;
    let key = if is_pem(&data) {
        PKey::private_key_from_pem(&data)
            .map_err(|e| format!("{name}: not a PEM private key (or it is encrypted): {e}"))?
    } else {
        PKey::private_key_from_der(&data)
            .map_err(|e| format!("{name}: not a DER private key: {e}"))?
    };
    key.private_key_to_pkcs8()
        .map_err(|e| format!("{name}: {e}"))
}

/// A public key (SubjectPublicKeyInfo, PEM `PUBLIC KEY` or DER) as DER, the form the
/// Security object's Server Public Key (/0/x/4) holds in raw public key mode.
pub fn public_key(file: &Path) -> Result<Vec<u8>, String> {
    let name = file.display();
    let data = std::fs::read(file).map_err(|e| format!("{name}: {e}"))?;
    let key = if is_pem(&data) {
        PKey::public_key_from_pem(&data)
            .map_err(|e| format!("{name}: not a PEM public key (BEGIN PUBLIC KEY): {e}"))?
    } else {
        PKey::public_key_from_der(&data)
            .map_err(|e| format!("{name}: not a DER public key (SubjectPublicKeyInfo): {e}"))?
    };
    key.public_key_to_der().map_err(|e| format!("{name}: {e}"))
}

fn is_pem(data: &[u8]) -> bool {
    data.windows(11).any(|w| w == b"-----BEGIN ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use openssl::ec::{EcGroup, EcKey};
    use openssl::nid::Nid;

    #[test]
    fn pem_and_der_read_the_same_and_garbage_is_refused() {
        let dir = std::env::temp_dir().join(format!("lwm2md-pem-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap();
        let key = PKey::from_ec_key(EcKey::generate(&group).unwrap()).unwrap();
        std::fs::write(dir.join("k.pem"), key.private_key_to_pem_pkcs8().unwrap()).unwrap();
        std::fs::write(dir.join("k.der"), key.private_key_to_der().unwrap()).unwrap();
        let a = private_key(&dir.join("k.pem")).unwrap();
        let b = private_key(&dir.join("k.der")).unwrap();
        assert_eq!(a, b);
        std::fs::write(dir.join("bad"), b"-----BEGIN nonsense").unwrap();
        let e = certificates(&dir.join("bad")).unwrap_err();
        assert!(e.contains("bad: no certificate"), "{e}");
        let e = private_key(&dir.join("missing")).unwrap_err();
        assert!(e.contains("missing"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
