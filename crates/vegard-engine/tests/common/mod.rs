//! Helpers shared by the engine's tests against the virtual bench.
#![allow(dead_code)]

/// Largest |aligned - expected| over digitizer readings, where expected is
/// the potentiostat's aligned time at the reading's true instant (linear
/// between its samples): the digitizer's error relative to the
/// potentiostat, with the potentiostat's own timeline error cancelled.
/// `pot` = (true, aligned) of the potentiostat's samples, ascending;
/// `readings` = (true, aligned) of the digitizer's.
pub fn relative_worst_s(pot: &[(f64, f64)], readings: impl IntoIterator<Item = (f64, f64)>) -> f64 {
    let mut worst: f64 = 0.0;
    for (t, aligned) in readings {
        let j = pot.partition_point(|p| p.0 <= t);
        if j == 0 || j == pot.len() {
            continue;
        }
        let (a, b) = (pot[j - 1], pot[j]);
        let expected = a.1 + (t - a.0) / (b.0 - a.0) * (b.1 - a.1);
        worst = worst.max((aligned - expected).abs());
    }
    worst
}
