//! Cellular modems. [`at`]: a modem driven directly over its AT command port.

pub mod at;
