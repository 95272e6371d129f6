//! Hardware and OS backends. They speak their own domain and know nothing of LwM2M.
//!
//! - [`host`]: facts read from the machine (identity, memory, time zone). Every reader
//!   takes the filesystem root so that tests can point it at a fixture tree.
//! - [`location`]: position fixes from gpsd.
//! - [`modem`]: the data connection (bearer, radio, addresses, counters) as every
//!   connectivity backend reports it; the ModemManager and AT command backends.
//! - [`system`]: actions on the operating system (reboot, clock, time zone, commands),
//!   through systemd's D-Bus services on the system bus.
//! - [`sensor`]: I2C sensors sampled by one thread per bus.

pub mod firmware;
pub mod host;
pub mod location;
pub mod modem;
pub mod sensor;
pub mod system;
