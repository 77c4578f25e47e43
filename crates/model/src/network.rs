//! The seam between a network and everything that trains, scores, checkpoints or benchmarks it.
//!
//! [`Network`] is a trait rather than an enum of our architectures: the harness must train a
//! network it has never heard of (a test defines one in its own file and registers it), and an
//! enum would make every new architecture an edit of this crate. The harness holds a
//! `Box<dyn Network>`; a virtual call per forward pass is nothing next to the convolutions.
//! The shape is that of Candle's mnist-training example (a `Model` trait, a `WhichModel` enum
//! choosing among the models, one generic training loop): here the trait is `Network` and the
//! choice is the harness's model registry, a list rather than an enum so that code outside the
//! harness can add to it.
//!
//! What a network provides, and who needs it:
//! - [`Network::forward_with_features`] in the three [`Mode`]s: training (batch statistics),
//!   evaluation (running statistics, no gradient) and evaluation with gradients (GraNd at
//!   initialisation). The features are the input of the last linear layer (last-layer GraNd).
//! - [`Network::params`] with their [`crate::ParamKind`]: the optimizer's weight-decay groups.
//! - [`Network::buffers`] / [`Network::set_buffer`]: state that is not trained (BatchNorm running
//!   statistics), for checkpoints.
//! - [`Network::architecture`]: the name a checkpoint records, so a checkpoint of another
//!   architecture is rejected by name.
//! - [`Network::forward_macs`]: work per image, for FLOP rates in benchmarks.

use candle_core::{Device, Tensor};

use crate::error::Result;
use crate::layers::{Mode, Param};

/// A classifier the harness can train: images `(N, C, H, W)` in, logits `(N, classes)` out.
pub trait Network: std::fmt::Debug + Send + Sync {
    /// The architecture, as checkpoints and logs name it (`resnet8`, `mlp`, ...). Two networks
    /// with the same architecture name and the same parameter shapes can load each other's
    /// checkpoints.
    fn architecture(&self) -> &str;

    /// `(features (N, D), logits (N, classes))`: the features are the input of the final linear
    /// layer. In [`Mode::Eval`] both are detached from the graph.
    fn forward_with_features(&self, x: &Tensor, mode: Mode) -> Result<(Tensor, Tensor)>;

    /// The trainable parameters, in a fixed order.
    fn params(&self) -> &[Param];

    /// Untrained state by checkpoint name (BatchNorm running statistics); none by default.
    fn buffers(&self) -> Vec<(String, Tensor)> {
        Vec::new()
    }

    /// Restores one of [`Network::buffers`]; `false` if no buffer has that name.
    fn set_buffer(&self, _name: &str, _value: Tensor) -> bool {
        false
    }

    /// The device the parameters live on.
    fn device(&self) -> &Device;

    /// Forward multiply-accumulates per image of `h x w` pixels (the dominant layers; for
    /// benchmark FLOP rates, never for results).
    fn forward_macs(&self, h: usize, w: usize) -> u64;

    /// Logits in `mode`.
    fn forward_mode(&self, x: &Tensor, mode: Mode) -> Result<Tensor> {
        Ok(self.forward_with_features(x, mode)?.1)
    }

    /// Logits in training mode (`train`) or evaluation mode.
    fn forward(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        self.forward_mode(x, if train { Mode::Train } else { Mode::Eval })
    }

    /// Training FLOPs per image: 2 per multiply-accumulate, forward + input gradient + weight
    /// gradient (networks that skip the first layer's input gradient override this).
    fn train_flops(&self, h: usize, w: usize) -> u64 {
        6 * self.forward_macs(h, w)
    }

    /// Number of trainable scalars.
    fn num_params(&self) -> usize {
        self.params().iter().map(|p| p.var.elem_count()).sum()
    }
}
