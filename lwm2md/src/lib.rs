//! lwm2md: an OMA LwM2M client engine (sans-IO) and the daemon around it.

pub mod coap;
pub mod codec;
pub mod config;
pub mod daemon;
pub mod dtls;
pub mod engine;
pub mod feed;
pub mod fwpull;
pub mod fwsig;
pub mod fwupdate;
pub mod logging;
pub mod model;
pub mod objects;
pub mod path;
pub mod state;
pub mod value;
