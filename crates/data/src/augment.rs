//! Seeded training augmentation: random crop with padding and horizontal flip.
//!
//! The random draw for a sample is a pure function of `(seed, epoch, sample index)`, so an
//! epoch's augmented images do not depend on batch composition, batch order or thread count,
//! and a resumed run sees exactly the images the uninterrupted run would have.

/// How the border is filled before a random crop.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Padding {
    /// Zeros in pixel space (black), as torchvision's `RandomCrop(32, padding=4)`.
    #[default]
    Zero,
    /// Reflection without repeating the edge pixel (torchvision's `padding_mode="reflect"`).
    Reflect,
}

/// Augmentation settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Augment {
    /// Pixels of padding for the random crop (0 = no crop).
    pub crop_padding: usize,
    /// How the padding is filled.
    pub padding: Padding,
    /// Flip horizontally with probability 1/2.
    pub hflip: bool,
}

impl Augment {
    /// No augmentation.
    pub const NONE: Augment = Augment { crop_padding: 0, padding: Padding::Zero, hflip: false };
    /// The standard CIFAR recipe: 4-pixel zero padding, random 32x32 crop, horizontal flip.
    pub const CIFAR: Augment = Augment { crop_padding: 4, padding: Padding::Zero, hflip: true };
    /// A light recipe for 28x28 grey images: 2-pixel zero padding and horizontal flip. Not the
    /// Fashion-MNIST default (see [`Augment::default_for`]).
    pub const LIGHT: Augment = Augment { crop_padding: 2, padding: Padding::Zero, hflip: true };

    /// The default for a dataset: [`Augment::CIFAR`] for CIFAR, [`Augment::NONE`] for
    /// Fashion-MNIST (our CPU runs last 5-30 epochs, too short for augmentation to pay off; turn
    /// it on with [`Augment::LIGHT`] or the harness's `--augment`).
    pub fn default_for(kind: crate::DatasetKind) -> Augment {
        match kind {
            crate::DatasetKind::FashionMnist => Augment::NONE,
            _ => Augment::CIFAR,
        }
    }

    /// `true` if this does nothing.
    pub fn is_none(&self) -> bool {
        self.crop_padding == 0 && !self.hflip
    }

    /// Checks the settings against an image size.
    pub fn validate(&self, height: usize, width: usize) -> crate::Result<()> {
        if self.padding == Padding::Reflect && (self.crop_padding >= height || self.crop_padding >= width) {
            return Err(crate::DataError::Invalid {
                name: "augmentation",
                message: format!(
                    "reflect padding of {} px needs images larger than that ({height}x{width})",
                    self.crop_padding
                ),
            });
        }
        Ok(())
    }

    /// The draw for `(seed, epoch, index)`: crop offsets `(dy, dx)` in `0..=2*padding` and the
    /// flip bit.
    pub fn draw(&self, seed: u64, epoch: usize, index: usize) -> (usize, usize, bool) {
        let h = dynaprune::rng::mix3(seed, epoch as u64, index as u64);
        let span = 2 * self.crop_padding as u64 + 1;
        let dy = (h & 0xffff) % span;
        let dx = ((h >> 16) & 0xffff) % span;
        let flip = self.hflip && (h >> 63) == 1;
        (dy as usize, dx as usize, flip)
    }
}

/// Maps a padded coordinate back into `0..n`, or `None` for zero padding.
#[inline]
pub(crate) fn source_coord(i: isize, n: usize, padding: Padding) -> Option<usize> {
    if i >= 0 && (i as usize) < n {
        return Some(i as usize);
    }
    match padding {
        Padding::Zero => None,
        Padding::Reflect => {
            let n = n as isize;
            let r = if i < 0 { -i } else { 2 * (n - 1) - i };
            Some(r.clamp(0, n - 1) as usize)
        }
    }
}
