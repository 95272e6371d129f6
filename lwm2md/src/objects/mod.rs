//! The objects lwm2md implements, one module each.

pub mod device;
pub mod firmware;
pub mod security;
pub mod server;
pub mod store;
