//! Facts of the real machine.
//!
//! Readers take `root` (normally `/`) and never follow it outside: a test hands them a
//! temporary directory laid out like the machine it pretends to be. Missing or unreadable
//! files give fallbacks, never panics.

mod identity;
mod memory;
mod names;
mod network;
mod os_release;
mod time_zone;

pub use identity::{host_info, HostInfo, UNKNOWN};
pub use memory::{memory, Memory};
pub use names::{hostname, machine_id};
pub use network::{
    addresses, connectivity, default_interface, interface_facts, link_speed_mbps, NetworkError,
};
pub use os_release::OsRelease;
pub use time_zone::{timezone, utc_offset_now};

use std::path::{Path, PathBuf};

/// `root` joined with an absolute machine path such as `/etc/os-release`.
fn under(root: &Path, absolute: &str) -> PathBuf {
    root.join(absolute.trim_start_matches('/'))
}
