//! Hardware and OS backends. They speak their own domain and know nothing of LwM2M.
//!
//! - [`host`]: facts read from the machine (identity, memory, time zone). Every reader
//!   takes the filesystem root so that tests can point it at a fixture tree.
//! - [`system`]: actions on the operating system (reboot, clock, time zone, commands),
//!   through systemd's D-Bus services on the system bus.

pub mod firmware;
pub mod host;
pub mod system;
