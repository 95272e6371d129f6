//! Firmware installation on an A/B (or integrator-defined) system: check a staged
//! package, install it, and after the reboot commit the new system or roll back.
//!
//! - [`script`]: the integrator's own commands.
//! - [`rauc`]: RAUC over the system bus.
//! - [`uboot`]: a raw image written to the inactive slot, U-Boot variables switched with
//!   libubootenv's `fw_setenv`.

pub mod rauc;
pub mod script;
pub mod uboot;

use std::fmt;
use std::path::Path;

/// What a package says about itself, when the backend can tell.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PackageInfo {
    pub name: Option<String>,
    pub version: Option<String>,
}

/// Why a firmware step failed. Each kind is a different Update Result for the server.
#[derive(Debug)]
pub enum FirmwareError {
    /// The package is damaged or its signature does not verify.
    Integrity(String),
    /// The package is of a kind, architecture or compatible this system does not take.
    Unsupported(String),
    /// No room for the package.
    NoSpace(String),
    /// The installation was postponed (by the integrator's policy).
    Deferred,
    /// Anything else: the step failed.
    Failed(String),
}

impl fmt::Display for FirmwareError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Integrity(why) => write!(f, "package integrity check failed: {why}"),
            Self::Unsupported(why) => write!(f, "package not supported: {why}"),
            Self::NoSpace(why) => write!(f, "not enough space: {why}"),
            Self::Deferred => f.write_str("installation deferred"),
            Self::Failed(why) => f.write_str(why),
        }
    }
}

impl std::error::Error for FirmwareError {}

/// Receives an installation's progress: percentage and what is being done.
pub type ProgressFn<'a> = dyn Fn(i32, &str) + Send + Sync + 'a;

/// What became of an installation the daemon was stopped in the middle of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Interrupted {
    /// It did not run to its end: the running system stays the one that boots.
    Cut,
    /// It ran to its end (into the slot named): the next boot starts the new system.
    Completed(Option<String>),
}

/// The configured firmware backend.
pub enum Backend {
    Script(script::Script),
    Uboot(uboot::Uboot),
    Rauc(rauc::Rauc),
}

impl Backend {
    /// Checks a staged package before it is reported Downloaded.
    pub async fn check(&self, image: &Path) -> Result<PackageInfo, FirmwareError> {
        match self {
            Self::Script(s) => s.check(image).await,
            Self::Uboot(u) => u.check(image).await,
            Self::Rauc(r) => r.check(image).await,
        }
    }

    /// Installs the package so that the next boot starts the new system; returns the
    /// slot it went to, when the backend has slots.
    pub async fn install(
        &self,
        image: &Path,
        progress: &ProgressFn<'_>,
    ) -> Result<Option<String>, FirmwareError> {
        match self {
            Self::Script(s) => s.install(image).await.map(|()| None),
            Self::Uboot(u) => {
                let target = u.inactive().await?;
                u.install(image).await?;
                Ok(Some(target))
            }
            Self::Rauc(r) => r.install(image, progress).await,
        }
    }

    /// Finds out what became of an installation the daemon was stopped in; one the
    /// installer still runs is followed to its end.
    pub async fn interrupted(
        &self,
        progress: &ProgressFn<'_>,
    ) -> Result<Interrupted, FirmwareError> {
        match self {
            // Their installation ran inside the daemon, and stopped with it.
            Self::Script(_) | Self::Uboot(_) => Ok(Interrupted::Cut),
            Self::Rauc(r) => r.interrupted(progress).await,
        }
    }

    /// After an installation that failed or was cut: the running system stays the one
    /// that boots next, marked good.
    pub async fn keep_booted(&self) -> Result<(), FirmwareError> {
        match self {
            // The integrator's install command switches the boot only when it succeeds;
            // its commit command is for the new system, not this one.
            Self::Script(_) => Ok(()),
            Self::Uboot(u) => u.commit().await,
            Self::Rauc(r) => r.keep_booted().await,
        }
    }

    /// Whether the system runs the installed package (false: the bootloader fell back).
    pub async fn booted_new(&self, target: Option<&str>) -> Result<bool, FirmwareError> {
        match self {
            Self::Script(_) => Ok(true),
            Self::Uboot(u) => u.booted_new(target).await,
            Self::Rauc(r) => r.booted_new(target).await,
        }
    }

    /// Marks the running, new system good.
    pub async fn commit(&self) -> Result<(), FirmwareError> {
        match self {
            Self::Script(s) => s.commit().await,
            Self::Uboot(u) => u.commit().await,
            Self::Rauc(r) => r.commit().await,
        }
    }

    /// Marks the new system bad so that the next boot starts the old one.
    pub async fn rollback(&self) -> Result<(), FirmwareError> {
        match self {
            Self::Script(s) => s.rollback().await,
            Self::Uboot(u) => u.rollback().await,
            Self::Rauc(r) => r.rollback().await,
        }
    }

    /// The running system's version, when the backend knows it.
    pub async fn version(&self) -> Option<String> {
        match self {
            Self::Script(s) => s.version().await,
            Self::Uboot(_) => None,
            Self::Rauc(r) => r.version().await,
        }
    }
}
