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

    /// Installs and returns the slot RAUC made primary.
    pub async fn install(&self, bundle: &Path) -> Result<Option<String>, FirmwareError> {
        let proxy = self.proxy().await?;
        let mut completed = proxy
            .receive_completed()
            .await
            .map_err(|e| bus_error("subscribing to Completed", e))?;
        proxy
            .install_bundle(&bundle.to_string_lossy(), HashMap::new())
            .await
            .map_err(call_error)?;
        let signal = tokio::time::timeout(self.timeout, completed.next())
            .await
            .map_err(|_| {
                FirmwareError::Failed(format!(
                    "RAUC did not complete within {} s",
                    self.timeout.as_secs()
                ))
            })?
            .ok_or_else(|| FirmwareError::Failed("RAUC left the bus".into()))?;
        let result = signal.args().map_err(|e| bus_error("Completed", e))?.result;
        if let Ok((percent, message, _)) = proxy.progress().await {
            tracing::info!("RAUC: {percent}% {message}");
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

fn text(status: &HashMap<String, OwnedValue>, key: &str) -> Option<String> {
    status
        .get(key)
        .and_then(|v| String::try_from(v.clone()).ok())
}
