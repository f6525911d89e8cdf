//! STAND-IN, THROWN AWAY AT MERGE: a minimal implementation of the contract's
//! World API (stage temperature, heater, lock-in sine out) so the SR860 and
//! Lake Shore 336 emulators compile and run in the sim-emu worktree before
//! the real implementation in world.rs (sim-core helper) exists.
//!
//! It may not add fields to `World`, so its state lives in a process-wide
//! map keyed by the world's address (stable: the world sits inside the
//! bench's `Arc<Shared>` mutex). An entry whose world clock ran backwards
//! (a new bench reusing a freed address) is reset. The stage is a
//! first-order lag (tau 20 s) towards the setpoint (heater range > 0) or
//! towards 298.15 K (range 0); the sine does not reach the lever here.

use crate::journal::lock;
use crate::world::World;
use std::collections::HashMap;
use std::f64::consts::TAU;
use std::sync::{Mutex, OnceLock};

/// Ambient the stand-in stage relaxes to, K.
const STUB_AMBIENT_K: f64 = 298.15;
/// Time constant of the stand-in stage, s.
const STUB_TAU_S: f64 = 20.0;

#[derive(Debug, Clone)]
struct StubState {
    last_now_s: f64,
    T_K: f64,
    T_at_s: f64,
    setpoint_K: f64,
    range: u8,
    /// Sine segments: (start true s, phase at start rad, f Hz, amplitude V peak).
    sine: Vec<(f64, f64, f64, f64)>,
}

impl StubState {
    fn new() -> Self {
        StubState {
            last_now_s: 0.0,
            T_K: STUB_AMBIENT_K,
            T_at_s: 0.0,
            setpoint_K: STUB_AMBIENT_K,
            range: 0,
            sine: vec![(0.0, 0.0, 0.0, 0.0)],
        }
    }

    fn advance(&mut self, now_s: f64) {
        let dt = now_s - self.T_at_s;
        if dt > 0.0 {
            let target = if self.range > 0 {
                self.setpoint_K
            } else {
                STUB_AMBIENT_K
            };
            self.T_K = target + (self.T_K - target) * (-dt / STUB_TAU_S).exp();
            self.T_at_s = now_s;
        }
    }

    fn phase_rad(&self, t_s: f64) -> f64 {
        let seg = self
            .sine
            .iter()
            .rev()
            .find(|s| s.0 <= t_s)
            .or(self.sine.first())
            .copied()
            .unwrap_or((0.0, 0.0, 0.0, 0.0));
        seg.1 + TAU * seg.2 * (t_s - seg.0)
    }
}

fn with_state<R>(world: &World, f: impl FnOnce(&mut StubState, f64) -> R) -> R {
    static STATES: OnceLock<Mutex<HashMap<usize, StubState>>> = OnceLock::new();
    let key = world as *const World as usize;
    let now = world.now_s();
    let mut map = lock(STATES.get_or_init(|| Mutex::new(HashMap::new())));
    let state = map.entry(key).or_insert_with(StubState::new);
    if now < state.last_now_s {
        *state = StubState::new();
    }
    state.last_now_s = now;
    f(state, now)
}

impl World {
    /// STAND-IN. True stage temperature now, K.
    pub(crate) fn stage_temperature_K(&mut self) -> f64 {
        with_state(self, |s, now| {
            s.advance(now);
            s.T_K
        })
    }

    /// STAND-IN.
    pub(crate) fn stage_setpoint_K(&self) -> f64 {
        with_state(self, |s, _| s.setpoint_K)
    }

    /// STAND-IN.
    pub(crate) fn set_stage_setpoint_K(&mut self, setpoint_K: f64) {
        with_state(self, |s, now| {
            s.advance(now);
            s.setpoint_K = setpoint_K;
        });
    }

    /// STAND-IN.
    pub(crate) fn stage_heater_range(&self) -> u8 {
        with_state(self, |s, _| s.range)
    }

    /// STAND-IN.
    pub(crate) fn set_stage_heater_range(&mut self, range: u8) {
        with_state(self, |s, now| {
            s.advance(now);
            s.range = range;
        });
    }

    /// STAND-IN. Heater output, % of the range: proportional to the distance
    /// above ambient, 0 with the heater off.
    pub(crate) fn stage_heater_percent(&mut self) -> f64 {
        with_state(self, |s, now| {
            s.advance(now);
            if s.range == 0 {
                0.0
            } else {
                ((s.setpoint_K - STUB_AMBIENT_K) * 2.0).clamp(0.0, 100.0)
            }
        })
    }

    /// STAND-IN. Phase stays continuous across changes.
    pub(crate) fn set_ext_sine_now(&mut self, f_Hz: f64, amplitude_V_peak: f64) {
        with_state(self, |s, now| {
            let phase = s.phase_rad(now).rem_euclid(TAU);
            s.sine.push((now, phase, f_Hz, amplitude_V_peak));
            if s.sine.len() > 64 {
                s.sine.remove(0);
            }
        });
    }

    /// STAND-IN.
    pub(crate) fn ext_sine_phase_rad(&self, t_true_s: f64) -> f64 {
        with_state(self, |s, _| s.phase_rad(t_true_s))
    }
}
