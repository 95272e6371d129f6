//! Signed firmware images for the backends that take raw images (U-Boot A/B, script):
//! the package is the image followed by a trailer holding a detached signature of the
//! image's SHA-256 digest, made with the integrator's private key:
//!
//! ```text
//! image | signature | signature length (u32, big-endian) | "LWSG"
//! ```
//!
//! e.g. `openssl dgst -sha256 -sign key.pem -out sig image`, then the image, `sig`,
//! the length in 4 bytes and the magic concatenated. The signature is checked with the
//! configured public key (RSA, ECDSA or Ed25519 through OpenSSL) reading the file in
//! pieces, and the trailer is cut off before the image is installed.

use std::fs::OpenOptions;
use std::io::{self, Read};
use std::os::unix::fs::FileExt;
use std::path::Path;

use openssl::hash::MessageDigest;
use openssl::pkey::{PKey, Public};
use openssl::sign::Verifier;

pub const MAGIC: &[u8; 4] = b"LWSG";
/// Longest signature accepted (RSA 8192 is 1024 bytes).
const MAX_SIGNATURE: u64 = 4096;
const CHUNK: usize = 64 * 1024;

#[derive(Debug)]
pub enum SignatureError {
    /// The package has no signature trailer.
    Unsigned,
    /// The trailer's length does not fit the package.
    Malformed,
    /// The signature does not match the image and key.
    Mismatch,
    Io(io::Error),
    OpenSsl(openssl::error::ErrorStack),
}

impl std::fmt::Display for SignatureError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Unsigned => f.write_str("the package is not signed"),
            Self::Malformed => f.write_str("the package's signature trailer is malformed"),
            Self::Mismatch => f.write_str("the package's signature does not verify"),
            Self::Io(e) => write!(f, "reading the package: {e}"),
            Self::OpenSsl(e) => write!(f, "OpenSSL: {e}"),
        }
    }
}

impl std::error::Error for SignatureError {}

/// Reads a PEM public key.
pub fn load_key(path: &Path) -> Result<PKey<Public>, String> {
    let pem = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    PKey::public_key_from_pem(&pem)
        .map_err(|e| format!("{}: not a PEM public key: {e}", path.display()))
}

/// Checks the package at `path` and cuts its trailer off. Returns the image's length.
pub fn verify_and_strip(path: &Path, key: &PKey<Public>) -> Result<u64, SignatureError> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .map_err(SignatureError::Io)?;
    let len = file.metadata().map_err(SignatureError::Io)?.len();
    if len < 8 {
        return Err(SignatureError::Unsigned);
    }
    let mut tail = [0u8; 8];
    file.read_exact_at(&mut tail, len - 8)
        .map_err(SignatureError::Io)?;
    let (sig_len, magic) = tail.split_at(4);
    if magic != MAGIC {
        return Err(SignatureError::Unsigned);
    }
    let sig_len = u64::from(u32::from_be_bytes(
        sig_len.try_into().map_err(|_| SignatureError::Malformed)?,
    ));
    if sig_len == 0 || sig_len > MAX_SIGNATURE || sig_len > len - 8 {
        return Err(SignatureError::Malformed);
    }
    let image_len = len - 8 - sig_len;
    let mut signature = vec![0u8; usize::try_from(sig_len).map_err(|_| SignatureError::Malformed)?];
    file.read_exact_at(&mut signature, image_len)
        .map_err(SignatureError::Io)?;
    let mut verifier =
        Verifier::new(MessageDigest::sha256(), key).map_err(SignatureError::OpenSsl)?;
    let mut reader = (&file).take(image_len);
    let mut buf = vec![0u8; CHUNK];
    loop {
        let n = reader.read(&mut buf).map_err(SignatureError::Io)?;
        if n == 0 {
            break;
        }
        verifier
            .update(buf.get(..n).unwrap_or_default())
            .map_err(SignatureError::OpenSsl)?;
    }
    // An error here is a signature OpenSSL could not even parse: a mismatch too.
    if !verifier.verify(&signature).unwrap_or(false) {
        return Err(SignatureError::Mismatch);
    }
    file.set_len(image_len).map_err(SignatureError::Io)?;
    file.sync_all().map_err(SignatureError::Io)?;
    Ok(image_len)
}

/// Appends a signature trailer (for tests and tools).
pub fn sign(
    image: &[u8],
    key: &PKey<openssl::pkey::Private>,
) -> Result<Vec<u8>, openssl::error::ErrorStack> {
    let mut signer = openssl::sign::Signer::new(MessageDigest::sha256(), key)?;
    signer.update(image)?;
    let sig = signer.sign_to_vec()?;
    let mut out = image.to_vec();
    out.extend_from_slice(&sig);
    out.extend_from_slice(&u32::try_from(sig.len()).unwrap_or(0).to_be_bytes());
    out.extend_from_slice(MAGIC);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use openssl::ec::{EcGroup, EcKey};
    use openssl::nid::Nid;

    fn keys() -> (PKey<openssl::pkey::Private>, PKey<Public>) {
        let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap();
        let ec = EcKey::generate(&group).unwrap();
        let private = PKey::from_ec_key(ec.clone()).unwrap();
        let public = PKey::public_key_from_pem(&private.public_key_to_pem().unwrap()).unwrap();
        (private, public)
    }

    fn staged(name: &str, data: &[u8]) -> std::path::PathBuf {
        let p = std::env::temp_dir().join(format!("lwm2md-sig-{name}-{}", std::process::id()));
        std::fs::write(&p, data).unwrap();
        p
    }

    #[test]
    fn signed_image_verifies_and_loses_its_trailer() {
        let (private, public) = keys();
        let image: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        let p = staged("ok", &sign(&image, &private).unwrap());
        assert_eq!(verify_and_strip(&p, &public).unwrap(), image.len() as u64);
        assert_eq!(std::fs::read(&p).unwrap(), image);
        // Stripped: it is unsigned now.
        assert!(matches!(
            verify_and_strip(&p, &public),
            Err(SignatureError::Unsigned)
        ));
        std::fs::remove_file(p).unwrap();
    }

    #[test]
    fn tampered_unsigned_malformed_and_foreign_key_fail() {
        let (private, public) = keys();
        let image = vec![7u8; 5000];
        let mut signed = sign(&image, &private).unwrap();
        let cases: Vec<(&str, Vec<u8>)> = vec![
            ("unsigned", image.clone()),
            ("short", b"LWSG".to_vec()),
            ("tampered", {
                signed[10] ^= 1;
                signed.clone()
            }),
            ("huge-length", {
                let mut d = image.clone();
                d.extend_from_slice(&u32::MAX.to_be_bytes());
                d.extend_from_slice(MAGIC);
                d
            }),
        ];
        for (name, data) in cases {
            let p = staged(name, &data);
            let r = verify_and_strip(&p, &public);
            assert!(r.is_err(), "{name}");
            // Nothing is cut off a package that fails.
            assert_eq!(std::fs::read(&p).unwrap(), data, "{name}");
            std::fs::remove_file(p).unwrap();
        }
        let (other, _) = keys();
        let p = staged("foreign", &sign(&image, &other).unwrap());
        assert!(matches!(
            verify_and_strip(&p, &public),
            Err(SignatureError::Mismatch)
        ));
        std::fs::remove_file(p).unwrap();
    }
}
