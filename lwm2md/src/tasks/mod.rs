//! Backend tasks: each runs a backend on its own schedule and turns what it sees into
//! [`Feed`](crate::feed::Feed) reports for the daemon loop.

pub mod at_modem;
pub mod location;
