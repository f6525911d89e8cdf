//! The Keysight 34465A's documented limits as a deflection digitizer (DIG
//! option: 20 us aperture, 50 kSa/s), in one place for the three parts
//! that must agree on them: the `scpi-dmm` driver (what it sends), the
//! virtual bench's emulator (what it accepts) and recipe validation (what
//! `vegard validate` lets through). Before they shared these, intervals of
//! 10-25 us passed validation and were refused at configure, and the
//! driver's aperture rule stopped at 40 kSa/s.
//!
//! Source: Keysight Truevolt Series Operating and Service Guide, SCPI
//! reference (`VOLTage:APERture`, `SAMPle:TIMer`, `SAMPle:COUNt`,
//! `TRIGger:COUNt`, `R?` on reading memory, the Questionable Data register)
//! and the 34465A data sheet's DIG option.

/// Shortest integration time (`VOLT:APER MIN`) with the DIG option, s.
pub const APERTURE_MIN_S: f64 = 20e-6;
/// Longest integration time (`VOLT:APER MAX`), s.
pub const APERTURE_MAX_S: f64 = 1.0;
/// Resolution of `VOLT:APER`, s.
pub const APERTURE_STEP_S: f64 = 2e-6;
/// Shortest `SAMP:TIM`, s: 50 kSa/s, the DIG option's digitizing rate.
pub const SAMPLE_TIMER_MIN_S: f64 = 20e-6;
/// Longest `SAMP:TIM`, s.
pub const SAMPLE_TIMER_MAX_S: f64 = 3600.0;
/// Resolution of `SAMP:TIM`, s.
pub const SAMPLE_TIMER_STEP_S: f64 = 1e-6;
/// Largest `SAMP:COUN` (readings per trigger).
pub const SAMPLE_COUNT_MAX: u64 = 1_000_000;
/// Largest finite `TRIG:COUN` (triggers per `INIT`).
pub const TRIGGER_COUNT_MAX: u64 = 1_000_000_000;
/// Reading memory without the MEM option. Readings beyond it overwrite the
/// oldest ones (no error, only [`QUES_MEMORY_OVERFLOW`]); `R?` removes
/// readings as it returns them, which is how an acquisition outlasts it.
pub const MEMORY_READINGS: usize = 50_000;
/// Reading memory with the MEM option.
pub const MEMORY_READINGS_MEM_OPTION: usize = 2_000_000;
/// Bit 14 of the Questionable Data register: "Reading memory is full. One
/// or more (oldest) measurements have been lost."
pub const QUES_MEMORY_OVERFLOW: u16 = 1 << 14;

/// Aperture as a fraction of the sample period when there is room: the
/// rest absorbs the meter's per-reading overhead.
const APERTURE_FRACTION: f64 = 0.8;

/// The integration time the driver sets for timer-paced readings every
/// `interval_s`: 80 % of the period on the 2 us grid, but never below the
/// meter's shortest aperture, so the shortest interval (20 us) runs at
/// the 20 us aperture, as the DIG option's 50 kSa/s does (auto-zero off,
/// so a reading takes its aperture). `Err` names the bound an interval
/// outside [`SAMPLE_TIMER_MIN_S`, `SAMPLE_TIMER_MAX_S`] breaks.
pub fn aperture_for_interval_s(interval_s: f64) -> Result<f64, String> {
    check_sample_interval_s(interval_s)?;
    let steps = (APERTURE_FRACTION * interval_s / APERTURE_STEP_S + 1e-9).floor();
    Ok((steps * APERTURE_STEP_S).clamp(APERTURE_MIN_S, APERTURE_MAX_S))
}

/// `Ok` when the meter can sample every `interval_s` (timer-paced), else
/// the documented bound it breaks, for people.
pub fn check_sample_interval_s(interval_s: f64) -> Result<(), String> {
    if !interval_s.is_finite() || interval_s < SAMPLE_TIMER_MIN_S * (1.0 - 1e-9) {
        return Err(format!(
            "the 34465A samples at most every {} us (50 kSa/s with the DIG option)",
            SAMPLE_TIMER_MIN_S * 1e6
        ));
    }
    if interval_s > SAMPLE_TIMER_MAX_S {
        return Err(format!(
            "the 34465A's sample timer goes up to {SAMPLE_TIMER_MAX_S} s"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_aperture_fits_the_interval_down_to_50_ksa_per_s() {
        let close = |a: f64, b: f64| (a - b).abs() < 1e-12;
        // 20 us (50 kSa/s): the shortest aperture, a reading per period.
        assert!(close(aperture_for_interval_s(20e-6).unwrap(), 20e-6));
        // 25 us: 80 % is 20 us.
        assert!(close(aperture_for_interval_s(25e-6).unwrap(), 20e-6));
        // 1 ms: 800 us.
        assert!(close(aperture_for_interval_s(1e-3).unwrap(), 800e-6));
        // 33 us: 26.4 us, down to the 2 us grid.
        assert!(close(aperture_for_interval_s(33e-6).unwrap(), 26e-6));
        // Slow sampling: capped at 1 s.
        assert!(close(aperture_for_interval_s(10.0).unwrap(), 1.0));
        for interval_s in [20e-6, 21e-6, 24e-6, 25e-6, 40e-6, 1e-3, 0.1, 3600.0] {
            let a = aperture_for_interval_s(interval_s).unwrap();
            assert!(
                a <= interval_s + 1e-15 && a >= APERTURE_MIN_S,
                "{interval_s}: {a}"
            );
        }
    }

    #[test]
    fn intervals_the_meter_cannot_do_are_refused_with_the_bound() {
        for bad in [10e-6, 19e-6, 19.99e-6, 0.0, -1.0, f64::NAN, 3601.0] {
            assert!(aperture_for_interval_s(bad).is_err(), "{bad}");
        }
        let e = check_sample_interval_s(10e-6).unwrap_err();
        assert!(e.contains("20 us") && e.contains("50 kSa/s"), "{e}");
    }
}
