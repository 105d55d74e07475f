//! The SOAP wire formats of both WSUS protocols: bytes in, typed requests out; typed answers in,
//! bytes out. Wire types are not domain types; the server converts between them.
//!
//! Invariant: pure. No I/O, no clock, no randomness: callers pass times and ids in
//! (`tests/integration/architecture.rs` checks the imports).

pub mod agent;
pub mod cab;
pub mod client;
pub mod downstream;
pub mod names;
pub mod server_sync;
pub mod shape;
pub mod soap;
pub mod tree;
pub mod xpress;
