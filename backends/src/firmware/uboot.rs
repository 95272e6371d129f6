//! U-Boot A/B: the raw image is written to the slot that is not running, read back and
//! compared, and only then are the boot variables switched with libubootenv's
//! `fw_setenv`, in the layout RAUC's U-Boot integration uses: `BOOT_ORDER` lists the
//! slots to try in order, `BOOT_<slot>_LEFT` counts the attempts a slot has left; the
//! boot script decrements it and skips slots at 0.
//!
//! The running slot is read from the kernel command line (`rauc.slot=A`).

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::Stdio;

use tokio::process::Command;

use super::{FirmwareError, PackageInfo};

/// Copy and compare in pieces of this size: memory stays flat whatever the image size.
const CHUNK: usize = 64 * 1024;

pub struct Uboot {
    /// `(slot name, device or file)`, e.g. `("A", "/dev/mmcblk0p2")`.
    pub slots: Vec<(String, PathBuf)>,
    /// `fw_env.config` passed to the tools with `-c`, or their default when `None`.
    pub env_config: Option<PathBuf>,
    pub fw_setenv: String,
    pub fw_printenv: String,
    /// Where the kernel command line is read (`/proc/cmdline`).
    pub cmdline: PathBuf,
    /// Its parameter naming the running slot.
    pub slot_param: String,
    pub boot_order_var: String,
    /// `BOOT_{slot}_LEFT`: `{slot}` is replaced by the slot name.
    pub attempts_var: String,
    /// Attempts a newly installed or committed slot gets.
    pub attempts: u32,
}

impl Uboot {
    pub async fn check(&self, image: &Path) -> Result<PackageInfo, FirmwareError> {
        let target = self.inactive().await?;
        let len = std::fs::metadata(image)
            .map_err(|e| FirmwareError::Failed(format!("{}: {e}", image.display())))?
            .len();
        if let Some(capacity) = self.capacity(&target)? {
            if len > capacity {
                return Err(FirmwareError::NoSpace(format!(
                    "image of {len} bytes, slot {target} holds {capacity}"
                )));
            }
        }
        Ok(PackageInfo::default())
    }

    pub async fn install(&self, image: &Path) -> Result<(), FirmwareError> {
        self.check(image).await?;
        let target = self.inactive().await?;
        let booted = self.booted()?;
        let device = self.slot_path(&target)?.to_path_buf();
        let image = image.to_path_buf();
        tokio::task::spawn_blocking(move || write_and_verify(&image, &device))
            .await
            .map_err(|e| FirmwareError::Failed(format!("copy task: {e}")))??;
        self.set_env(&[
            (self.attempts_name(&target), self.attempts.to_string()),
            (self.boot_order_var.clone(), format!("{target} {booted}")),
        ])
        .await
    }

    pub async fn booted_new(&self, target: Option<&str>) -> Result<bool, FirmwareError> {
        let booted = self.booted()?;
        Ok(target.is_none_or(|t| t == booted))
    }

    pub async fn commit(&self) -> Result<(), FirmwareError> {
        let booted = self.booted()?;
        let other = self.other(&booted)?;
        self.set_env(&[
            (self.attempts_name(&booted), self.attempts.to_string()),
            (self.boot_order_var.clone(), format!("{booted} {other}")),
        ])
        .await
    }

    pub async fn rollback(&self) -> Result<(), FirmwareError> {
        let booted = self.booted()?;
        let other = self.other(&booted)?;
        // The old slot first, the new one out of attempts: the boot script skips it even
        // if the old slot fails once.
        self.set_env(&[
            (self.attempts_name(&booted), "0".to_string()),
            (self.attempts_name(&other), self.attempts.to_string()),
            (self.boot_order_var.clone(), format!("{other} {booted}")),
        ])
        .await
    }

    /// The slot that is not running.
    pub async fn inactive(&self) -> Result<String, FirmwareError> {
        let booted = self.booted()?;
        self.other(&booted)
    }

    /// A variable's value, `None` when unset.
    pub async fn get_env(&self, name: &str) -> Result<Option<String>, FirmwareError> {
        let mut cmd = Command::new(&self.fw_printenv);
        if let Some(c) = &self.env_config {
            cmd.arg("-c").arg(c);
        }
        let out = cmd
            .arg("-n")
            .arg(name)
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .output()
            .await
            .map_err(|e| FirmwareError::Failed(format!("cannot run {}: {e}", self.fw_printenv)))?;
        if !out.status.success() {
            return Ok(None);
        }
        let value = String::from_utf8_lossy(&out.stdout).trim_end().to_string();
        // libubootenv prints `NAME=` for a missing variable even with -n.
        Ok(Some(value).filter(|v| !v.is_empty() && *v != format!("{name}=")))
    }

    async fn set_env(&self, vars: &[(String, String)]) -> Result<(), FirmwareError> {
        // All variables in one script: the environment is rewritten once (atomically
        // with a redundant environment). libubootenv reads `name=value` lines from a
        // file; it takes no script on stdin.
        let script: String = vars.iter().map(|(k, v)| format!("{k}={v}\n")).collect();
        let file = ScriptFile::new(&script)
            .map_err(|e| FirmwareError::Failed(format!("fw_setenv script: {e}")))?;
        let mut cmd = Command::new(&self.fw_setenv);
        if let Some(c) = &self.env_config {
            cmd.arg("-c").arg(c);
        }
        let out = cmd
            .arg("-s")
            .arg(&file.0)
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .output()
            .await
            .map_err(|e| FirmwareError::Failed(format!("cannot run {}: {e}", self.fw_setenv)))?;
        if !out.status.success() {
            return Err(FirmwareError::Failed(format!(
                "{} failed ({}): {}",
                self.fw_setenv,
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        // fw_setenv ignores lines it cannot parse: check that the values are there.
        for (k, v) in vars {
            let got = self.get_env(k).await?;
            if got.as_deref() != Some(v.as_str()) {
                return Err(FirmwareError::Failed(format!(
                    "{k} reads {got:?} after fw_setenv set it to {v:?}"
                )));
            }
        }
        Ok(())
    }

    fn attempts_name(&self, slot: &str) -> String {
        self.attempts_var.replace("{slot}", slot)
    }

    /// The running slot, from the kernel command line.
    pub fn booted(&self) -> Result<String, FirmwareError> {
        let cmdline = std::fs::read_to_string(&self.cmdline)
            .map_err(|e| FirmwareError::Failed(format!("{}: {e}", self.cmdline.display())))?;
        let prefix = format!("{}=", self.slot_param);
        let slot = cmdline
            .split_whitespace()
            .find_map(|w| w.strip_prefix(prefix.as_str()))
            .ok_or_else(|| {
                FirmwareError::Failed(format!(
                    "no {} on the kernel command line: the running slot is unknown",
                    self.slot_param
                ))
            })?;
        if !self.slots.iter().any(|(n, _)| n == slot) {
            return Err(FirmwareError::Failed(format!(
                "running slot {slot:?} is not configured"
            )));
        }
        Ok(slot.to_string())
    }

    fn other(&self, booted: &str) -> Result<String, FirmwareError> {
        self.slots
            .iter()
            .map(|(n, _)| n)
            .find(|n| *n != booted)
            .cloned()
            .ok_or_else(|| FirmwareError::Failed("no second slot configured".into()))
    }

    fn slot_path(&self, slot: &str) -> Result<&Path, FirmwareError> {
        self.slots
            .iter()
            .find(|(n, _)| n == slot)
            .map(|(_, p)| p.as_path())
            .ok_or_else(|| FirmwareError::Failed(format!("slot {slot} is not configured")))
    }

    /// What a slot can hold: a block device's size, or a preallocated file's length.
    fn capacity(&self, slot: &str) -> Result<Option<u64>, FirmwareError> {
        let path = self.slot_path(slot)?;
        let mut f = File::open(path)
            .map_err(|e| FirmwareError::Failed(format!("{}: {e}", path.display())))?;
        let end = f
            .seek(SeekFrom::End(0))
            .map_err(|e| FirmwareError::Failed(format!("{}: {e}", path.display())))?;
        Ok(Some(end).filter(|&n| n > 0))
    }
}

/// Copies the image over the slot's beginning, syncs, and compares what reads back.
fn write_and_verify(image: &Path, device: &Path) -> Result<(), FirmwareError> {
    let io_err = |what: &Path, e: io::Error| {
        if e.kind() == io::ErrorKind::StorageFull {
            FirmwareError::NoSpace(format!("{}: {e}", what.display()))
        } else {
            FirmwareError::Failed(format!("{}: {e}", what.display()))
        }
    };
    let mut src = File::open(image).map_err(|e| io_err(image, e))?;
    let mut dst = OpenOptions::new()
        .write(true)
        .read(true)
        .open(device)
        .map_err(|e| io_err(device, e))?;
    let mut buf = vec![0u8; CHUNK];
    let mut total: u64 = 0;
    loop {
        let n = src.read(&mut buf).map_err(|e| io_err(image, e))?;
        if n == 0 {
            break;
        }
        dst.write_all(buf.get(..n).unwrap_or_default())
            .map_err(|e| io_err(device, e))?;
        total = total.saturating_add(n as u64);
    }
    dst.sync_all().map_err(|e| io_err(device, e))?;
    src.seek(SeekFrom::Start(0)).map_err(|e| io_err(image, e))?;
    dst.seek(SeekFrom::Start(0))
        .map_err(|e| io_err(device, e))?;
    let mut back = vec![0u8; CHUNK];
    let mut left = total;
    while left > 0 {
        let want = usize::try_from(left).unwrap_or(CHUNK).min(CHUNK);
        let (a, b) = (
            buf.get_mut(..want).unwrap_or_default(),
            back.get_mut(..want).unwrap_or_default(),
        );
        src.read_exact(a).map_err(|e| io_err(image, e))?;
        dst.read_exact(b).map_err(|e| io_err(device, e))?;
        if a != b {
            return Err(FirmwareError::Integrity(format!(
                "{} does not read back what was written",
                device.display()
            )));
        }
        left -= want as u64;
    }
    Ok(())
}

/// A private temporary file removed when dropped.
struct ScriptFile(PathBuf);

impl ScriptFile {
    fn new(content: &str) -> io::Result<ScriptFile> {
        use std::os::unix::fs::OpenOptionsExt;
        static COUNTER: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let path =
            std::env::temp_dir().join(format!("lwm2md-fw_setenv-{}-{n}", std::process::id()));
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)?;
        f.write_all(content.as_bytes())?;
        Ok(ScriptFile(path))
    }
}

impl Drop for ScriptFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}
