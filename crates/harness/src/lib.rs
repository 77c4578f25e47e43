//! # dynaprune-harness — where data, model and pruning meet
//!
//! The `dynaprune` binary's library: one training run with any policy ([`run::train`]), static
//! scorers with their cost counted ([`scoring`]), exact time accounting ([`run::accounting`]),
//! resumable checkpoints ([`run::checkpoint`]), reports over many runs ([`report`]) and the
//! training-speed benchmark ([`tools::bench`]).
//!
//! ## Map
//! Each folder is one concern; the flags become typed [`config::Settings`] once, at the edge,
//! and nothing below reads a flag.
//! - [`config`]: the flags of `dynaprune train` ([`config::TrainArgs`], saved as `config.json`)
//!   and the typed settings they resolve to (data, model, optimiser, pruning, scoring, run).
//! - [`models`]: the model registry (name -> constructor, accepted inputs, help), one file per
//!   model family; everything else sees a `dyn Network`.
//! - [`datasets`]: which directory, which loader, with clear errors.
//! - [`run`]: the training run in stages ([`run::train`]: set up or resume, one epoch, finish);
//!   [`run::engine`] (one epoch of SGD over a plan's batches, evaluation), [`run::policies`]
//!   (settings to a [`dynaprune::Pruner`]), [`run::checkpoint`] (atomic checkpoints, resume
//!   checks), [`run::accounting`] (per-epoch rows and the summary).
//! - [`scoring`]: the static scorers EL2N, GraNd (full and last-layer), forgetting; score files.
//! - [`report`]: tables, statistics and SVG plots over many runs ([`report::svg`]).
//! - [`tools`]: `bench-train` ([`tools::bench`]) and `device-check` ([`tools::device_check`]).
//! - Support: [`output`] (atomic writes), [`provenance`] (command, commit, machine),
//!   [`progress`] (bar or log lines), [`resources`] (CPU time, peak memory), [`seeds`] (the
//!   purposes of the run's random streams).

pub mod config;
pub mod datasets;
pub mod models;
pub mod output;
pub mod progress;
pub mod provenance;
pub mod report;
pub mod resources;
pub mod run;
pub mod scoring;
pub mod seeds;
pub mod tools;
