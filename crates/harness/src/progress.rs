//! Progress display: an indicatif bar on a terminal, plain log lines otherwise.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressStyle};

/// How progress is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProgressMode {
    /// A bar on a terminal, log lines otherwise.
    Auto,
    /// Always a bar.
    Bar,
    /// Always log lines.
    Plain,
}

impl ProgressMode {
    /// Parses `--progress`.
    pub fn parse(s: &str) -> anyhow::Result<Self> {
        Ok(match s {
            "auto" => Self::Auto,
            "bar" => Self::Bar,
            "plain" => Self::Plain,
            other => anyhow::bail!("--progress must be auto, bar or plain, got `{other}`"),
        })
    }
}

/// Reports progress of a run.
#[derive(Debug)]
pub struct Progress {
    bar: Option<ProgressBar>,
    epochs: usize,
}

impl Progress {
    /// A display for a run of `epochs`.
    pub fn new(mode: ProgressMode, epochs: usize) -> Self {
        let use_bar = match mode {
            ProgressMode::Bar => true,
            ProgressMode::Plain => false,
            ProgressMode::Auto => std::io::stderr().is_terminal(),
        };
        let bar = use_bar.then(|| {
            let b = ProgressBar::new(0);
            b.set_style(
                ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} batches, {msg}, eta {eta}")
                    .expect("valid template")
                    .progress_chars("=> "),
            );
            b
        });
        Self { bar, epochs }
    }

    /// A new epoch starts with `batches` batches.
    pub fn start_epoch(&self, epoch: usize, batches: usize, phase: &str) {
        if let Some(b) = &self.bar {
            b.reset();
            b.set_length(batches as u64);
            b.set_prefix(format!("epoch {}/{} ({phase})", epoch + 1, self.epochs));
        }
    }

    /// A batch finished.
    pub fn batch(&self, done: usize, loss: f64) {
        if let Some(b) = &self.bar {
            b.set_position(done as u64);
            b.set_message(format!("loss {loss:.4}"));
        }
    }

    /// A line that should stay visible.
    pub fn line(&self, msg: &str) {
        match &self.bar {
            Some(b) => b.println(msg),
            None => eprintln!("{msg}"),
        }
    }

    /// The run ended.
    pub fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}
