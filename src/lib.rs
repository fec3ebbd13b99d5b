//! mobilenet-cli: a model explorer and cost calculator for the MobileNet family
//! (Howard et al. 2017, arXiv:1704.04861).
//!
//! Dependency direction: `arch` (the spec) <- `cost` (pure integer counts) and the network;
//! `report` only formats what the computing modules return.

// Every unsafe block says why it is sound, every unsafe fn states its contract (review §2.9).
#![deny(clippy::undocumented_unsafe_blocks, clippy::missing_safety_doc)]

pub mod app;
pub mod arch;
pub mod bench;
pub mod classify;
pub mod cli;
pub mod cost;
pub mod dataset;
pub mod engine;
pub mod infer;
pub mod memory;
pub mod nn;
pub mod output;
pub mod published;
pub mod quant;
pub mod report;
pub mod sweep;
pub mod text;
pub mod transfer;
pub mod vision;
