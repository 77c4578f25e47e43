//! # dynaprune-harness — where data, model and pruning meet
//!
//! The `dynaprune` binary's library: one training run with any policy ([`train`]), static
//! scorers with their cost counted ([`scorers`]), exact time accounting ([`accounting`]),
//! resumable checkpoints, reports over many runs ([`report`]) and the training-speed benchmark
//! ([`bench`]).
//!
//! ## Map
//! - [`config`]: every flag of `dynaprune train`, serialised as the run's `config.json`.
//! - [`datasets`]: which directory, which loader; [`models`]: the model registry (name ->
//!   constructor, accepted inputs, help), one file per model family; [`policies`]: flags to a
//!   [`dynaprune::Pruner`].
//! - [`engine`]: one epoch of SGD over a plan's batches, evaluation.
//! - [`train`]: the run loop, checkpoints, resume; [`scorers`]: EL2N, GraNd, forgetting.
//! - [`accounting`]: per-epoch rows and the summary; [`output`]: atomic writes;
//!   [`provenance`]: command, commit and machine; [`progress`]: bar or log lines.
//! - [`report`]: tables and SVG plots over many runs; [`bench`]: `bench-train`;
//!   [`device_check`]: does a device (CUDA) compute what our CPU kernels compute.

pub mod accounting;
pub mod bench;
pub mod config;
pub mod datasets;
pub mod device_check;
pub mod engine;
pub mod models;
pub mod output;
pub mod policies;
pub mod progress;
pub mod provenance;
pub mod report;
pub mod resources;
pub mod scorers;
pub mod seeds;
pub mod svg;
pub mod train;
