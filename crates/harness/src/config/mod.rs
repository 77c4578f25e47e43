//! The run's configuration at two levels: the flags ([`flags`], clap; serialised as the run's
//! `config.json` and compared on `--resume`) and the typed settings they resolve to, once, at
//! the edge ([`settings`]; what every other part of the harness reads).

pub mod flags;
mod resolve;
pub mod settings;
pub mod values;

pub use flags::*;
pub use settings::{
    DataSettings, ModelSettings, OptimSettings, PruningSettings, RunSettings, ScoringSettings, Settings,
};
pub use values::*;
