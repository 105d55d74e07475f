//! The one integration-test binary (one link step, shared helpers). Each module tests one area;
//! regression tests are named after what they guard.

mod administration;
mod answer_cache;
mod architecture;
mod bundles;
mod catalog_cli;
mod chaos;
mod conformance;
mod console;
mod fake_http;
mod fragments;
mod hostile_bundles;
mod hostile_server;
mod ingest;
mod pipeline;
mod postgres;
mod postgres_clients;
mod postgres_deployments;
mod postgres_ingest;
mod round_trips;
mod served;
mod server;
mod synth_realism;
mod upstream;
mod util;
mod what_travels;
mod xpress;
