//! Names of the machine, used to derive a default endpoint name.

use std::path::Path;

use super::under;

/// The systemd machine ID (`/etc/machine-id`, else D-Bus' older
/// `/var/lib/dbus/machine-id`): 32 lowercase hex digits.
///
/// A file that holds anything else (empty on a first boot, "uninitialized" in an image)
/// gives `None`.
pub fn machine_id(root: &Path) -> Option<String> {
    ["/etc/machine-id", "/var/lib/dbus/machine-id"]
        .iter()
        .filter_map(|path| std::fs::read_to_string(under(root, path)).ok())
        .map(|text| text.trim().to_owned())
        .find(|id| is_machine_id(id))
}

fn is_machine_id(id: &str) -> bool {
    id.len() == 32 && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// The kernel's host name (`gethostname(2)`), `None` when unset.
pub fn hostname() -> Option<String> {
    // HOST_NAME_MAX is 64 on Linux; the extra room keeps the terminating NUL.
    let mut buf = [0u8; 256];
    // SAFETY: the pointer and length describe `buf`, which outlives the call.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return None;
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    let name = String::from_utf8_lossy(buf.get(..end)?).trim().to_owned();
    (!name.is_empty() && name != "(none)").then_some(name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    #[test]
    fn machine_id_from_etc_then_dbus() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        assert_eq!(machine_id(root), None);

        fs::create_dir_all(root.join("var/lib/dbus")).unwrap();
        fs::write(
            root.join("var/lib/dbus/machine-id"),
            "00112233445566778899aabbccddeeff\n",
        )
        .unwrap();
        assert_eq!(
            machine_id(root).as_deref(),
            Some("00112233445566778899aabbccddeeff")
        );

        fs::create_dir_all(root.join("etc")).unwrap();
        fs::write(
            root.join("etc/machine-id"),
            "ffeeddccbbaa99887766554433221100\n",
        )
        .unwrap();
        assert_eq!(
            machine_id(root).as_deref(),
            Some("ffeeddccbbaa99887766554433221100")
        );
    }

    #[test]
    fn uninitialized_machine_id_is_none() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir_all(dir.path().join("etc")).unwrap();
        for content in [
            "",
            "uninitialized\n",
            "00112233445566778899AABBCCDDEEFF",
            "0011",
        ] {
            fs::write(dir.path().join("etc/machine-id"), content).unwrap();
            assert_eq!(machine_id(dir.path()), None, "{content:?}");
        }
    }

    #[test]
    fn this_machine_has_a_hostname() {
        let name = hostname().unwrap();
        assert!(!name.contains('\0'));
    }
}
