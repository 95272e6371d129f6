//! The objects lwm2md implements, one module each.

pub mod custom;
pub mod device;
pub mod security;
pub mod server;
pub mod store;
