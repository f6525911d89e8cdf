//! Speed of the EIS circuit fit on the published impedance.py example
//! (exampleData.csv, Z'' < 0, `R0-p(R1-Wo1,C1)`): from the published
//! initial guess, and from the automatic guess (three starts). Run with
//! `cargo bench -p vegard-analysis --bench eis_fit`; the head-to-head
//! against impedance.py itself is `scripts/bench-eis-vs-impedancepy.sh`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark: a panic is a failure

use criterion::{Criterion, criterion_group, criterion_main};
use vegard_analysis::{Circuit, EisWeighting, fit_circuit, read_eis_csv};

fn example() -> (Vec<f64>, Vec<(f64, f64)>) {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/fixtures/eis/exampleData.csv"
    );
    let (f, z) =
        read_eis_csv(path).expect("../shared/fixtures/eis/exampleData.csv beside the repo");
    let keep: Vec<usize> = (0..f.len()).filter(|&i| z[i].1 < 0.0).collect();
    (
        keep.iter().map(|&i| f[i]).collect(),
        keep.iter().map(|&i| z[i]).collect(),
    )
}

fn bench(c: &mut Criterion) {
    let (f, z) = example();
    let circuit = Circuit::parse("R0-p(R1-Wo1,C1)").unwrap();
    let guess = [0.01, 0.005, 0.01, 200.0, 0.1];
    c.bench_function("fit R0-p(R1-Wo1,C1) exampleData, published guess", |b| {
        b.iter(|| fit_circuit(&circuit, &f, &z, Some(&guess), EisWeighting::Unit).unwrap())
    });
    c.bench_function("fit R0-p(R1-Wo1,C1) exampleData, automatic guess", |b| {
        b.iter(|| fit_circuit(&circuit, &f, &z, None, EisWeighting::Unit).unwrap())
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
