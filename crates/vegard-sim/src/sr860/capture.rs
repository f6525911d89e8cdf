//! The SR860's capture buffer: X, Y, R and/or theta recorded at a fixed
//! rate (or one sample per trigger) into a buffer of `CAPTURELEN` kB of
//! little-endian float32.
//!
//! Owns: the capture configuration (`CAPTURELEN`, `CAPTURECFG`,
//! `CAPTURERATE`), the acquisition state (`CAPTURESTART`/`CAPTURESTOP`,
//! `TRIG`) and the recorded values. The lock-in feeds it the outputs of
//! its demodulator at every demodulator sample ([`Capture::record_until`]):
//! between two demodulator samples (at least 1 ms of true time apart, see
//! `demod`) the recorded value is held, so a capture faster than the
//! demodulator's grid repeats values rather than inventing new ones.

use crate::ieee488::{ESR_CME, ESR_EXE};

/// Fastest capture rate, Hz (`CAPTURERATE 0` at the shortest time
/// constants).
pub(crate) const RATE_MAX_HZ: f64 = 1.25e6;
/// Largest `CAPTURERATE` divider exponent: rate = max / 2^n, n = 0..=20.
pub(crate) const RATE_N_MAX: u8 = 20;
/// Buffer length limits, kB (`CAPTURELEN`; odd values round up to even).
const LEN_MIN_KB: u32 = 1;
const LEN_MAX_KB: u32 = 4096;
/// Largest block `CAPTUREGET?` transfers, kB.
#[cfg_attr(not(test), allow(dead_code))]
const GET_MAX_KB: u32 = 64;

/// Bits of `CAPTURESTAT?`.
const STAT_RUNNING: u8 = 1 << 0;
const STAT_TRIGGERED: u8 = 1 << 1;
const STAT_WRAPPED: u8 = 1 << 2;

/// When a started capture records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TriggerMode {
    /// At once (`IMMediate`).
    Immediate,
    /// At the rate, from the first trigger on (`TRIGstart`).
    Start,
    /// One sample per trigger (`SAMPpertrig`).
    PerSample,
}

/// The four outputs a capture can record (V rms, V rms, V rms, degrees).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Outputs {
    pub x_V: f64,
    pub y_V: f64,
    pub r_V: f64,
    pub theta_deg: f64,
}

#[derive(Debug, Clone)]
pub(crate) struct Capture {
    len_kB: u32,
    /// 0 X, 1 X and Y, 2 R and theta, 3 X, Y, R and theta.
    cfg: u8,
    /// Rate = max rate / 2^rate_n.
    rate_n: u8,
    /// Max rate at the time constant of the start (the rate is fixed
    /// while recording).
    running_rate_Hz: f64,
    continuous: bool,
    trigger: TriggerMode,
    /// Started and not stopped (waiting for a trigger or recording).
    enabled: bool,
    status: u8,
    /// The buffer, `len_kB * 256` floats.
    data: Vec<f32>,
    /// Samples written since the start (beyond the capacity: wrapped).
    written: u64,
    /// Next capture instant, true s (rate-timed modes).
    next_s: f64,
}

impl Default for Capture {
    /// Power-on: 256 kB, X and Y, full rate, stopped.
    fn default() -> Self {
        Capture {
            len_kB: 256,
            cfg: 1,
            rate_n: 0,
            running_rate_Hz: 0.0,
            continuous: false,
            trigger: TriggerMode::Immediate,
            enabled: false,
            status: 0,
            data: Vec::new(),
            written: 0,
            next_s: 0.0,
        }
    }
}

/// Maximum capture rate at time constant `tc_s`, Hz: 1.25 MHz / 2^n with
/// the smallest n >= 0 that leaves at most 8 samples per time constant
/// (`1.25 MHz / 2^n <= 8 / tc`), n at most 20. The SR860 limits the rate
/// by the time constant in steps of 2 this way; the exact table of the
/// instrument was not available, so the emulator's limit is this rule.
pub(crate) fn rate_max_Hz(tc_s: f64) -> f64 {
    let ratio = RATE_MAX_HZ * tc_s / 8.0;
    let n = if ratio <= 1.0 {
        0
    } else {
        (ratio.log2().ceil() as i32).clamp(0, i32::from(RATE_N_MAX))
    };
    RATE_MAX_HZ / f64::from(1u32 << n)
}

impl Capture {
    /// Values per sample of configuration `cfg`.
    fn values_per_sample(cfg: u8) -> usize {
        match cfg {
            0 => 1,
            1 | 2 => 2,
            _ => 4,
        }
    }

    fn capacity_floats(&self) -> usize {
        self.len_kB as usize * 1024 / 4
    }

    fn capacity_samples(&self) -> u64 {
        (self.capacity_floats() / Self::values_per_sample(self.cfg)) as u64
    }

    /// Whether the capture is recording (or waiting for a trigger): the
    /// configuration is locked meanwhile.
    fn busy(&self) -> Result<(), u8> {
        if self.enabled { Err(ESR_EXE) } else { Ok(()) }
    }

    pub(crate) fn len_kB(&self) -> u32 {
        self.len_kB
    }

    /// `CAPTURELEN n`: 1..=4096 kB, odd rounded up. Resets the capture.
    pub(crate) fn set_len_kB(&mut self, n: f64) -> Result<(), u8> {
        self.busy()?;
        if n.fract() != 0.0 {
            return Err(ESR_CME);
        }
        if !(f64::from(LEN_MIN_KB)..=f64::from(LEN_MAX_KB)).contains(&n) {
            return Err(ESR_EXE);
        }
        let n = n as u32;
        self.len_kB = n + n % 2;
        self.clear();
        Ok(())
    }

    pub(crate) fn cfg(&self) -> u8 {
        self.cfg
    }

    /// `CAPTURECFG i`: 0..=3 or `X`, `XY`, `RT`, `XYRT`. Resets the capture.
    pub(crate) fn set_cfg(&mut self, arg: &str) -> Result<(), u8> {
        self.busy()?;
        let i = match arg.to_ascii_uppercase().as_str() {
            "X" => 0,
            "XY" => 1,
            "RT" => 2,
            "XYRT" => 3,
            other => {
                let v: f64 = other.parse().map_err(|_| ESR_CME)?;
                if v.fract() != 0.0 {
                    return Err(ESR_CME);
                }
                if !(0.0..=3.0).contains(&v) {
                    return Err(ESR_EXE);
                }
                v as u8
            }
        };
        self.cfg = i;
        self.clear();
        Ok(())
    }

    /// `CAPTURERATE?`: the rate, Hz, at the present maximum.
    pub(crate) fn rate_Hz(&self, rate_max_Hz: f64) -> f64 {
        rate_max_Hz / f64::from(1u32 << self.rate_n)
    }

    /// `CAPTURERATE n`: divider exponent 0..=20.
    pub(crate) fn set_rate_n(&mut self, n: f64) -> Result<(), u8> {
        self.busy()?;
        if n.fract() != 0.0 {
            return Err(ESR_CME);
        }
        if !(0.0..=f64::from(RATE_N_MAX)).contains(&n) {
            return Err(ESR_EXE);
        }
        self.rate_n = n as u8;
        Ok(())
    }

    fn clear(&mut self) {
        self.data.clear();
        self.written = 0;
        self.status = 0;
    }

    /// `CAPTURESTART mode, trigger` at true instant `now_s` with maximum
    /// rate `rate_max_Hz`: mode `ONEshot`/`CONTinuous` (0/1), trigger
    /// `IMMediate`/`TRIGstart`/`SAMPpertrig` (0/1/2).
    pub(crate) fn start(
        &mut self,
        args: &[String],
        now_s: f64,
        rate_max_Hz: f64,
    ) -> Result<(), u8> {
        if args.len() != 2 {
            return Err(ESR_CME);
        }
        let continuous = mnemonic(&args[0], &[("ONE", "ONESHOT"), ("CONT", "CONTINUOUS")])? == 1;
        let trigger = match mnemonic(
            &args[1],
            &[
                ("IMM", "IMMEDIATE"),
                ("TRIG", "TRIGSTART"),
                ("SAMP", "SAMPPERTRIG"),
            ],
        )? {
            0 => TriggerMode::Immediate,
            1 => TriggerMode::Start,
            _ => TriggerMode::PerSample,
        };
        self.busy()?;
        self.clear();
        self.data = vec![0.0; self.capacity_floats()];
        self.continuous = continuous;
        self.trigger = trigger;
        self.enabled = true;
        self.running_rate_Hz = self.rate_Hz(rate_max_Hz);
        if trigger == TriggerMode::Immediate {
            self.status = STAT_RUNNING | STAT_TRIGGERED;
            self.next_s = now_s;
        }
        Ok(())
    }

    /// `CAPTURESTOP`.
    pub(crate) fn stop(&mut self) {
        self.enabled = false;
        self.status &= !STAT_RUNNING;
    }

    /// `TRIG` at `now_s`: starts a `TRIGstart` capture, or records one
    /// sample of a `SAMPpertrig` capture (`now` = the outputs now).
    pub(crate) fn trigger(&mut self, now_s: f64, now: Outputs) {
        if !self.enabled {
            return;
        }
        match self.trigger {
            TriggerMode::Immediate => {}
            TriggerMode::Start => {
                if self.status & STAT_TRIGGERED == 0 {
                    self.status |= STAT_RUNNING | STAT_TRIGGERED;
                    self.next_s = now_s;
                }
            }
            TriggerMode::PerSample => {
                self.status |= STAT_RUNNING | STAT_TRIGGERED;
                self.push(now);
            }
        }
    }

    /// Records, at the capture rate, every capture instant up to `t_s`
    /// with the outputs `now` (held since the previous call).
    pub(crate) fn record_until(&mut self, t_s: f64, now: Outputs) {
        let timed = matches!(self.trigger, TriggerMode::Immediate | TriggerMode::Start);
        if !self.enabled || !timed || self.status & STAT_RUNNING == 0 || self.next_s > t_s {
            return;
        }
        let dt_s = 1.0 / self.running_rate_Hz;
        let due = ((t_s - self.next_s) / dt_s).floor() as u64 + 1;
        let capacity = self.capacity_samples();
        let mut todo = due;
        if self.continuous && due > capacity {
            // Everything older than one buffer would be overwritten by
            // these same held values: skip straight to the last buffer.
            self.written += due - capacity;
            self.status |= STAT_WRAPPED;
            todo = capacity;
        }
        for _ in 0..todo {
            if !self.enabled {
                break;
            }
            self.push(now);
        }
        self.next_s += due as f64 * dt_s;
    }

    fn push(&mut self, o: Outputs) {
        let per = Self::values_per_sample(self.cfg);
        let capacity = self.capacity_samples();
        if capacity == 0 || self.data.len() < self.capacity_floats() {
            return;
        }
        let slot = (self.written % capacity) as usize * per;
        let values = [o.x_V, o.y_V, o.r_V, o.theta_deg];
        let picked: &[usize] = match self.cfg {
            0 => &[0],
            1 => &[0, 1],
            2 => &[2, 3],
            _ => &[0, 1, 2, 3],
        };
        for (k, &i) in picked.iter().enumerate() {
            self.data[slot + k] = values[i] as f32;
        }
        self.written += 1;
        if self.written >= capacity {
            self.status |= STAT_WRAPPED;
            if !self.continuous {
                self.stop();
            }
        }
    }

    /// `CAPTURESTAT?`: bit 0 recording, bit 1 triggered, bit 2 wrapped
    /// (one-shot full, or continuous overwriting).
    pub(crate) fn status(&self) -> u8 {
        self.status
    }

    /// `CAPTUREBYTES?`: bytes of data captured so far (at most the buffer).
    pub(crate) fn bytes(&self) -> u64 {
        let per = Self::values_per_sample(self.cfg) as u64;
        self.written.min(self.capacity_samples()) * per * 4
    }

    /// `CAPTUREPROG?`: kB captured, in whole 2 kB blocks; only with the
    /// capture stopped.
    pub(crate) fn progress_kB(&self) -> Result<u64, u8> {
        self.busy()?;
        Ok(self.bytes().div_ceil(2048) * 2)
    }

    /// `CAPTUREVAL? n`: sample n (0 = the oldest), its values in the order
    /// of `CAPTURECFG`; zero beyond what was captured.
    pub(crate) fn value(&self, n: f64) -> Result<Vec<f64>, u8> {
        if n.fract() != 0.0 {
            return Err(ESR_CME);
        }
        let capacity = self.capacity_samples();
        if n < 0.0 || n >= capacity as f64 {
            return Err(ESR_EXE);
        }
        let per = Self::values_per_sample(self.cfg);
        let n = n as u64;
        let oldest = if self.written > capacity {
            self.written % capacity
        } else {
            0
        };
        let slot = ((oldest + n) % capacity) as usize * per;
        Ok((0..per)
            .map(|k| self.data.get(slot + k).copied().map_or(0.0, f64::from))
            .collect())
    }

    /// `CAPTUREGET? i, j`: `j` kB (at most 64) from offset `i` kB, wrapping
    /// at the buffer's end, as little-endian float32 bytes; only with the
    /// capture stopped. Not on the wire yet: the line server carries text
    /// replies only, and this reply is an IEEE 488.2 binary block.
    #[cfg_attr(not(test), allow(dead_code))]
    pub(crate) fn block(&self, offset_kB: f64, len_kB: f64) -> Result<Vec<u8>, u8> {
        if offset_kB.fract() != 0.0 || len_kB.fract() != 0.0 {
            return Err(ESR_CME);
        }
        self.busy()?;
        let total = f64::from(self.len_kB);
        if !(0.0..total).contains(&offset_kB) || !(1.0..=f64::from(GET_MAX_KB)).contains(&len_kB) {
            return Err(ESR_EXE);
        }
        let floats = self.capacity_floats();
        let first = offset_kB as usize * 256;
        let n = len_kB as usize * 256;
        let mut out = Vec::with_capacity(n * 4);
        for k in 0..n {
            let v = self.data.get((first + k) % floats).copied().unwrap_or(0.0);
            out.extend_from_slice(&v.to_le_bytes());
        }
        Ok(out)
    }
}

/// Index of `arg` in `names` (short or long form, any case, or its number).
fn mnemonic(arg: &str, names: &[(&str, &str)]) -> Result<usize, u8> {
    let upper = arg.trim().to_ascii_uppercase();
    if let Some(i) = names
        .iter()
        .position(|(short, long)| upper == *short || upper == *long)
    {
        return Ok(i);
    }
    let v: f64 = upper.parse().map_err(|_| ESR_CME)?;
    if v.fract() != 0.0 {
        return Err(ESR_CME);
    }
    if v < 0.0 || v >= names.len() as f64 {
        return Err(ESR_EXE);
    }
    Ok(v as usize)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn o(v: f64) -> Outputs {
        Outputs {
            x_V: v,
            y_V: -v,
            r_V: v.abs(),
            theta_deg: 45.0,
        }
    }

    fn args(a: &str, b: &str) -> Vec<String> {
        vec![a.to_string(), b.to_string()]
    }

    #[test]
    fn the_maximum_rate_halves_with_the_time_constant() {
        assert_eq!(rate_max_Hz(1e-6), RATE_MAX_HZ);
        // 100 ms: at most 80 Hz -> 1.25 MHz / 2^14 = 76.29 Hz.
        assert!((rate_max_Hz(0.1) - RATE_MAX_HZ / 16384.0).abs() < 1e-9);
        assert!(rate_max_Hz(0.1) <= 8.0 / 0.1);
        assert!(rate_max_Hz(0.1) * 2.0 > 8.0 / 0.1);
        assert_eq!(rate_max_Hz(3e4), RATE_MAX_HZ / f64::from(1u32 << 20));
    }

    #[test]
    fn a_one_shot_capture_fills_the_buffer_and_stops() {
        let mut c = Capture::default();
        c.set_len_kB(2.0).unwrap();
        c.set_cfg("XY").unwrap();
        c.set_rate_n(0.0).unwrap();
        c.start(&args("ONE", "IMM"), 0.0, 1000.0).unwrap();
        assert_eq!(c.status(), 3);
        // 2 kB = 512 floats = 256 XY samples; 0.1 s at 1 kHz = 101 due.
        c.record_until(0.1, o(1.0));
        assert_eq!(c.bytes(), 101 * 8);
        assert_eq!(c.set_len_kB(4.0), Err(ESR_EXE), "locked while running");
        c.record_until(1.0, o(2.0));
        assert_eq!(c.bytes(), 2048);
        assert_eq!(c.status(), STAT_TRIGGERED | STAT_WRAPPED);
        assert_eq!(c.value(0.0).unwrap(), vec![1.0, -1.0]);
        assert_eq!(c.value(255.0).unwrap(), vec![2.0, -2.0]);
        assert_eq!(c.value(256.0), Err(ESR_EXE));
        assert_eq!(c.progress_kB(), Ok(2));
        let block = c.block(0.0, 1.0).unwrap();
        assert_eq!(block.len(), 1024);
        assert_eq!(&block[..4], &1.0f32.to_le_bytes());
    }

    #[test]
    fn triggers_start_or_sample_a_capture() {
        let mut c = Capture::default();
        c.set_cfg("0").unwrap();
        c.start(&args("CONT", "SAMP"), 0.0, 1000.0).unwrap();
        assert_eq!(c.status(), 0, "waiting for a trigger");
        c.record_until(5.0, o(1.0));
        assert_eq!(c.bytes(), 0);
        c.trigger(5.0, o(3.0));
        c.trigger(6.0, o(4.0));
        assert_eq!(c.bytes(), 8);
        assert_eq!(c.value(1.0).unwrap(), vec![4.0]);
        assert_eq!(c.progress_kB(), Err(ESR_EXE), "only when stopped");
        c.stop();
        assert_eq!(c.progress_kB(), Ok(2));
        assert_eq!(c.start(&args("TWICE", "IMM"), 0.0, 1.0), Err(ESR_CME));
        assert_eq!(c.start(&args("2", "IMM"), 0.0, 1.0), Err(ESR_EXE));
    }
}
