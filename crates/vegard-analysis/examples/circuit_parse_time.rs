//! Wall time of `Circuit::parse` on hostile circuit strings (issue 16):
//! nested `p(` 2000 and 5000 levels deep (two branches with unique names,
//! and single-branch), a 1 MB random string over the circuit alphabet,
//! 1 MB of whitespace, a 1 MB element index, and a 1 MB series.
//!
//! `cargo run -p vegard-analysis --example circuit_parse_time [--release]`
//!
//! Prints one line per input: its length, the time, and the parse's
//! outcome (the error's first 100 characters). A timing tool, not a test:
//! the tests count the parser's steps instead (`circuit.rs`).

use std::time::Instant;

use vegard_analysis::Circuit;

/// `p(p(...p(R0,C1)...,C{levels-1}),C{levels})`: every name unique.
fn nested(levels: usize) -> String {
    let mut s = "p(".repeat(levels);
    s.push_str("R0");
    for k in 1..=levels {
        s.push_str(&format!(",C{k})"));
    }
    s
}

/// A reproducible pseudo-random string over the characters circuits use.
fn random(len: usize) -> String {
    const ALPHABET: &[u8] = b"p(),-RCLWosPE0123456789_ ";
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            char::from(ALPHABET[(state % ALPHABET.len() as u64) as usize])
        })
        .collect()
}

fn main() {
    let single = |levels: usize| format!("{}R0{}", "p(".repeat(levels), ")".repeat(levels));
    let inputs = [
        ("nested p( x 2000", nested(2000)),
        ("nested p( x 5000", nested(5000)),
        ("single-branch p( x 2000", single(2000)),
        ("single-branch p( x 5000", single(5000)),
        ("random 1 MB", random(1 << 20)),
        ("whitespace 1 MB", format!("R0-{}C1", " ".repeat(1 << 20))),
        ("1 MB index", format!("R{}", "1".repeat(1 << 20))),
        (
            "series of 100 elements",
            (0..100)
                .map(|k| format!("R{k}"))
                .collect::<Vec<_>>()
                .join("-"),
        ),
        (
            "series of 150k elements",
            (0..150_000)
                .map(|k| format!("R{k}"))
                .collect::<Vec<_>>()
                .join("-"),
        ),
    ];
    for (name, text) in &inputs {
        let t0 = Instant::now();
        let outcome = Circuit::parse(text);
        let dt = t0.elapsed();
        let what = match outcome {
            Ok(c) => format!("ok, {} parameters", c.n_params()),
            Err(e) => e.to_string().chars().take(100).collect(),
        };
        println!(
            "{name:<24} {:>8} chars  {:>10.3} ms  {what}",
            text.len(),
            dt.as_secs_f64() * 1e3
        );
    }
}
