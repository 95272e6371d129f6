//! Memory figures from `/proc/meminfo`.

use std::io;
use std::path::Path;

use super::under;

/// Memory in KiB (what `/proc/meminfo` calls "kB").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Memory {
    /// Memory available to new work without swapping: `MemAvailable`, or `MemFree` on
    /// kernels older than 3.14 that lack it.
    pub free_kib: u64,
    pub total_kib: u64,
}

/// Reads `/proc/meminfo` under `root`.
pub fn memory(root: &Path) -> io::Result<Memory> {
    let text = std::fs::read_to_string(under(root, "/proc/meminfo"))?;
    parse(&text)
}

fn parse(text: &str) -> io::Result<Memory> {
    let mut total = None;
    let mut available = None;
    let mut free = None;
    for line in text.lines() {
        let Some((key, rest)) = line.split_once(':') else {
            continue;
        };
        let slot = match key.trim() {
            "MemTotal" => &mut total,
            "MemAvailable" => &mut available,
            "MemFree" => &mut free,
            _ => continue,
        };
        *slot = rest
            .split_whitespace()
            .next()
            .and_then(|n| n.parse::<u64>().ok());
    }
    let missing = |what| io::Error::new(io::ErrorKind::InvalidData, format!("meminfo: no {what}"));
    Ok(Memory {
        total_kib: total.ok_or_else(|| missing("MemTotal"))?,
        free_kib: available
            .or(free)
            .ok_or_else(|| missing("MemAvailable or MemFree"))?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modern_kernel() {
        let text = "MemTotal:        3884332 kB\nMemFree:          191716 kB\n\
                    MemAvailable:    2771980 kB\nBuffers:          152460 kB\n";
        assert_eq!(
            parse(text).unwrap(),
            Memory {
                free_kib: 2771980,
                total_kib: 3884332
            }
        );
    }

    #[test]
    fn old_kernel_without_mem_available() {
        let text = "MemTotal:  255024 kB\nMemFree:  100000 kB\nCached:  2000 kB\n";
        assert_eq!(parse(text).unwrap().free_kib, 100000);
    }

    #[test]
    fn missing_or_garbled_total() {
        assert_eq!(
            parse("MemFree: 1 kB\n").unwrap_err().kind(),
            io::ErrorKind::InvalidData
        );
        assert!(parse("MemTotal: lots kB\nMemFree: 1 kB\n").is_err());
        assert!(parse("MemTotal: 99999999999999999999999 kB\nMemFree: 1 kB\n").is_err());
        assert!(parse("").is_err());
        assert!(parse("MemTotal: 10 kB\n").is_err());
    }

    #[test]
    fn reads_from_root() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("proc")).unwrap();
        std::fs::write(
            dir.path().join("proc/meminfo"),
            "MemTotal: 2048 kB\nMemAvailable: 1024 kB\n",
        )
        .unwrap();
        assert_eq!(
            memory(dir.path()).unwrap(),
            Memory {
                free_kib: 1024,
                total_kib: 2048
            }
        );
        assert!(memory(&dir.path().join("nowhere")).is_err());
    }

    #[test]
    fn this_machine() {
        let mem = memory(Path::new("/")).unwrap();
        assert!(mem.free_kib <= mem.total_kib);
    }
}
