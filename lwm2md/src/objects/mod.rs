//! The objects lwm2md implements, one module each.

pub mod access_control;
pub mod device;
pub mod security;
pub mod server;
pub mod store;
