//! `cargo bench -p dynaprune-data`: augmented batch assembly throughput (images/s) for 3x32x32
//! (CIFAR recipe: 4-px crop + flip) and 1x28x28 (light recipe), batch 128, on 1 and 2 threads.
//! Target (issue 3): at least 20,000 images/s on 2 cores.

use std::sync::Arc;

use candle_core::Device;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use dynaprune_data::*;

fn assembly(c: &mut Criterion) {
    let mut g = c.benchmark_group("assemble_batch128");
    g.sample_size(30);
    for (name, shape, aug) in [
        ("3x32x32", ImageShape { channels: 3, height: 32, width: 32 }, Augment::CIFAR),
        ("1x28x28", ImageShape { channels: 1, height: 28, width: 28 }, Augment::LIGHT),
    ] {
        let splits = synthetic(shape, 10, 4096, 1, 1).unwrap();
        let stats = splits.train.channel_stats();
        let a = BatchAssembler::new(Arc::new(splits.train), &stats, aug, 3, Device::Cpu).unwrap();
        g.throughput(Throughput::Elements(128));
        for threads in [1usize, 2] {
            let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
            let mut epoch = 0;
            g.bench_with_input(BenchmarkId::new(name, format!("threads={threads}")), &threads, |b, _| {
                b.iter(|| {
                    epoch += 1;
                    let idx: Vec<usize> = (0..128).map(|k| (k * 31 + epoch * 7) % 4096).collect();
                    pool.install(|| a.assemble(epoch, &idx, None).unwrap())
                })
            });
        }
    }
    g.finish();
}

criterion_group!(benches, assembly);
criterion_main!(benches);
