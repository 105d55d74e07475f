//! The one integration-test binary (one link step, shared helpers). Each module tests one area;
//! regression tests are named after what they guard.

mod conformance;
mod fragments;
