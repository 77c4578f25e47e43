//! `cargo bench -p dynaprune`: plan construction for 50k, 1.28M and 10M samples, and `observe`
//! throughput. Targets (issue 2): a plan over 1.28M samples in under 20 ms on one core, observe
//! at 100M updates/s or more.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use dynaprune::*;
use std::hint::black_box;
use std::time::Duration;

fn filled(n: usize) -> EmaBuffer {
    let mut b = EmaBuffer::new(n, 0.9).unwrap();
    let idx: Vec<usize> = (0..n).collect();
    for e in 0..2 {
        let v: Vec<f32> = (0..n).map(|i| ((i.wrapping_mul(2654435761) + e * 97) % 10_007) as f32 / 1000.0).collect();
        b.observe(e, &idx, &v).unwrap();
    }
    b
}

fn plan(c: &mut Criterion) {
    let mut g = c.benchmark_group("plan");
    g.sample_size(10).warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(3));
    for &n in &[50_000usize, 1_280_000, 10_000_000] {
        let buffer = filled(n);
        let policies: Vec<(&str, Box<dyn Policy>)> = vec![
            ("random", Box::new(UniformRandom::new(0.5).unwrap())),
            ("epsilon-greedy", Box::new(EpsilonGreedy::builder().prune_fraction(0.5).epsilon(0.2).build().unwrap())),
            ("ucb", Box::new(Ucb::builder().prune_fraction(0.5).c(1.0).build().unwrap())),
            ("infobatch", Box::new(InfoBatch::from_drop_probability(0.5).unwrap())),
        ];
        g.throughput(Throughput::Elements(n as u64));
        for (name, policy) in policies {
            let mut pr = Pruner::builder(n)
                .boxed_policy(policy)
                .schedule(Schedule::new(usize::MAX))
                .buffer(buffer.clone())
                .build()
                .unwrap();
            let mut epoch = 0;
            g.bench_with_input(BenchmarkId::new(name, n), &n, |b, _| {
                b.iter(|| {
                    epoch += 1;
                    black_box(pr.plan(epoch).unwrap().len())
                })
            });
        }
    }
    g.finish();
}

fn observe(c: &mut Criterion) {
    let mut g = c.benchmark_group("observe");
    g.sample_size(20).warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(2));
    for &n in &[50_000usize, 1_280_000] {
        let mut buffer = EmaBuffer::new(n, 0.9).unwrap();
        // One epoch's worth of observations in shuffled order, fed in batches of 256.
        let mut idx: Vec<usize> = (0..n).collect();
        use rand::seq::SliceRandom;
        idx.shuffle(&mut rng::stream(0, "bench", 0));
        let vals: Vec<f32> = idx.iter().map(|&i| (i % 1000) as f32 / 100.0).collect();
        g.throughput(Throughput::Elements(n as u64));
        g.bench_with_input(BenchmarkId::new("ema", n), &n, |b, _| {
            b.iter(|| {
                for (i, v) in idx.chunks(256).zip(vals.chunks(256)) {
                    buffer.observe(1, i, v).unwrap();
                }
            })
        });
    }
    g.finish();
}

criterion_group!(benches, plan, observe);
criterion_main!(benches);
