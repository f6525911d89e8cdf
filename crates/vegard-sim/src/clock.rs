//! Time on the virtual bench.
//!
//! Owns: the true (simulated) timeline, `tau_s = speed * wall seconds since
//! the bench started`, and the device oscillators that map a device's own
//! intervals onto true instants. Every emulator schedules its samples through
//! a [`DeviceClock`], so the clock errors a real bench has (offset, rate
//! error, jitter) are present on the wire and recorded in the truth log.

use crate::SimError;
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand_distr::{Distribution, Normal};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use vegard_recipe::ClockParams;

/// Longest single sleep while waiting for a true instant, wall time. Bounds
/// the reaction time to an abort (`Z`) or a bench shutdown.
const MAX_SLEEP: Duration = Duration::from_millis(5);

/// The bench's true timeline: simulated seconds since start, running
/// `speed` times faster than the wall clock.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BenchClock {
    start: Instant,
    speed: f64,
}

/// Why a wait for a true instant ended early.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Interrupted {
    /// The caller's abort condition became true.
    Abort,
    /// The bench is shutting down.
    Shutdown,
}

impl BenchClock {
    /// `speed` must be finite and > 0 (checked by the bench before).
    pub(crate) fn start(speed: f64) -> Self {
        BenchClock {
            start: Instant::now(),
            speed,
        }
    }

    pub(crate) fn speed(&self) -> f64 {
        self.speed
    }

    /// True time now, s.
    pub(crate) fn now_s(&self) -> f64 {
        self.start.elapsed().as_secs_f64() * self.speed
    }

    /// Sleeps until true time reaches `t_true_s`, waking at least every
    /// [`MAX_SLEEP`] to check `shutdown` and `abort`. `abort` is polled
    /// before `shutdown` so an abort that races a shutdown still reports.
    pub(crate) fn sleep_until(
        &self,
        t_true_s: f64,
        shutdown: &AtomicBool,
        mut abort: impl FnMut() -> bool,
    ) -> Result<(), Interrupted> {
        loop {
            if abort() {
                return Err(Interrupted::Abort);
            }
            if shutdown.load(Ordering::Relaxed) {
                return Err(Interrupted::Shutdown);
            }
            let ahead_s = t_true_s - self.now_s();
            if ahead_s <= 0.0 {
                return Ok(());
            }
            let wall = Duration::from_secs_f64(ahead_s / self.speed).min(MAX_SLEEP);
            std::thread::sleep(wall);
        }
    }
}

/// A device oscillator: `t_dev = (tau - offset_s) (1 + drift_ppm 1e-6)`, and
/// every scheduled event disturbed by white jitter from a seeded stream.
#[derive(Debug, Clone)]
pub struct DeviceClock {
    offset_s: f64,
    /// Device seconds per true second.
    rate: f64,
    jitter: Option<Normal<f64>>,
    rng: StdRng,
}

impl DeviceClock {
    /// `name` prefixes the parameter in errors (e.g. `"clocks.deflection"`).
    pub fn new(name: &'static str, p: &ClockParams, seed: u64) -> Result<Self, SimError> {
        let rate = 1.0 + p.drift_ppm * 1e-6;
        if !p.offset_s.is_finite() {
            return Err(SimError::InvalidParam {
                name,
                reason: format!("offset_s must be finite, got {}", p.offset_s),
            });
        }
        if !(rate.is_finite() && rate > 0.0) {
            return Err(SimError::InvalidParam {
                name,
                reason: format!(
                    "drift_ppm must be finite and > -1e6 (a running clock), got {}",
                    p.drift_ppm
                ),
            });
        }
        if !(p.jitter_s.is_finite() && p.jitter_s >= 0.0) {
            return Err(SimError::InvalidParam {
                name,
                reason: format!("jitter_s must be finite and >= 0, got {}", p.jitter_s),
            });
        }
        let jitter = if p.jitter_s > 0.0 {
            Normal::new(0.0, p.jitter_s).ok()
        } else {
            None
        };
        Ok(DeviceClock {
            offset_s: p.offset_s,
            rate,
            jitter,
            rng: StdRng::seed_from_u64(seed),
        })
    }

    /// What the device's own clock reads at true time `t_true_s`.
    pub fn device_time_s(&self, t_true_s: f64) -> f64 {
        (t_true_s - self.offset_s) * self.rate
    }

    /// Device seconds per true second (1 + drift).
    pub fn rate(&self) -> f64 {
        self.rate
    }

    /// True duration of an interval the device counts as `device_interval_s`.
    pub fn true_interval_s(&self, device_interval_s: f64) -> f64 {
        device_interval_s / self.rate
    }

    /// True instant of an event the device schedules `device_interval_s`
    /// after an event at true time `start_true_s`, including jitter. Draws
    /// one jitter sample per call, so call it once per event, in order.
    pub fn event_true_s(&mut self, start_true_s: f64, device_interval_s: f64) -> f64 {
        let jitter_s = match &self.jitter {
            Some(normal) => normal.sample(&mut self.rng),
            None => 0.0,
        };
        start_true_s + self.true_interval_s(device_interval_s) + jitter_s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(offset_s: f64, drift_ppm: f64, jitter_s: f64) -> ClockParams {
        ClockParams {
            offset_s,
            drift_ppm,
            jitter_s,
        }
    }

    #[test]
    fn a_fast_clock_counts_its_interval_in_less_true_time() {
        let c = DeviceClock::new("c", &params(2.0, 100.0, 0.0), 1).unwrap();
        // 1 s of device time at +100 ppm lasts 1/1.0001 true seconds.
        assert!((c.true_interval_s(1.0) - 0.999_900_009_999).abs() < 1e-12);
        assert!((c.device_time_s(12.0) - 10.001).abs() < 1e-12);
    }

    #[test]
    fn jitter_has_the_configured_rms_and_is_reproducible() {
        let p = params(0.0, 0.0, 1e-4);
        let draw = |seed| {
            let mut c = DeviceClock::new("c", &p, seed).unwrap();
            (0..20_000)
                .map(|k| c.event_true_s(5.0, k as f64 * 0.01) - 5.0 - k as f64 * 0.01)
                .collect::<Vec<f64>>()
        };
        let a = draw(7);
        assert_eq!(a, draw(7));
        assert_ne!(a, draw(8));
        let rms = (a.iter().map(|e| e * e).sum::<f64>() / a.len() as f64).sqrt();
        // Standard error of an rms estimate from 20000 samples is 0.5 %.
        assert!((rms / 1e-4 - 1.0).abs() < 0.03, "rms {rms}");
    }

    #[test]
    fn a_stopped_clock_is_rejected() {
        assert!(DeviceClock::new("c", &params(0.0, -1e6, 0.0), 1).is_err());
        assert!(DeviceClock::new("c", &params(0.0, 0.0, -1.0), 1).is_err());
    }

    #[test]
    fn sleep_until_waits_for_true_time_and_honours_abort() {
        let clock = BenchClock::start(50.0);
        let stop = AtomicBool::new(false);
        assert_eq!(clock.sleep_until(1.0, &stop, || false), Ok(()));
        // 1 true second at 50x is 20 ms of wall time.
        assert!(clock.now_s() >= 1.0);
        assert_eq!(
            clock.sleep_until(1e9, &stop, || true),
            Err(Interrupted::Abort)
        );
        stop.store(true, Ordering::Relaxed);
        assert_eq!(
            clock.sleep_until(1e9, &stop, || false),
            Err(Interrupted::Shutdown)
        );
    }
}
