//! Augmentation and batch assembly: determinism, correctness of crops and flips, normalisation,
//! prefetching.

use std::sync::Arc;

use candle_core::Device;
use dynaprune_data::*;

fn ramp_dataset() -> Arc<ImageDataset> {
    // 8 images of 1x6x6; pixel = 10*y + x + i (distinct in every direction).
    let shape = ImageShape { channels: 1, height: 6, width: 6 };
    let mut img = Vec::new();
    for i in 0..8u8 {
        for y in 0..6u8 {
            for x in 0..6u8 {
                img.push(10 * y + x + i);
            }
        }
    }
    Arc::new(ImageDataset::new("ramp", shape, 2, img, vec![0, 1, 0, 1, 0, 1, 0, 1]).unwrap())
}

fn unit_stats() -> ChannelStats {
    // mean 0, std 1/255: normalised value = raw pixel value.
    ChannelStats { mean: vec![0.0], std: vec![1.0 / 255.0] }
}

fn image_of(a: &BatchAssembler, epoch: usize, i: usize) -> Vec<f32> {
    let mut out = vec![0f32; 36];
    a.fill(epoch, &[i], &mut out).unwrap();
    out
}

#[test]
fn augmentation_is_a_pure_function_of_seed_epoch_index() {
    let ds = ramp_dataset();
    let a = BatchAssembler::new(ds.clone(), &unit_stats(), Augment::CIFAR, 9, Device::Cpu).unwrap();
    let serial = a.clone().with_parallel(false);
    let all: Vec<usize> = (0..8).collect();
    let mut batch = vec![0f32; 8 * 36];
    a.fill(3, &all, &mut batch).unwrap();
    for i in 0..8 {
        assert_eq!(&batch[i * 36..(i + 1) * 36], image_of(&serial, 3, i).as_slice(), "sample {i}");
    }
    // Different batch composition and order, same images.
    let mut b2 = vec![0f32; 2 * 36];
    a.fill(3, &[5, 2], &mut b2).unwrap();
    assert_eq!(&b2[..36], image_of(&a, 3, 5).as_slice());
    // Epochs and seeds change the draw.
    let differs = (0..8).any(|i| image_of(&a, 3, i) != image_of(&a, 4, i));
    assert!(differs, "another epoch, another crop or flip for some sample");
    let other_seed = BatchAssembler::new(ds.clone(), &unit_stats(), Augment::CIFAR, 10, Device::Cpu).unwrap();
    assert!((0..8).any(|i| image_of(&a, 3, i) != image_of(&other_seed, 3, i)), "another seed, another draw");
    let same_seed = BatchAssembler::new(ds.clone(), &unit_stats(), Augment::CIFAR, 9, Device::Cpu).unwrap();
    assert!((0..8).all(|i| image_of(&a, 3, i) == image_of(&same_seed, 3, i)), "the same seed, the same draw");
}

#[test]
fn crop_and_flip_move_pixels_as_specified() {
    let ds = ramp_dataset();
    for aug in [
        Augment { crop_padding: 2, padding: Padding::Zero, hflip: true },
        Augment { crop_padding: 2, padding: Padding::Reflect, hflip: true },
    ] {
        let a = BatchAssembler::new(ds.clone(), &unit_stats(), aug, 1, Device::Cpu).unwrap();
        for epoch in 0..20 {
            for i in 0..8usize {
                let (dy, dx, flip) = aug.draw(1, epoch, i);
                let out = image_of(&a, epoch, i);
                for y in 0..6 {
                    for x in 0..6 {
                        let cx = if flip { 5 - x } else { x };
                        let (sy, sx) = (y as isize + dy as isize - 2, cx as isize + dx as isize - 2);
                        let refl = |v: isize| {
                            if v < 0 {
                                -v
                            } else if v > 5 {
                                10 - v
                            } else {
                                v
                            }
                        };
                        let expect = match aug.padding {
                            Padding::Zero if !(0..6).contains(&sy) || !(0..6).contains(&sx) => 0.0,
                            _ => (10 * refl(sy) + refl(sx) + i as isize) as f32,
                        };
                        assert_eq!(out[y * 6 + x], expect, "{aug:?} epoch {epoch} sample {i} at ({y},{x})");
                    }
                }
            }
        }
    }
    let none = BatchAssembler::new(ds.clone(), &unit_stats(), Augment::NONE, 1, Device::Cpu).unwrap();
    assert_eq!(image_of(&none, 0, 3)[7], (10 + 1 + 3) as f32);
    assert!(BatchAssembler::new(
        ds,
        &unit_stats(),
        Augment { crop_padding: 6, padding: Padding::Reflect, hflip: false },
        0,
        Device::Cpu
    )
    .is_err());
}

#[test]
fn batches_carry_indices_labels_weights_and_normalise() {
    let splits = synthetic(ImageShape { channels: 3, height: 8, width: 8 }, 4, 200, 10, 3).unwrap();
    let stats = splits.train.channel_stats();
    let train = Arc::new(splits.train);
    let a = BatchAssembler::new(train.clone(), &stats, Augment::NONE, 0, Device::Cpu).unwrap();
    let idx: Vec<usize> = (0..200).rev().collect();
    let w: Vec<f32> = (0..200).map(|i| i as f32).collect();
    let b = a.assemble(0, &idx, Some(&w)).unwrap();
    assert_eq!(b.indices, idx);
    assert_eq!(b.weights.as_deref(), Some(w.as_slice()));
    let labels = b.labels.to_vec1::<u32>().unwrap();
    assert!(idx.iter().zip(&labels).all(|(&i, &l)| train.labels()[i] == l));
    // Per-channel mean ~0 and std ~1 after normalisation with the dataset's own statistics.
    let x = b.images.permute((1, 0, 2, 3)).unwrap().flatten_from(1).unwrap();
    let mean = x.mean(1).unwrap().to_vec1::<f32>().unwrap();
    let var = x.sqr().unwrap().mean(1).unwrap().to_vec1::<f32>().unwrap();
    for c in 0..3 {
        assert!(
            mean[c].abs() < 1e-3 && (var[c] - mean[c] * mean[c] - 1.0).abs() < 1e-2,
            "channel {c}: {mean:?} {var:?}"
        );
    }
    assert!(matches!(a.assemble(0, &[200], None), Err(DataError::IndexOutOfRange { index: 200, len: 200 })));
    assert!(a.assemble(0, &[1, 2], Some(&[1.0])).is_err());
}

#[test]
fn prefetch_yields_the_same_batches_in_order() {
    let splits = synthetic(ImageShape { channels: 1, height: 12, width: 12 }, 3, 100, 10, 5).unwrap();
    let stats = splits.train.channel_stats();
    let a = BatchAssembler::new(Arc::new(splits.train), &stats, Augment::LIGHT, 2, Device::Cpu).unwrap();
    let plan: Vec<BatchSpec> = (0..10).map(|b| BatchSpec::unweighted((b * 10..b * 10 + 10).collect())).collect();
    let fetched: Vec<Batch> = a.prefetch(7, plan.clone(), 2).collect::<Result<_>>().unwrap();
    assert_eq!(fetched.len(), 10);
    for (got, spec) in fetched.iter().zip(&plan) {
        let want = a.assemble(7, &spec.indices, None).unwrap();
        assert_eq!(got.indices, spec.indices);
        assert_eq!(
            got.images.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
            want.images.flatten_all().unwrap().to_vec1::<f32>().unwrap()
        );
    }
    // Dropping a prefetch early stops its thread.
    let mut p = a.prefetch(0, plan, 1);
    assert!(p.next().is_some());
    drop(p);
}
