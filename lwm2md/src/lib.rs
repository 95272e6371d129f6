//! lwm2md: an OMA LwM2M client engine (sans-IO) and the daemon around it.

pub mod coap;
pub mod codec;
pub mod model;
pub mod path;
pub mod value;
pub mod config;
pub mod objects;
pub mod engine;
pub mod daemon;
pub mod logging;
