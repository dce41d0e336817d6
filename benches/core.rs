//! Criterion benches of the core's hot paths: sealing and opening datagrams,
//! and computing a view's sync digest.
//!
//! `cargo bench -p rollcall --bench core`

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use rand::SeedableRng;
use rollcall::core::sync::{digest, Entry};
use rollcall::core::wire::{Envelope, Kind};
use rollcall::core::{NodeId, SeedRng};

fn wire(c: &mut Criterion) {
    let env = Envelope::new(b"a secret cookie", "rollcall");
    let mut rng = SeedRng::seed_from_u64(1);
    let mut group = c.benchmark_group("wire");
    for size in [64usize, 512, 1354] {
        let body = vec![7u8; size];
        group.throughput(Throughput::Bytes(size as u64));
        let mut out = Vec::new();
        group.bench_with_input(BenchmarkId::new("seal", size), &body, |b, body| {
            b.iter(|| env.seal_into(Kind::Gossip, black_box(body), &mut rng, &mut out))
        });
        let sealed = env.seal(Kind::Gossip, &body, &mut rng);
        let mut scratch = Vec::new();
        group.bench_with_input(BenchmarkId::new("open", size), &sealed, |b, d| {
            b.iter(|| {
                env.open(black_box(d), &mut scratch).unwrap();
            })
        });
    }
    group.bench_function("reject_other_cookie", |b| {
        let other = Envelope::new(b"another", "rollcall").seal(Kind::Gossip, &[1; 200], &mut rng);
        let mut scratch = Vec::new();
        b.iter(|| env.open(black_box(&other), &mut scratch).is_err())
    });
    group.finish();
}

fn sync_digest(c: &mut Criterion) {
    let mut group = c.benchmark_group("sync_digest");
    for n in [100usize, 1000, 10_000] {
        let ids: Vec<NodeId> = (0..n)
            .map(|i| {
                NodeId::new(
                    format!("rc{i}@127.0.0.1").parse().unwrap(),
                    "127.0.0.1:4370".parse().unwrap(),
                    1,
                )
            })
            .collect();
        group.throughput(Throughput::Elements(n as u64));
        group.bench_with_input(BenchmarkId::from_parameter(n), &ids, |b, ids| {
            b.iter(|| digest(ids.iter().map(|id| Entry::Record(id, false))))
        });
    }
    group.finish();
}

criterion_group!(benches, wire, sync_digest);
criterion_main!(benches);
