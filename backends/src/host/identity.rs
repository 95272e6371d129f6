//! Who the machine is: manufacturer, model, serial number, software and hardware versions.
//!
//! Boards booted with a device tree (Raspberry Pi and most arm SBCs) describe themselves
//! there; PCs and ACPI servers do it in the DMI (SMBIOS) tables. Each fact is taken from
//! the device tree first, then from DMI.

use std::path::Path;

use super::os_release::OsRelease;
use super::{machine_id, under};

/// The value of a fact the machine does not tell.
pub const UNKNOWN: &str = "unknown";

/// What this host says about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostInfo {
    pub manufacturer: String,
    pub model: String,
    pub serial: String,
    /// The operating system release, e.g. "Debian GNU/Linux 12 (bookworm)".
    pub firmware_version: String,
    pub hardware_version: String,
    pub device_type: String,
}

/// Device tree locations, the procfs alias first (it is what userspace usually reads).
const DEVICE_TREES: [&str; 2] = ["/proc/device-tree", "/sys/firmware/devicetree/base"];
const DMI: &str = "/sys/class/dmi/id";

/// Reads the host's identity under `root`. Never fails: a missing fact is [`UNKNOWN`].
pub fn host_info(root: &Path) -> HostInfo {
    let dt_model = device_tree_string(root, "model");
    let manufacturer = device_tree_vendor(root)
        .or_else(|| dmi(root, "sys_vendor"))
        .or_else(|| dmi(root, "board_vendor"));
    let hardware_version = dt_model
        .as_deref()
        .and_then(revision_suffix)
        .or_else(|| dmi(root, "product_version"))
        .or_else(|| dmi(root, "board_version"));
    let model = dt_model
        .or_else(|| dmi(root, "product_name"))
        .or_else(|| dmi(root, "board_name"));
    let serial = device_tree_string(root, "serial-number").or_else(|| machine_id(root));
    let firmware_version = OsRelease::read(root).ok().and_then(|os| os.display_name());

    let known = |fact: Option<String>| fact.unwrap_or_else(|| UNKNOWN.to_owned());
    HostInfo {
        manufacturer: known(manufacturer),
        model: known(model),
        serial: known(serial),
        firmware_version: known(firmware_version),
        hardware_version: known(hardware_version),
        device_type: "Linux gateway".to_owned(),
    }
}

/// Raw bytes of a device tree property from the first device tree that has it.
fn device_tree_property(root: &Path, name: &str) -> Option<Vec<u8>> {
    DEVICE_TREES
        .iter()
        .find_map(|dir| std::fs::read(under(root, dir).join(name)).ok())
}

/// A string property: device tree strings end in NUL.
fn device_tree_string(root: &Path, name: &str) -> Option<String> {
    let raw = device_tree_property(root, name)?;
    let first = raw.split(|&b| b == 0).next().unwrap_or_default();
    non_empty(String::from_utf8_lossy(first).trim())
}

/// The vendor prefix of the board's most specific `compatible` entry
/// ("raspberrypi,4-model-b" -> "raspberrypi").
fn device_tree_vendor(root: &Path) -> Option<String> {
    let raw = device_tree_property(root, "compatible")?;
    let first = raw.split(|&b| b == 0).find(|entry| !entry.is_empty())?;
    let first = String::from_utf8_lossy(first);
    let (vendor, _) = first.split_once(',')?;
    non_empty(vendor.trim())
}

/// The revision Raspberry Pi firmware appends to the model
/// ("Raspberry Pi 4 Model B Rev 1.4" -> "1.4").
fn revision_suffix(model: &str) -> Option<String> {
    let (_, revision) = model.rsplit_once(" Rev ")?;
    non_empty(revision.trim())
}

fn dmi(root: &Path, field: &str) -> Option<String> {
    let text = std::fs::read_to_string(under(root, DMI).join(field)).ok()?;
    let value = text.trim();
    if is_dmi_placeholder(value) {
        return None;
    }
    non_empty(value)
}

/// Firmware vendors leave these in fields they did not fill; reporting them as the
/// manufacturer or model would be worse than "unknown".
fn is_dmi_placeholder(value: &str) -> bool {
    const PLACEHOLDERS: [&str; 14] = [
        "to be filled by o.e.m.",
        "default string",
        "system manufacturer",
        "system product name",
        "system version",
        "not specified",
        "not applicable",
        "none",
        "o.e.m.",
        "oem",
        "undefined",
        "unknown",
        "type1productconfigid",
        "0123456789",
    ];
    let lower = value.to_ascii_lowercase();
    PLACEHOLDERS.contains(&lower.as_str())
}

fn non_empty(s: &str) -> Option<String> {
    (!s.is_empty()).then(|| s.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn write(root: &Path, path: &str, content: &[u8]) {
        let path = under(root, path);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, content).unwrap();
    }

    const DEBIAN: &[u8] =
        b"PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nNAME=\"Debian GNU/Linux\"\n";

    #[test]
    fn raspberry_pi_device_tree() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        write(
            root,
            "/proc/device-tree/model",
            b"Raspberry Pi 4 Model B Rev 1.4\0",
        );
        write(
            root,
            "/proc/device-tree/compatible",
            b"raspberrypi,4-model-b\0brcm,bcm2711\0",
        );
        write(
            root,
            "/proc/device-tree/serial-number",
            b"10000000a1b2c3d4\0",
        );
        write(root, "/etc/os-release", DEBIAN);
        write(
            root,
            "/etc/machine-id",
            b"0123456789abcdef0123456789abcdef\n",
        );

        assert_eq!(
            host_info(root),
            HostInfo {
                manufacturer: "raspberrypi".into(),
                model: "Raspberry Pi 4 Model B Rev 1.4".into(),
                serial: "10000000a1b2c3d4".into(),
                firmware_version: "Debian GNU/Linux 12 (bookworm)".into(),
                hardware_version: "1.4".into(),
                device_type: "Linux gateway".into(),
            }
        );
    }

    #[test]
    fn sysfs_device_tree_without_serial_uses_machine_id() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let base = "/sys/firmware/devicetree/base";
        write(root, &format!("{base}/model"), b"Seeed reTerminal\0");
        write(
            root,
            &format!("{base}/compatible"),
            b"seeed,reterminal\0raspberrypi,4-compute-module\0",
        );
        write(
            root,
            "/etc/machine-id",
            b"0123456789abcdef0123456789abcdef\n",
        );

        let info = host_info(root);
        assert_eq!(info.manufacturer, "seeed");
        assert_eq!(info.model, "Seeed reTerminal");
        assert_eq!(info.serial, "0123456789abcdef0123456789abcdef");
        assert_eq!(info.hardware_version, UNKNOWN);
        assert_eq!(info.firmware_version, UNKNOWN);
    }

    #[test]
    fn dmi_pc() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        write(root, "/sys/class/dmi/id/sys_vendor", b"Advantech\n");
        write(root, "/sys/class/dmi/id/product_name", b"UNO-2271G\n");
        write(root, "/sys/class/dmi/id/product_version", b"A1\n");
        write(root, "/sys/class/dmi/id/board_vendor", b"Board Co\n");
        write(
            root,
            "/usr/lib/os-release",
            b"NAME=Ubuntu\nVERSION_ID=\"24.04\"\n",
        );
        write(
            root,
            "/etc/machine-id",
            b"fedcba9876543210fedcba9876543210\n",
        );

        let info = host_info(root);
        assert_eq!(info.manufacturer, "Advantech");
        assert_eq!(info.model, "UNO-2271G");
        assert_eq!(info.hardware_version, "A1");
        assert_eq!(info.serial, "fedcba9876543210fedcba9876543210");
        assert_eq!(info.firmware_version, "Ubuntu 24.04");
    }

    #[test]
    fn dmi_placeholders_fall_through_to_the_board() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        write(
            root,
            "/sys/class/dmi/id/sys_vendor",
            b"To Be Filled By O.E.M.\n",
        );
        write(root, "/sys/class/dmi/id/product_name", b"Default string\n");
        write(root, "/sys/class/dmi/id/product_version", b"\n");
        write(root, "/sys/class/dmi/id/board_vendor", b"ASRock\n");
        write(root, "/sys/class/dmi/id/board_name", b"J4105-ITX\n");

        let info = host_info(root);
        assert_eq!(info.manufacturer, "ASRock");
        assert_eq!(info.model, "J4105-ITX");
        assert_eq!(info.hardware_version, UNKNOWN);
    }

    #[test]
    fn empty_root_gives_unknowns() {
        let dir = tempfile::tempdir().unwrap();
        let info = host_info(dir.path());
        assert_eq!(info.manufacturer, UNKNOWN);
        assert_eq!(info.model, UNKNOWN);
        assert_eq!(info.serial, UNKNOWN);
        assert_eq!(info.firmware_version, UNKNOWN);
        assert_eq!(info.hardware_version, UNKNOWN);
        assert_eq!(info.device_type, "Linux gateway");
    }

    #[test]
    fn malformed_device_tree_properties() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        write(root, "/proc/device-tree/model", b"\0\0");
        write(
            root,
            "/proc/device-tree/compatible",
            b"\0no-vendor-prefix\0",
        );
        write(root, "/proc/device-tree/serial-number", b"\xff\xfe\0");
        write(root, "/sys/class/dmi/id/product_name", b"Fallback\n");

        let info = host_info(root);
        assert_eq!(info.model, "Fallback");
        assert_eq!(info.manufacturer, UNKNOWN);
        assert_eq!(info.serial, "\u{fffd}\u{fffd}");
    }

    #[test]
    fn the_real_machine_does_not_panic() {
        let info = host_info(Path::new("/"));
        assert!(!info.model.is_empty());
    }
}
