//! Continuous deflection acquisition in blocks, each started by its own sync
//! edge from the potentiostat.
//!
//! Why blocks: the 34465A takes at most `SAMP:COUN` = 10^6 readings per
//! trigger (and keeps 50 000 in memory), so one trigger per step capped a
//! step at 15 min at 1 kS/s. With `TRIG:COUN` = B and `SAMP:COUN` = M the
//! meter takes a burst of M timer-paced readings at each of B trigger edges
//! and waits for the next edge in between; `R?` drains the memory as it
//! goes. The potentiostat raises its digital output every K samples inside
//! its measurement loop, so edge b is at exactly `b * K * dt_p` of the
//! potentiostat's device time, and reading j of block b at
//! `b * K * dt_p + j * dt_d`. Each block is pinned to the potentiostat's
//! clock by its own edge: the two timebases can only drift apart within one
//! block (about a second), never over the whole step.
//!
//! The meter must be waiting when the next edge comes (an edge during a
//! burst is not a trigger), so a block leaves `reserve` reading slots
//! free: one for re-arming, plus what the two quartz timebases may drift
//! apart over a block. At 1 kS/s that is one slot a second.

/// Block length aimed for, s of potentiostat time: long enough that the
/// loop body's edge costs nothing, short enough that the clocks drift apart
/// by at most 0.2 ms within a block ([`RELATIVE_DRIFT_MAX`]).
pub const BLOCK_TARGET_S: f64 = 1.0;
/// Fewest digitizer reading slots in a block (slow digitizer rates make
/// blocks longer than [`BLOCK_TARGET_S`]).
pub const BLOCK_MIN_SLOTS: u64 = 10;
/// Largest rate difference of the two instruments' timebases the reserve
/// allows for: each quartz within ±100 ppm of nominal.
pub const RELATIVE_DRIFT_MAX: f64 = 200e-6;

/// How one recording step is cut into blocks.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BlockPlan {
    /// Potentiostat samples between sync edges (K, at least 2: the line is
    /// lowered one sample after each edge, raised at the next block).
    pub edge_every_samples: u64,
    /// `K * dt_p`: potentiostat device time between edges, s.
    pub block_period_s: f64,
    /// Digitizer readings per edge (`SAMP:COUN`).
    pub readings_per_block: u64,
    /// Edges the digitizer waits for (`TRIG:COUN`): one at the start and
    /// one per whole block period of the step.
    pub blocks: u64,
    /// Digitizer reading interval, s.
    pub reading_interval_s: f64,
}

impl BlockPlan {
    /// Reading slots left free at the end of each block (see module doc).
    pub fn reserve_slots(&self) -> u64 {
        ((self.block_period_s / self.reading_interval_s + 1e-9).floor() as u64)
            .saturating_sub(self.readings_per_block)
    }

    /// Device time of reading `index` of the step (counted over all
    /// blocks) on the potentiostat's timebase, s.
    pub fn reading_time_s(&self, index: u64) -> f64 {
        let m = self.readings_per_block.max(1);
        (index / m) as f64 * self.block_period_s + (index % m) as f64 * self.reading_interval_s
    }
}

/// Cut a step of `duration_s` into blocks. `pstat_interval_s` is the
/// potentiostat's sample interval (its loop body runs once per sample),
/// `reading_interval_s` the digitizer's, `max_readings_per_trigger` the
/// meter's `SAMP:COUN` limit (the bench's `max_samples`), and
/// `max_triggers` its `TRIG:COUN` limit. `Err` says, for people, which limit
/// the step breaks.
pub fn plan_blocks(
    pstat_interval_s: f64,
    reading_interval_s: f64,
    duration_s: f64,
    max_readings_per_trigger: u64,
    max_triggers: u64,
) -> Result<BlockPlan, String> {
    let positive = |x: f64| x.is_finite() && x > 0.0;
    if !(positive(pstat_interval_s) && positive(reading_interval_s)) {
        return Err(format!(
            "sample intervals must be > 0 (potentiostat {pstat_interval_s} s, \
             digitizer {reading_interval_s} s)"
        ));
    }
    if !(duration_s.is_finite() && duration_s >= 0.0) {
        return Err(format!("step duration {duration_s} s"));
    }
    // A block holds at least BLOCK_MIN_SLOTS readings, at most what one
    // trigger may take (plus its reserve).
    let longest_s = (max_readings_per_trigger as f64 + 1.0) * reading_interval_s;
    let want_s = BLOCK_TARGET_S
        .max(BLOCK_MIN_SLOTS as f64 * reading_interval_s)
        .min(longest_s);
    let mut k = ((want_s / pstat_interval_s) * (1.0 - 1e-12))
        .ceil()
        .max(2.0) as u64;
    // The loop body counts whole samples: round down if that overshoots
    // what one trigger can hold (but never below 2).
    while k > 2 && k as f64 * pstat_interval_s > longest_s {
        k -= 1;
    }
    let block_period_s = k as f64 * pstat_interval_s;
    let slots = (block_period_s / reading_interval_s + 1e-9).floor() as u64;
    let reserve = 1 + (RELATIVE_DRIFT_MAX * block_period_s / reading_interval_s).ceil() as u64;
    let readings_per_block = slots.saturating_sub(reserve).min(max_readings_per_trigger);
    if readings_per_block == 0 {
        return Err(format!(
            "a block of {k} potentiostat samples ({block_period_s} s) has no room for a \
             digitizer reading every {reading_interval_s} s and the re-arming slot"
        ));
    }
    let blocks = (duration_s / block_period_s * (1.0 + 1e-12)).floor() as u64 + 1;
    if blocks > max_triggers {
        return Err(format!(
            "{blocks} sync edges of {block_period_s} s each; the digitizer counts at most \
             {max_triggers} triggers"
        ));
    }
    Ok(BlockPlan {
        edge_every_samples: k,
        block_period_s,
        readings_per_block,
        blocks,
        reading_interval_s,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_second_blocks_with_one_free_slot_at_1_ksa_per_s() {
        // CV at 10 ms per sample, digitizer at 1 kS/s, one hour.
        let p = plan_blocks(0.01, 1e-3, 3600.0, 1_000_000, 1_000_000_000).unwrap();
        assert_eq!(p.edge_every_samples, 100);
        assert!((p.block_period_s - 1.0).abs() < 1e-12);
        // 1000 slots, 200 ppm of 1 s = 0.2 slot -> reserve 2 (re-arm + drift).
        assert_eq!(p.readings_per_block, 998);
        assert_eq!(p.reserve_slots(), 2);
        assert_eq!(p.blocks, 3601);
        // Reading 998 is the first of block 1: at the edge, 1 s.
        assert!((p.reading_time_s(997) - 0.997).abs() < 1e-12);
        assert!((p.reading_time_s(998) - 1.0).abs() < 1e-12);
    }

    #[test]
    fn the_burst_ends_before_the_next_edge_even_with_clocks_200_ppm_apart() {
        for (dt_p, dt_d) in [
            (0.01, 1e-3),
            (1e-3, 20e-6),
            (0.1, 0.02),
            (5.0, 1e-3),
            (2e-3, 0.5),
        ] {
            let p = plan_blocks(dt_p, dt_d, 600.0, 1_000_000, 1_000_000_000).unwrap();
            // Last reading of a burst done (aperture <= interval) on a
            // digitizer running 200 ppm slow, before the next edge.
            let burst_end_s = p.readings_per_block as f64 * dt_d * (1.0 + RELATIVE_DRIFT_MAX);
            assert!(
                burst_end_s < p.block_period_s - 0.5 * dt_d,
                "{dt_p} {dt_d}: {p:?}"
            );
            assert!(p.edge_every_samples >= 2, "{p:?}");
            assert!(p.readings_per_block >= 1);
        }
    }

    #[test]
    fn a_block_never_asks_more_of_one_trigger_than_the_meter_allows() {
        // A bench with max_samples = 100 at 1 kS/s: blocks of 0.1 s.
        let p = plan_blocks(0.01, 1e-3, 60.0, 100, 1_000_000_000).unwrap();
        assert!(p.readings_per_block <= 100, "{p:?}");
        assert!((p.block_period_s - 0.1).abs() < 1e-12, "{p:?}");
        // Too many triggers is refused with the count.
        let e = plan_blocks(0.01, 1e-3, 3600.0, 1_000_000, 1000).unwrap_err();
        assert!(e.contains("3601 sync edges"), "{e}");
        assert!(plan_blocks(0.0, 1e-3, 1.0, 10, 10).is_err());
    }
}
