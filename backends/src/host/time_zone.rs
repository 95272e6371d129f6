//! The local time zone: its IANA name and its current offset from UTC.

use std::io;
use std::path::Path;

use super::under;

/// The IANA name of the local time zone ("Europe/Paris").
///
/// `/etc/localtime` is what the C library uses, so its symlink target is the authority
/// (systemd's timedated writes that link). Debian's older `/etc/timezone` is consulted
/// only when `/etc/localtime` is a plain copy of a zone file. A missing `/etc/localtime`
/// means UTC to the C library, and so here. `None` when the name cannot be told.
pub fn timezone(root: &Path) -> Option<String> {
    match std::fs::read_link(under(root, "/etc/localtime")) {
        Ok(target) => return zone_from_link(&target.to_string_lossy()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Some("UTC".to_owned()),
        Err(_) => {}
    }
    let text = std::fs::read_to_string(under(root, "/etc/timezone")).ok()?;
    let name = text.lines().next()?.trim();
    is_zone_name(name).then(|| name.to_owned())
}

/// "../usr/share/zoneinfo/Europe/Paris" -> "Europe/Paris"; the `posix/` and `right/`
/// trees hold the same zones with other leap-second handling.
fn zone_from_link(target: &str) -> Option<String> {
    let (_, zone) = target.rsplit_once("zoneinfo/")?;
    let zone = zone
        .strip_prefix("posix/")
        .or_else(|| zone.strip_prefix("right/"))
        .unwrap_or(zone);
    is_zone_name(zone).then(|| zone.to_owned())
}

fn is_zone_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with('/')
        && name
            .split('/')
            .all(|part| !part.is_empty() && part != "." && part != "..")
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '/' | '_' | '-' | '+'))
}

unsafe extern "C" {
    /// POSIX; not bound by the `libc` crate on Unix.
    fn tzset();
}

/// The current offset of local time from UTC in ISO 8601 form ("+01:00", "-05:30",
/// "+00:00"), as the C library computes it from `TZ` or `/etc/localtime`.
///
/// Like every reader of `TZ`, it must not run while another thread changes the
/// environment.
pub fn utc_offset_now() -> String {
    let mut tm = std::mem::MaybeUninit::<libc::tm>::zeroed();
    // SAFETY: tzset has no arguments; localtime_r writes only into `tm`, which is
    // zero-initialised (a valid `libc::tm`) and outlives the call. tzset is called first
    // because glibc's localtime_r reads the zone only once per process otherwise, and the
    // zone may have been changed since (set_timezone).
    let gmtoff = unsafe {
        tzset();
        let now = libc::time(std::ptr::null_mut());
        if libc::localtime_r(&now, tm.as_mut_ptr()).is_null() {
            0
        } else {
            tm.assume_init().tm_gmtoff
        }
    };
    // c_long is 32 bits on 32-bit arm.
    #[allow(clippy::useless_conversion)]
    let gmtoff = i64::from(gmtoff);
    format_offset(gmtoff)
}

fn format_offset(seconds: i64) -> String {
    let sign = if seconds < 0 { '-' } else { '+' };
    // Historical offsets with seconds (e.g. Amsterdam's +00:19:32) are truncated to minutes.
    let minutes = seconds.unsigned_abs() / 60;
    format!("{sign}{:02}:{:02}", minutes / 60, minutes % 60)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::os::unix::fs::symlink;

    fn root_with_etc() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir(dir.path().join("etc")).unwrap();
        dir
    }

    #[test]
    fn localtime_symlinks() {
        let cases = [
            ("/usr/share/zoneinfo/Europe/Paris", Some("Europe/Paris")),
            (
                "../usr/share/zoneinfo/America/Argentina/Buenos_Aires",
                Some("America/Argentina/Buenos_Aires"),
            ),
            ("/usr/share/zoneinfo/Etc/GMT+5", Some("Etc/GMT+5")),
            (
                "/usr/share/zoneinfo/posix/Asia/Kolkata",
                Some("Asia/Kolkata"),
            ),
            ("/usr/share/zoneinfo/right/UTC", Some("UTC")),
            ("/usr/share/zoneinfo/", None),
            ("/usr/share/zoneinfo/../../../etc/shadow", None),
            ("/somewhere/else", None),
        ];
        for (target, expected) in cases {
            let dir = root_with_etc();
            symlink(target, dir.path().join("etc/localtime")).unwrap();
            assert_eq!(timezone(dir.path()).as_deref(), expected, "{target}");
        }
    }

    #[test]
    fn the_symlink_wins_over_etc_timezone() {
        let dir = root_with_etc();
        symlink(
            "/usr/share/zoneinfo/Europe/Berlin",
            dir.path().join("etc/localtime"),
        )
        .unwrap();
        fs::write(dir.path().join("etc/timezone"), "Europe/Paris\n").unwrap();
        assert_eq!(timezone(dir.path()).as_deref(), Some("Europe/Berlin"));
    }

    #[test]
    fn copied_zone_file_falls_back_to_etc_timezone() {
        let dir = root_with_etc();
        fs::write(dir.path().join("etc/localtime"), b"TZif2...").unwrap();
        assert_eq!(timezone(dir.path()), None);
        fs::write(dir.path().join("etc/timezone"), "Europe/Paris\n").unwrap();
        assert_eq!(timezone(dir.path()).as_deref(), Some("Europe/Paris"));
        fs::write(dir.path().join("etc/timezone"), "\n").unwrap();
        assert_eq!(timezone(dir.path()), None);
    }

    #[test]
    fn missing_localtime_is_utc() {
        let dir = root_with_etc();
        assert_eq!(timezone(dir.path()).as_deref(), Some("UTC"));
    }

    #[test]
    fn offsets() {
        assert_eq!(format_offset(0), "+00:00");
        assert_eq!(format_offset(3600), "+01:00");
        assert_eq!(format_offset(-5 * 3600), "-05:00");
        assert_eq!(format_offset(5 * 3600 + 45 * 60), "+05:45");
        assert_eq!(format_offset(-(9 * 3600 + 30 * 60)), "-09:30");
        assert_eq!(format_offset(14 * 3600), "+14:00");
        assert_eq!(format_offset(19 * 60 + 32), "+00:19");
    }

    #[test]
    fn offset_now_is_well_formed() {
        let offset = utc_offset_now();
        let bytes = offset.as_bytes();
        assert_eq!(bytes.len(), 6, "{offset}");
        assert!(matches!(bytes[0], b'+' | b'-'));
        assert_eq!(bytes[3], b':');
    }
}
