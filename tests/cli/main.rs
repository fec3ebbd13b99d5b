//! The integration tests: one binary (as ripgrep's `tests/tests.rs`), so candle is linked once.
//! Each module drives the real `mobilenet-cli` binary or the library's public API.

mod common;

mod analyze;
mod classify;
mod engines;
mod families;
mod help;
mod int8;
mod measure;
mod network;
mod plan;
mod precision;
mod properties;
mod retrain;
mod schema;
mod sweep_data;
mod sweep_weights;
