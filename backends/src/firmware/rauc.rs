//! RAUC over the system bus (de.pengutronix.rauc.Installer, RAUC 1.8 and later). RAUC
//! checks the bundle's signature and compatible, writes the other slot group and
//! switches the bootloader; this module asks it to and maps its answers.

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use futures_util::StreamExt;
use zbus::proxy::CacheProperties;
use zbus::zvariant::{OwnedValue, Value};
use zbus::Connection;

use super::{FirmwareError, PackageInfo};

#[zbus::proxy(
    interface = "de.pengutronix.rauc.Installer",
    default_service = "de.pengutronix.rauc",
    default_path = "/",
    gen_blocking = false
)]
trait Installer {
    fn install_bundle(&self, source: &str, args: HashMap<&str, Value<'_>>) -> zbus::Result<()>;

    /// `(compatible, version)` of a bundle, after checking its signature.
    fn info(&self, bundle: &str) -> zbus::Result<(String, String)>;

    /// `state` is good, bad or active; `slot` a slot name, `booted` or `other`.
    fn mark(&self, state: &str, slot: &str) -> zbus::Result<(String, String)>;

    fn get_slot_status(&self) -> zbus::Result<Vec<(String, HashMap<String, OwnedValue>)>>;

    fn get_primary(&self) -> zbus::Result<String>;

    /// An installation ended: 0 on success.
    #[zbus(signal)]
    fn completed(&self, result: i32) -> zbus::Result<()>;

    #[zbus(property)]
    fn operation(&self) -> zbus::Result<String>;

    #[zbus(property)]
    fn last_error(&self) -> zbus::Result<String>;

    /// `(percentage, message, nesting depth)`.
    #[zbus(property)]
    fn progress(&self) -> zbus::Result<(i32, String, i32)>;

    #[zbus(property)]
    fn compatible(&self) -> zbus::Result<String>;

    #[zbus(property)]
    fn boot_slot(&self) -> zbus::Result<String>;
}

pub struct Rauc {
    /// The system bus address.
    pub address: String,
    /// Longest an installation may take.
    pub timeout: Duration,
}

fn bus_error(what: &str, e: zbus::Error) -> FirmwareError {
    FirmwareError::Failed(format!("{what}: {e}"))
}

/// What RAUC's error text says went wrong.
fn classify(message: String) -> FirmwareError {
    let lower = message.to_ascii_lowercase();
    if lower.contains("compatible") {
        FirmwareError::Unsupported(message)
    } else if lower.contains("no space") {
        FirmwareError::NoSpace(message)
    } else if lower.contains("signature")
        || lower.contains("verif")
        || lower.contains("squashfs")
        || lower.contains("bundle")
        || lower.contains("manifest")
    {
        FirmwareError::Integrity(message)
    } else {
        FirmwareError::Failed(message)
    }
}

fn call_error(e: zbus::Error) -> FirmwareError {
    match e {
        zbus::Error::MethodError(_, Some(message), _) => classify(message),
        zbus::Error::FDO(fdo) => classify(fdo.to_string()),
        other => FirmwareError::Failed(other.to_string()),
    }
}

impl Rauc {
    async fn proxy(&self) -> Result<InstallerProxy<'static>, FirmwareError> {
        let connection: Connection = zbus::connection::Builder::address(self.address.as_str())
            .map_err(|e| bus_error("system bus address", e))?
            .build()
            .await
            .map_err(|e| bus_error(&format!("system bus at {}", self.address), e))?;
        InstallerProxy::builder(&connection)
            // LastError and Progress are read right after Completed: never from a cache
            // that PropertiesChanged may not have updated yet.
            .cache_properties(CacheProperties::No)
            .build()
            .await
            .map_err(|e| bus_error("RAUC proxy", e))
    }

    pub async fn check(&self, bundle: &Path) -> Result<PackageInfo, FirmwareError> {
        let proxy = self.proxy().await?;
        let path = bundle.to_string_lossy();
        let (compatible, version) = proxy.info(&path).await.map_err(|e| match call_error(e) {
            // Info fails only on the bundle itself: unreadable, unsigned, tampered with.
            FirmwareError::Failed(m) => FirmwareError::Integrity(m),
            other => other,
        })?;
        let ours = proxy
            .compatible()
            .await
            .map_err(|e| bus_error("RAUC Compatible", e))?;
        if compatible != ours {
            return Err(FirmwareError::Unsupported(format!(
                "bundle for {compatible:?}, this system is {ours:?}"
            )));
        }
        Ok(PackageInfo {
            name: Some(compatible),
            version: Some(version),
        })
    }

    /// Installs and returns the slot RAUC made primary; RAUC's Progress changes go to
    /// `progress` as they come.
    pub async fn install(
        &self,
        bundle: &Path,
        progress: &super::ProgressFn<'_>,
    ) -> Result<Option<String>, FirmwareError> {
        let proxy = self.proxy().await?;
        let watch = Watch::new(&proxy).await?;
        proxy
            .install_bundle(&bundle.to_string_lossy(), HashMap::new())
            .await
            .map_err(call_error)?;
        watch.until_completed(&proxy, self.timeout, progress).await
    }

    /// What became of an installation the daemon lost sight of: one still running is
    /// followed to its end, never started again.
    pub async fn interrupted(
        &self,
        progress: &super::ProgressFn<'_>,
    ) -> Result<super::Interrupted, FirmwareError> {
        let proxy = self.proxy().await?;
        // Subscribed before Operation is read: an end between the two is not missed.
        let watch = Watch::new(&proxy).await?;
        let operation = proxy
            .operation()
            .await
            .map_err(|e| bus_error("RAUC Operation", e))?;
        if operation == "installing" {
            tracing::info!("RAUC is still installing; following it");
            let target = watch
                .until_completed(&proxy, self.timeout, progress)
                .await?;
            return Ok(super::Interrupted::Completed(target));
        }
        // RAUC switches the primary slot only once an installation has succeeded.
        let primary = proxy
            .get_primary()
            .await
            .map_err(|e| bus_error("GetPrimary", e))?;
        let (booted, _) = self.booted().await?;
        Ok(if primary != booted {
            super::Interrupted::Completed(Some(primary))
        } else {
            super::Interrupted::Cut
        })
    }

    /// Makes the running system the one that boots next, and marks it good.
    pub async fn keep_booted(&self) -> Result<(), FirmwareError> {
        let proxy = self.proxy().await?;
        proxy.mark("active", "booted").await.map_err(call_error)?;
        proxy.mark("good", "booted").await.map_err(call_error)?;
        Ok(())
    }

    /// The booted slot's name and status entries.
    async fn booted(&self) -> Result<(String, HashMap<String, OwnedValue>), FirmwareError> {
        let proxy = self.proxy().await?;
        let slots = proxy
            .get_slot_status()
            .await
            .map_err(|e| bus_error("GetSlotStatus", e))?;
        slots
            .into_iter()
            .find(|(_, status)| text(status, "state").as_deref() == Some("booted"))
            .ok_or_else(|| FirmwareError::Failed("RAUC reports no booted slot".into()))
    }

    pub async fn booted_new(&self, target: Option<&str>) -> Result<bool, FirmwareError> {
        let (name, _) = self.booted().await?;
        Ok(target.is_none_or(|t| t == name))
    }

    pub async fn commit(&self) -> Result<(), FirmwareError> {
        let proxy = self.proxy().await?;
        proxy.mark("good", "booted").await.map_err(call_error)?;
        Ok(())
    }

    pub async fn rollback(&self) -> Result<(), FirmwareError> {
        let proxy = self.proxy().await?;
        // The old slot first, so that the booted one is marked bad only once another
        // will boot.
        proxy.mark("active", "other").await.map_err(call_error)?;
        proxy.mark("bad", "booted").await.map_err(call_error)?;
        Ok(())
    }

    /// The version of the bundle the booted slot was installed from.
    pub async fn version(&self) -> Option<String> {
        match self.booted().await {
            Ok((_, status)) => text(&status, "bundle.version"),
            Err(e) => {
                tracing::debug!("RAUC slot status: {e}");
                None
            }
        }
    }
}

/// The Completed signal and Progress changes of one installation, subscribed to before
/// it starts.
struct Watch {
    completed: CompletedStream,
    changes: zbus::fdo::PropertiesChangedStream,
}

impl Watch {
    async fn new(proxy: &InstallerProxy<'static>) -> Result<Watch, FirmwareError> {
        let completed = proxy
            .receive_completed()
            .await
            .map_err(|e| bus_error("subscribing to Completed", e))?;
        let properties = zbus::fdo::PropertiesProxy::builder(proxy.inner().connection())
            .destination(proxy.inner().destination().to_owned())
            .map_err(|e| bus_error("RAUC properties", e))?
            .path(proxy.inner().path().to_owned())
            .map_err(|e| bus_error("RAUC properties", e))?
            .cache_properties(CacheProperties::No)
            .build()
            .await
            .map_err(|e| bus_error("RAUC properties", e))?;
        let changes = properties
            .receive_properties_changed()
            .await
            .map_err(|e| bus_error("subscribing to PropertiesChanged", e))?;
        Ok(Watch { completed, changes })
    }

    /// Waits for Completed, passing Progress on; returns the slot RAUC made primary.
    async fn until_completed(
        mut self,
        proxy: &InstallerProxy<'static>,
        timeout: Duration,
        progress: &super::ProgressFn<'_>,
    ) -> Result<Option<String>, FirmwareError> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut last = None;
        let result = loop {
            tokio::select! {
                signal = self.completed.next() => {
                    let signal =
                        signal.ok_or_else(|| FirmwareError::Failed("RAUC left the bus".into()))?;
                    break signal.args().map_err(|e| bus_error("Completed", e))?.result;
                }
                Some(change) = self.changes.next() => {
                    if let Some((percent, message)) = progress_of(&change) {
                        progress(percent, &message);
                        last = Some((percent, message));
                    }
                }
                _ = tokio::time::sleep_until(deadline) => {
                    return Err(FirmwareError::Failed(format!(
                        "RAUC did not complete within {} s",
                        timeout.as_secs()
                    )));
                }
            }
        };
        // The last change may come after Completed.
        if let Ok((percent, message, _)) = proxy.progress().await {
            if last.as_ref() != Some(&(percent, message.clone())) {
                progress(percent, &message);
            }
        }
        if result != 0 {
            let error = proxy.last_error().await.unwrap_or_default();
            return Err(classify(format!(
                "RAUC installation failed ({result}): {error}"
            )));
        }
        let primary = proxy
            .get_primary()
            .await
            .map_err(|e| bus_error("GetPrimary", e))?;
        Ok(Some(primary))
    }
}

/// The Progress `(percentage, message, depth)` a PropertiesChanged signal carries.
fn progress_of(change: &zbus::fdo::PropertiesChanged) -> Option<(i32, String)> {
    let args = change.args().ok()?;
    if args.interface_name.as_str() != "de.pengutronix.rauc.Installer" {
        return None;
    }
    let value = args.changed_properties.get("Progress")?;
    let (percent, message, _depth) =
        <(i32, String, i32)>::try_from(value.try_clone().ok()?).ok()?;
    Some((percent, message))
}

fn text(status: &HashMap<String, OwnedValue>, key: &str) -> Option<String> {
    status
        .get(key)
        .and_then(|v| String::try_from(v.clone()).ok())
}
