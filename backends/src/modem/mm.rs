//! ModemManager over the system bus.
