//! lwm2md: an OMA LwM2M client engine (sans-IO) and the daemon around it.

pub mod binding;
pub mod check;
pub mod cli;
pub mod coap;
pub mod codec;
pub mod config;
pub mod connectivity;
pub mod daemon;
pub mod dbus_api;
pub mod dtls;
pub mod engine;
pub mod feed;
pub mod logging;
pub mod model;
pub mod modem;
pub mod objects;
pub mod path;
pub mod pem;
pub mod provisioning;
pub mod sensors;
pub mod state;
pub mod status;
pub mod tasks;
pub mod value;
