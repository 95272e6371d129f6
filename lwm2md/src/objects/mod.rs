//! The objects lwm2md implements, one module each.

pub mod access_control;
pub mod apn;
pub mod cellular;
pub mod connectivity;
pub mod custom;
pub mod device;
pub mod firmware;
pub mod ipso;
pub mod location;
pub mod reported;
pub mod security;
pub mod server;
pub mod statistics;
pub mod store;
