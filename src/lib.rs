//! Ferry: carries Windows updates across an air gap.
//!
//! See ARCHITECTURE.md for the map of modules and the rules each one keeps.

pub mod catalog;
pub mod store;
