//! ferroswitch: a SIP softswitch (registrar + back-to-back user agent).
//!
//! Layers, arrows pointing down: `transport` → `sip` → `transaction` → dialog → b2bua.
//! The protocol layers are sans-IO; only `transport` and the driver touch sockets and clocks.

pub mod app;
pub mod auth;
pub mod b2bua;
pub mod cdr;
pub mod clock;
pub mod config;
pub mod dialog;
pub mod engine;
pub mod net;
pub mod registrar;
pub mod security;
pub mod sip;
pub mod transaction;
pub mod transport;
