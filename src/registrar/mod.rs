//! The registrar (RFC 3261 §10): REGISTER handling over a location store, with NAT-aware
//! bindings. Sans-IO: the engine passes `now` and the packet's transport facts in, and gets a
//! response out. Authentication happens before this module is called.

pub mod nat;
pub mod register;
pub mod served;
pub mod store;

pub use register::{
    process, ContactSpec, Contacts, RegisterOutcome, RegisterRequest, RegistrarConfig,
};
pub use served::{canonical_host, interface_addrs, ServedHosts};
pub use store::{Binding, FlushFuture, LocationStore, MemoryStore, StoreError};
