//! The integrator's own commands. Each is an argv (no shell) run with a timeout:
//!
//! - `check IMAGE` (optional): exits 0 when the package may be installed, printing
//!   `name=...` and `version=...` lines if it knows them;
//! - `install IMAGE`: writes the package so that the next boot runs it;
//! - `commit` (optional): after the reboot, marks the new system good;
//! - `rollback` (optional): marks the new system bad so the next boot runs the old one;
//! - `version` (optional): prints the running system's version on its first line.
//!
//! A failing `check` or `install` may say why with its exit status, using the Update
//! Result codes of LwM2M: 2 no space, 5 integrity check failure, 6 unsupported package,
//! 11 deferred; any other non-zero status, a death by signal or a timeout is a failed
//! update.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::process::Command;

use super::{FirmwareError, PackageInfo};

/// Most of a command's stdout that is kept (version lines, check output).
const MAX_OUTPUT: usize = 4096;

pub struct Script {
    pub check: Option<Vec<String>>,
    pub install: Vec<String>,
    pub commit: Option<Vec<String>>,
    pub rollback: Option<Vec<String>>,
    pub version: Option<Vec<String>>,
    /// Longest any one command may run.
    pub timeout: Duration,
}

/// How a command ended.
struct Outcome {
    code: Option<i32>,
    stdout: String,
}

impl Script {
    pub async fn check(&self, image: &Path) -> Result<PackageInfo, FirmwareError> {
        let Some(argv) = &self.check else {
            return Ok(PackageInfo::default());
        };
        let out = self.run(argv, Some(image)).await?;
        failure(argv, &out)?;
        let mut info = PackageInfo::default();
        for line in out.stdout.lines() {
            match line.split_once('=') {
                Some(("name", v)) => info.name = Some(v.trim().to_string()),
                Some(("version", v)) => info.version = Some(v.trim().to_string()),
                _ => {}
            }
        }
        Ok(info)
    }

    pub async fn install(&self, image: &Path) -> Result<(), FirmwareError> {
        let out = self.run(&self.install, Some(image)).await?;
        failure(&self.install, &out)
    }

    pub async fn commit(&self) -> Result<(), FirmwareError> {
        self.optional(self.commit.as_ref()).await
    }

    pub async fn rollback(&self) -> Result<(), FirmwareError> {
        self.optional(self.rollback.as_ref()).await
    }

    pub async fn version(&self) -> Option<String> {
        let argv = self.version.as_ref()?;
        match self.run(argv, None).await {
            Ok(out) if out.code == Some(0) => out
                .stdout
                .lines()
                .next()
                .map(|l| l.trim().to_string())
                .filter(|l| !l.is_empty()),
            Ok(out) => {
                tracing::warn!("{} exited with {:?}", argv.join(" "), out.code);
                None
            }
            Err(e) => {
                tracing::warn!("version command: {e}");
                None
            }
        }
    }

    async fn optional(&self, argv: Option<&Vec<String>>) -> Result<(), FirmwareError> {
        let Some(argv) = argv else {
            return Ok(());
        };
        let out = self.run(argv, None).await?;
        failure(argv, &out)
    }

    async fn run(&self, argv: &[String], image: Option<&Path>) -> Result<Outcome, FirmwareError> {
        let (program, args) = argv
            .split_first()
            .ok_or_else(|| FirmwareError::Failed("empty command".into()))?;
        let mut cmd = Command::new(program);
        cmd.args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .kill_on_drop(true);
        if let Some(image) = image {
            cmd.arg(image);
        }
        let mut child = cmd
            .spawn()
            .map_err(|e| FirmwareError::Failed(format!("cannot start {program}: {e}")))?;
        let mut stdout = child.stdout.take();
        let run = async {
            let mut kept = Vec::new();
            if let Some(pipe) = stdout.as_mut() {
                let mut buf = [0u8; 1024];
                while let Ok(n) = pipe.read(&mut buf).await {
                    if n == 0 {
                        break;
                    }
                    let room = MAX_OUTPUT.saturating_sub(kept.len());
                    kept.extend_from_slice(buf.get(..n.min(room)).unwrap_or_default());
                }
            }
            let status = child.wait().await;
            (status, kept)
        };
        match tokio::time::timeout(self.timeout, run).await {
            Ok((Ok(status), kept)) => Ok(Outcome {
                code: status.code(),
                stdout: String::from_utf8_lossy(&kept).into_owned(),
            }),
            Ok((Err(e), _)) => Err(FirmwareError::Failed(format!(
                "cannot wait for {program}: {e}"
            ))),
            // The child is killed when dropped with the future.
            Err(_) => Err(FirmwareError::Failed(format!(
                "{program} did not finish within {} s",
                self.timeout.as_secs()
            ))),
        }
    }
}

/// The error a command's exit status stands for.
fn failure(argv: &[String], out: &Outcome) -> Result<(), FirmwareError> {
    let what = || {
        format!(
            "{} exited with {}",
            argv.first().map_or("", String::as_str),
            out.code.map_or("a signal".to_string(), |c| c.to_string())
        )
    };
    match out.code {
        Some(0) => Ok(()),
        Some(2) => Err(FirmwareError::NoSpace(what())),
        Some(5) => Err(FirmwareError::Integrity(what())),
        Some(6) => Err(FirmwareError::Unsupported(what())),
        Some(11) => Err(FirmwareError::Deferred),
        _ => Err(FirmwareError::Failed(what())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(script: &str) -> Vec<String> {
        vec!["sh".into(), "-c".into(), script.into(), "sh".into()]
    }

    fn script() -> Script {
        Script {
            check: Some(sh("test -s \"$1\" || exit 5; echo name=rootfs; echo version=2.1")),
            install: sh("case $(cat \"$1\") in full) exit 2;; defer) exit 11;; bad) exit 6;; slow) sleep 30;; esac"),
            commit: Some(sh("true")),
            rollback: None,
            version: Some(sh("echo 1.0; echo ignored")),
            timeout: Duration::from_secs(2),
        }
    }

    fn image(dir: &tempfile::TempDir, content: &str) -> std::path::PathBuf {
        let p = dir.path().join("image");
        std::fs::write(&p, content).unwrap();
        p
    }

    #[tokio::test]
    async fn check_reads_name_and_version_and_codes_map_to_results() {
        let dir = tempfile::tempdir().unwrap();
        let s = script();
        let info = s.check(&image(&dir, "ok")).await.unwrap();
        assert_eq!(info.name.as_deref(), Some("rootfs"));
        assert_eq!(info.version.as_deref(), Some("2.1"));
        assert!(matches!(
            s.check(&image(&dir, "")).await,
            Err(FirmwareError::Integrity(_))
        ));
        s.install(&image(&dir, "ok")).await.unwrap();
        assert!(matches!(
            s.install(&image(&dir, "full")).await,
            Err(FirmwareError::NoSpace(_))
        ));
        assert!(matches!(
            s.install(&image(&dir, "defer")).await,
            Err(FirmwareError::Deferred)
        ));
        assert!(matches!(
            s.install(&image(&dir, "bad")).await,
            Err(FirmwareError::Unsupported(_))
        ));
        assert!(matches!(
            s.install(&image(&dir, "slow")).await,
            Err(FirmwareError::Failed(m)) if m.contains("did not finish")
        ));
        s.commit().await.unwrap();
        s.rollback().await.unwrap();
        assert_eq!(s.version().await.as_deref(), Some("1.0"));
    }
}
