//! Progress display: an indicatif bar on a terminal, plain log lines otherwise.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressStyle};

/// Reports progress of a run.
#[derive(Debug)]
pub struct Progress {
    bar: Option<ProgressBar>,
    epochs: usize,
}

impl Progress {
    /// `mode` is `auto`, `bar` or `plain`.
    pub fn new(mode: &str, epochs: usize) -> Self {
        let use_bar = match mode {
            "bar" => true,
            "plain" => false,
            _ => std::io::stderr().is_terminal(),
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
