//! Ferry: carries Windows updates across an air gap.
//!
//! See ARCHITECTURE.md for the map of modules and the rules each one keeps.

pub mod admin;
pub mod bundle;
pub mod catalog;
pub mod compliance;
pub mod faults;
pub mod html;
pub mod ids;
pub mod loadgen;
pub mod publish;
pub mod random;
pub mod server;
pub mod store;
pub mod synth;
pub mod units;
pub mod upstream;
pub mod wsus;
