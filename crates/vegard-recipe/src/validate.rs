//! Physical validation of recipes and bench configs: values that parse but
//! cannot be run (negative scan rates, vertices outside the safety window,
//! more samples than the digitizer holds, unknown drivers, ...). Each error
//! points at the key responsible for it, so nothing reaches the hardware
//! before the file makes sense.

use crate::doc::{Doc, Seg, SweepValueAt};
use crate::drivers::{DriverLimits, MIN_SAMPLE_INTERVAL_S, Role, driver, driver_names};
use crate::error::{RecipeError, Source};
use crate::resource::Resource;
use crate::schema::{
    BenchConfig, ClockParams, ESM_MIN_SAMPLES_PER_PERIOD, EsmSweepStep, MAX_ACTIVATION_ENERGY_EV,
    Recipe, SimParams, Step, SweepStep, ZERO_C_IN_K,
};
use vegard_core::sync_blocks::{BlockPlan, plan_blocks};

/// The digitizer runs on its own clock and must not stop before the
/// potentiostat's loop ends, so it is armed for this factor more samples
/// than the nominal step duration needs.
pub const SAMPLE_COUNT_MARGIN: f64 = 1.1;
/// Fastest the virtual bench may run (simulated s per wall s): above this the
/// emulators cannot deliver samples on time and the run stops being a
/// faithful rehearsal of the real one.
pub const MAX_TIME_ACCELERATION: f64 = 1000.0;
/// Fewest finite-difference nodes that still resolve a diffusion profile.
pub const MIN_SIM_NODES: usize = 10;
/// Longest run-folder slug; the folder name also carries a UTC timestamp.
pub const MAX_SLUG_LEN: usize = 64;
/// Most finite-difference nodes across the virtual film (`[sim.film]
/// nodes`): 1000. The profile is resolved at 200 (the model's own
/// semi-infinite tests use 200), and the bench integrates every node at
/// every sample in real time; the node arrays are allocated from this
/// number, so an unbounded one is an allocation of any size.
pub const MAX_SIM_NODES: usize = 1000;
/// Most frequencies of one EIS step or ESM sweep (`points_per_decade` x
/// decades + 1, or the length of an explicit `freq_Hz` list): 10 000. A
/// dense real spectrum is 10 points per decade over 10 decades (101); the
/// list is built from this count before the step's duration can be
/// checked, so `points_per_decade = 4000000000` would otherwise allocate
/// 34 GB.
pub const MAX_SWEEP_POINTS: u32 = 10_000;
/// Most steps of the expanded plan (a temperature sweep counts a
/// temperature step plus its nested steps per temperature, a parameter
/// sweep its nested steps per value, nested sweeps multiply): 10 000. The
/// 2 h 46 min campaign is 21; the plan, run.toml's `[[steps]]` and the
/// progress display hold one entry each, and a sweep multiplies, so a 1 MB
/// recipe could otherwise expand to billions of steps. Checked before the
/// per-value checks of parameter sweeps, which visit every planned step.
pub const MAX_PLAN_STEPS: usize = 10_000;
/// Highest potentiostat trigger output (`trigger_gpio_pin`): 15, the last
/// bit of the 16-bit GPIO mask MethodSCRIPT's `set_gpio` writes.
pub const MAX_TRIGGER_GPIO_PIN: u8 = 15;

/// Longest instrument reply timeout (`timeout_s` of every instrument in the
/// bench config), s: 1 hour. A reply takes milliseconds to seconds (an EIS
/// point at the lowest frequency, a `*OPC?` after a long operation); an
/// instrument silent for an hour is gone, and waiting longer only keeps the
/// cell on with nobody watching. Larger values also overflow the host's
/// monotonic clock arithmetic (`1e19` s is past `Instant`'s range).
pub const MAX_TIMEOUT_S: f64 = 3600.0;
/// Longest time a temperature step or sweep may wait for the stage
/// (`timeout_s`, and `hold_s` below it), s: 1 day. The slowest stages
/// (cryostats, large thermal masses) settle in hours; a stage not stable
/// after a day never will be, and the run should stop with the cell off.
pub const MAX_STAGE_WAIT_S: f64 = 86_400.0;
/// Longest single step, s: 7 days (`duration_s` of `ocp` and `wait`, each
/// `hold_s` of `steps`, and the derived duration of every step: a CV's
/// cycles at its scan rate, an LSV, an EIS or ESM sweep's frequencies).
/// Days-long holds are real (slow intercalation, PITT at low rates); a week
/// is past any of them, and a larger number is much more likely a unit
/// mistake (ms typed as s, a scan rate in mV/s typed as V/s) than a plan.
pub const MAX_STEP_DURATION_S: f64 = 7.0 * 86_400.0;
/// Longest sample interval (potentiostat `sample_interval_s`, the
/// digitizer's `sample_interval_s` / `deflection_sample_interval_s`), s:
/// 1 hour, the 34465A's longest `SAMP:TIM` and far slower than any
/// electrochemical logging needs.
pub const MAX_SAMPLE_INTERVAL_S: f64 = 3600.0;
/// Longest hold at the dc potential before an EIS spectrum
/// (`equilibrate_s`), s: 1 day. Relaxing a film takes minutes to hours;
/// longer belongs in its own step.
pub const MAX_EQUILIBRATE_S: f64 = 86_400.0;
/// Largest delay between the potentiostat's trigger edge and its first
/// sample (`trigger_latency_s`), s: 1 s. Measured latencies are µs to ms;
/// a second is a wiring or configuration error, not a latency.
pub const MAX_TRIGGER_LATENCY_S: f64 = 1.0;
/// Largest virtual-bench clock offset (`[sim.clocks.*] offset_s`,
/// magnitude), s: 1 day, more than any real instrument's time since power-on
/// matters to the alignment.
pub const MAX_SIM_CLOCK_OFFSET_S: f64 = 86_400.0;
/// Largest virtual-bench sample jitter (`[sim.clocks.*] jitter_s`), s: 1 s;
/// real oscillators jitter by ns to µs.
pub const MAX_SIM_JITTER_S: f64 = 1.0;
/// Latest simulated time a virtual-bench fault may be scheduled at
/// (`[sim.faults] *_after_s`), s: 30 days, longer than any run.
pub const MAX_SIM_FAULT_AFTER_S: f64 = 30.0 * 86_400.0;
/// Slowest virtual stage (`[sim.thermal] tau_s`), s: 1 day, so a sim
/// temperature step can settle within [`MAX_STAGE_WAIT_S`] at all.
pub const MAX_SIM_THERMAL_TAU_S: f64 = 86_400.0;

/// Reasons given in the messages of the bounds above.
const TIMEOUT_WHY: &str = "an instrument reply timeout; longer only hangs the run";
const STEP_WHY: &str = "the longest step; a larger number is likely a unit mistake";
const SAMPLE_WHY: &str = "the longest sample interval";

/// The [`MAX_SWEEP_POINTS`] bound in messages.
fn sweep_points_bound() -> String {
    format!(
        "such that the sweep has <= {MAX_SWEEP_POINTS} frequencies (a dense real spectrum \
         has ~100)"
    )
}

/// A bound in words for messages: `3600 s (1 h)`, `604800 s (7 days)`.
fn duration_bound(max_s: f64) -> String {
    let human = if max_s >= 86_400.0 && (max_s / 86_400.0).fract() == 0.0 {
        let d = max_s / 86_400.0;
        format!(" ({d} day{})", if d == 1.0 { "" } else { "s" })
    } else if max_s >= 3600.0 && (max_s / 3600.0).fract() == 0.0 {
        format!(" ({} h)", max_s / 3600.0)
    } else {
        String::new()
    };
    format!("{} s{human}", num(max_s))
}

/// Folder-safe form of a run name: ASCII lowercase letters, digits and single
/// `-` between words (every other character separates words), at most
/// [`MAX_SLUG_LEN`] characters. `"LiMn2O4 CV #3"` -> `"limn2o4-cv-3"`. Empty
/// when the name has no ASCII letter or digit.
pub fn slug(name: &str) -> String {
    let mut out = String::new();
    let mut pending_dash = false;
    for c in name.chars() {
        if c.is_ascii_alphanumeric() {
            if pending_dash && !out.is_empty() {
                out.push('-');
            }
            pending_dash = false;
            out.push(c.to_ascii_lowercase());
        } else {
            pending_dash = true;
        }
    }
    out.truncate(MAX_SLUG_LEN);
    while out.ends_with('-') {
        out.pop();
    }
    out
}

/// Checks of a recipe against the bench it will run on: the instruments the
/// steps need (lock-in for `esm_sweep`, temperature stage for `temperature`
/// and `sweep`), the potentiostat's current range and sampling speed, and
/// the digitizer's buffer at the recipe's deflection sample interval (the
/// `[run] deflection_sample_interval_s` override, else the bench's). `src` is
/// the recipe's source (see [`Source`]); errors point into it, because the
/// recipe step is what the user changes to fix them.
pub fn validate_with_bench(
    recipe: &Recipe,
    src: &Source,
    bench: &BenchConfig,
) -> Result<(), RecipeError> {
    let doc = Doc::parse(&src.file, &src.text)?;
    let pot = &bench.instruments.potentiostat;

    if recipe.steps.iter().any(Step::cell_on)
        && recipe.limits.current_max_A > pot.current_range_max_A
    {
        return Err(doc.err(
            &[Seg::Key("limits"), Seg::Key("current_max_A")],
            format!(
                "current_max_A = {} A is above the potentiostat's largest current range \
                 (current_range_max_A = {} A): the limit could not be measured, lower it",
                num(recipe.limits.current_max_A),
                num(pot.current_range_max_A)
            ),
        ));
    }

    if let (Some(interval_s), Some(spec)) = (
        recipe.run.deflection_sample_interval_s,
        driver(Role::Deflection, &bench.instruments.deflection.driver),
    ) && let Err(why) = deflection_interval_on(&spec.limits, interval_s)
    {
        return Err(doc.err(
            &[Seg::Key("run"), Seg::Key("deflection_sample_interval_s")],
            why,
        ));
    }

    let on_bench = BenchStepChecker {
        doc: &doc,
        bench,
        recipe,
    };
    for (i, step) in recipe.steps.iter().enumerate() {
        walk(
            &doc,
            step,
            &[Seg::Key("step"), Seg::Idx(i)],
            &mut |s, base| on_bench.step(s, base),
        )?;
    }
    Ok(())
}

/// A check of one step at its path, for [`walk`].
type StepCheck<'f> = dyn FnMut(&Step, &[Seg<'static>]) -> Result<(), RecipeError> + 'f;

/// Call `check` on `step` at `base` and, in a sweep, on every nested step,
/// recursively. A temperature sweep's nested steps are the same at every
/// temperature, so they are checked once; a parameter sweep's are checked
/// once per value, with the value substituted (as [`Recipe::plan`] does)
/// and in force for [`Doc::err`], so a swept value meets every check a
/// literal one does and its errors point at the sweep's `values` entry.
/// [`check_plan_size`] bounds the work first.
fn walk(
    doc: &Doc<'_>,
    step: &Step,
    base: &[Seg<'static>],
    check: &mut StepCheck<'_>,
) -> Result<(), RecipeError> {
    check(step, base)?;
    match step {
        Step::Sweep(SweepStep::Temperature(sweep)) => {
            for (j, nested) in sweep.steps.iter().enumerate() {
                walk(doc, nested, &elem_path(base, "step", j), check)?;
            }
        }
        Step::Sweep(SweepStep::Parameter(sweep)) => {
            for (index, &value) in sweep.values.iter().enumerate() {
                let at = SweepValueAt {
                    sweep: base.to_vec(),
                    parameter: sweep.parameter,
                    index,
                    value,
                };
                doc.with_sweep_value(at, || {
                    for (j, nested) in sweep.steps.iter().enumerate() {
                        let mut nested = nested.clone();
                        nested.set_parameter(sweep.parameter, value);
                        walk(doc, &nested, &elem_path(base, "step", j), check)?;
                    }
                    Ok(())
                })?;
            }
        }
        _ => {}
    }
    Ok(())
}

/// Checks of one step against the bench.
struct BenchStepChecker<'a, 's> {
    doc: &'a Doc<'s>,
    bench: &'a BenchConfig,
    recipe: &'a Recipe,
}

impl BenchStepChecker<'_, '_> {
    fn step(&self, step: &Step, base: &[Seg<'static>]) -> Result<(), RecipeError> {
        let doc = self.doc;
        let at = |key| key_path(base, key);
        let kind = step.kind_name();

        if matches!(
            step,
            Step::Temperature(_) | Step::Sweep(SweepStep::Temperature(_))
        ) && self.bench.instruments.temperature.is_none()
        {
            return Err(doc.err(
                &at("kind"),
                format!(
                    "{} ({kind}) needs a temperature stage, and the bench config has no \
                     [instruments.temperature]: add the stage's controller (driver \
                     \"ls336\") or run on a bench that has one",
                    step_name(base)
                ),
            ));
        }
        if let Step::EsmSweep(s) = step {
            self.esm_on_lockin(s, base)?;
        }

        let (interval_s, interval_key) = match step {
            Step::Ocp(s) => (s.sample_interval_s, "sample_interval_s"),
            Step::Cv(s) => (s.sample_interval_s(), "step_V"),
            Step::Lsv(s) => (s.sample_interval_s(), "step_V"),
            Step::Steps(s) => (s.sample_interval_s, "sample_interval_s"),
            Step::EsmSweep(s) => (
                s.ca_sample_interval_s(),
                if s.sample_interval_s.is_some() {
                    "sample_interval_s"
                } else {
                    esm_freq_key(s)
                },
            ),
            // The device paces EIS points itself; the sweep's nested steps
            // are checked on their own.
            Step::Eis(_) | Step::Wait(_) | Step::Temperature(_) | Step::Sweep(_) => {
                (f64::INFINITY, "")
            }
        };
        let min_interval_s = match driver(
            Role::Potentiostat,
            &self.bench.instruments.potentiostat.driver,
        )
        .map(|d| d.limits)
        {
            Some(DriverLimits::Potentiostat {
                min_sample_interval_s,
            }) => min_sample_interval_s,
            _ => MIN_SAMPLE_INTERVAL_S,
        };
        if interval_s < min_interval_s {
            let what = match step {
                Step::Cv(_) | Step::Lsv(_) => "sample interval step_V / scan_rate_V_per_s",
                Step::EsmSweep(s) if s.sample_interval_s.is_none() => "default CA sample interval",
                _ => "sample_interval_s",
            };
            return Err(doc.err(
                &at(interval_key),
                format!(
                    "{what} = {} s is below the potentiostat's minimum of {} s",
                    num(interval_s),
                    num(min_interval_s)
                ),
            ));
        }

        if !step.records() {
            return Ok(());
        }
        let defl = &self.bench.instruments.deflection;
        let (defl_interval_s, interval_from) = match self.recipe.run.deflection_sample_interval_s {
            Some(s) => (s, "run.deflection_sample_interval_s"),
            None => (
                defl.sample_interval_s,
                "instruments.deflection.sample_interval_s",
            ),
        };
        let count_path = match step {
            Step::Ocp(_) => at("duration_s"),
            Step::Cv(_) => at("cycles"),
            Step::Steps(_) => at("hold_s"),
            Step::Lsv(_) => at("scan_rate_V_per_s"),
            // The lowest frequency dominates the duration.
            Step::Eis(_) => elem_path(base, "freq_Hz", 1),
            Step::EsmSweep(s) => at(esm_freq_key(s)),
            Step::Wait(_) | Step::Temperature(_) | Step::Sweep(_) => at("kind"),
        };
        let duration_s = step.duration_s();
        let acquisition =
            deflection_acquisition(step, defl_interval_s, defl.max_samples).map_err(|why| {
                doc.err(
                    &count_path,
                    format!(
                        "this {kind} step cannot be recorded in digitizer blocks at {} s \
                         ({interval_from}): {why}",
                        num(defl_interval_s)
                    ),
                )
            })?;
        let samples = match acquisition {
            DeflectionAcquisition::Blocks(_) => return Ok(()),
            DeflectionAcquisition::Single { count } => count,
        };
        if samples > defl.max_samples {
            return Err(doc.err(
                &count_path,
                format!(
                    "this {kind} step records {} s: {} s x {} / {} s ({interval_from}) = \
                     {samples} deflection samples, more samples than the instrument buffer \
                     allows (instruments.deflection.max_samples = {}); shorten the step, \
                     split it or set a longer [run] deflection_sample_interval_s",
                    vegard_core::format::sig(duration_s, 5),
                    vegard_core::format::sig(duration_s, 5),
                    num(SAMPLE_COUNT_MARGIN),
                    num(defl_interval_s),
                    defl.max_samples
                ),
            ));
        }
        Ok(())
    }

    /// An ESM sweep needs the lock-in, within its frequency and amplitude range.
    fn esm_on_lockin(&self, s: &EsmSweepStep, base: &[Seg<'static>]) -> Result<(), RecipeError> {
        let doc = self.doc;
        let Some(lockin) = &self.bench.instruments.lockin else {
            return Err(doc.err(
                &key_path(base, "kind"),
                format!(
                    "{} (esm_sweep) needs a lock-in amplifier, and the bench config has no \
                     [instruments.lockin]: the lock-in's sine out drives the potentiostat's \
                     external input to excite the cell; add it (driver \"sr860\") or run on \
                     a bench that has one",
                    step_name(base)
                ),
            ));
        };
        // The bench was validated, so its lock-in driver is in the table.
        let Some(DriverLimits::LockIn {
            model,
            freq_range_Hz: [lo_Hz, hi_Hz],
            max_sine_V_peak,
        }) = driver(Role::LockIn, &lockin.driver).map(|d| d.limits)
        else {
            return Ok(());
        };
        let sine_V_peak = s.amplitude_V / lockin.sine_to_cell_V_per_V;
        if sine_V_peak > max_sine_V_peak {
            return Err(doc.err(
                &key_path(base, "amplitude_V"),
                format!(
                    "amplitude_V = {} V at the cell needs {} V peak of sine out \
                     (instruments.lockin.sine_to_cell_V_per_V = {}), above the lock-in's {} V",
                    num(s.amplitude_V),
                    num(sine_V_peak),
                    num(lockin.sine_to_cell_V_per_V),
                    num(max_sine_V_peak)
                ),
            ));
        }
        for f_Hz in s.frequencies_Hz() {
            if !(lo_Hz..=hi_Hz).contains(&f_Hz) {
                return Err(doc.err(
                    &key_path(base, esm_freq_key(s)),
                    format!(
                        "frequency {} Hz is outside the {model}'s reference range {} to {} Hz",
                        num(f_Hz),
                        num(lo_Hz),
                        num(hi_Hz)
                    ),
                ));
            }
        }
        Ok(())
    }
}

/// The key an ESM sweep's frequencies come from.
fn esm_freq_key(s: &EsmSweepStep) -> &'static str {
    if s.freq_Hz.is_some() {
        "freq_Hz"
    } else {
        "freq_range_Hz"
    }
}

/// Samples the digitizer is armed for to cover a recording step of
/// `duration_s` at `sample_interval_s`: the duration plus
/// [`SAMPLE_COUNT_MARGIN`], rounded up. One function for the check here and
/// for the engine's `SAMP:COUN`, so the two cannot disagree. The 1e-9
/// relative slack keeps float noise (2.0 * 1.1 / 0.01 = 220.00000000000003)
/// from adding a sample.
pub fn deflection_samples(duration_s: f64, sample_interval_s: f64) -> u64 {
    let exact = duration_s * SAMPLE_COUNT_MARGIN / sample_interval_s;
    (exact * (1.0 - 1e-9)).ceil().max(1.0) as u64
}

/// How the digitizer covers one recording step.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum DeflectionAcquisition {
    /// Time-domain techniques: blocks, each started by its own sync edge
    /// from the potentiostat (`TRIG:COUN` = blocks, `SAMP:COUN` = readings
    /// per block), so a step of any length is covered and pinned to the
    /// potentiostat's clock block by block.
    Blocks(BlockPlan),
    /// EIS: one edge, one burst of `count` readings (the loop body runs
    /// once per frequency, so the edge cannot repeat at a fixed period).
    Single { count: u64 },
}

impl DeflectionAcquisition {
    /// `SAMP:COUN`.
    pub fn readings_per_trigger(&self) -> u64 {
        match self {
            DeflectionAcquisition::Blocks(p) => p.readings_per_block,
            DeflectionAcquisition::Single { count } => *count,
        }
    }
    /// `TRIG:COUN`.
    pub fn triggers(&self) -> u64 {
        match self {
            DeflectionAcquisition::Blocks(p) => p.blocks,
            DeflectionAcquisition::Single { .. } => 1,
        }
    }
    /// Potentiostat samples between repeated sync edges, if they repeat.
    pub fn sync_every_samples(&self) -> Option<u64> {
        match self {
            DeflectionAcquisition::Blocks(p) => Some(p.edge_every_samples),
            DeflectionAcquisition::Single { .. } => None,
        }
    }
}

/// The digitizer's acquisition for `step` at `reading_interval_s`, within
/// `max_samples` readings per trigger (the bench's `max_samples`): one
/// function for `vegard validate` and the engine, so the two cannot
/// disagree. The step is covered for its duration plus
/// [`SAMPLE_COUNT_MARGIN`]. `Err` names the limit broken, for people.
pub fn deflection_acquisition(
    step: &Step,
    reading_interval_s: f64,
    max_samples: u64,
) -> Result<DeflectionAcquisition, String> {
    let duration_s = step.duration_s();
    match step.potentiostat_interval_s() {
        Some(pstat_interval_s) => plan_blocks(
            pstat_interval_s,
            reading_interval_s,
            duration_s * SAMPLE_COUNT_MARGIN,
            max_samples,
            vegard_core::keysight_34465a::TRIGGER_COUNT_MAX,
        )
        .map(DeflectionAcquisition::Blocks),
        None => Ok(DeflectionAcquisition::Single {
            count: deflection_samples(duration_s, reading_interval_s),
        }),
    }
}

/// Number formatting for messages: shortest form that reads back exactly
/// (`0.1`, `1.0`, `1e-9`), so the user sees the value they wrote.
fn num(x: f64) -> String {
    format!("{x:?}")
}

/// A derived bound for a message, to 5 significant digits without trailing
/// zeros (`-1.6e-5`, not `-1.6000000000000003e-5`): the reader needs the
/// size, and the offending value itself is still shown exactly with [`num`].
fn bound(x: f64) -> String {
    let s = format!("{x:.4e}");
    match s.split_once('e') {
        Some((mantissa, exp)) if mantissa.contains('.') => {
            let mantissa = mantissa.trim_end_matches('0').trim_end_matches('.');
            format!("{mantissa}e{exp}")
        }
        _ => s,
    }
}

/// Last key of a path: the name the user sees in the file.
fn key_name<'a>(path: &[Seg<'a>]) -> &'a str {
    path.iter()
        .rev()
        .find_map(|s| match s {
            Seg::Key(k) => Some(*k),
            Seg::Idx(_) => None,
        })
        .unwrap_or("value")
}

/// Small helpers that turn a failed numeric check into a positioned error.
struct Checker<'d, 's> {
    doc: &'d Doc<'s>,
}

impl Checker<'_, '_> {
    fn positive(&self, path: &[Seg<'_>], x: f64) -> Result<(), RecipeError> {
        if x.is_finite() && x > 0.0 {
            return Ok(());
        }
        let finite = if x.is_finite() {
            ""
        } else {
            "a finite number "
        };
        Err(self.doc.err(
            path,
            format!("{} must be {finite}> 0 (got {})", key_name(path), num(x)),
        ))
    }

    fn non_negative(&self, path: &[Seg<'_>], x: f64) -> Result<(), RecipeError> {
        if x.is_finite() && x >= 0.0 {
            return Ok(());
        }
        let finite = if x.is_finite() {
            ""
        } else {
            "a finite number "
        };
        Err(self.doc.err(
            path,
            format!("{} must be {finite}>= 0 (got {})", key_name(path), num(x)),
        ))
    }

    fn finite(&self, path: &[Seg<'_>], x: f64) -> Result<(), RecipeError> {
        if x.is_finite() {
            return Ok(());
        }
        Err(self.doc.err(
            path,
            format!(
                "{} must be a finite number (got {})",
                key_name(path),
                num(x)
            ),
        ))
    }

    /// A duration or time-like number: finite, `> 0` (or `>= 0` when
    /// `zero_ok`) and at most `max_s`. The lower bound keeps the messages of
    /// [`Checker::positive`] / [`Checker::non_negative`]; the upper one says
    /// the bound and, in `why`, what it guards against.
    fn duration(
        &self,
        path: &[Seg<'_>],
        x_s: f64,
        zero_ok: bool,
        max_s: f64,
        why: &str,
    ) -> Result<(), RecipeError> {
        if zero_ok {
            self.non_negative(path, x_s)?;
        } else {
            self.positive(path, x_s)?;
        }
        self.require(
            path,
            x_s <= max_s,
            &format!("<= {} ({why})", duration_bound(max_s)),
            &format!("{} s", num(x_s)),
        )
    }

    /// A signed time offset: finite and `|x| <= max_s`.
    fn offset(&self, path: &[Seg<'_>], x_s: f64, max_s: f64, why: &str) -> Result<(), RecipeError> {
        self.finite(path, x_s)?;
        self.require(
            path,
            x_s.abs() <= max_s,
            &format!("between -{0} and {0} ({why})", duration_bound(max_s)),
            &format!("{} s", num(x_s)),
        )
    }

    /// An Arrhenius activation energy, eV: `>= 0` and below
    /// [`MAX_ACTIVATION_ENERGY_EV`].
    fn activation_energy(&self, path: &[Seg<'_>], Ea_eV: f64) -> Result<(), RecipeError> {
        self.require(
            path,
            (0.0..MAX_ACTIVATION_ENERGY_EV).contains(&Ea_eV),
            &format!(">= 0 and < {} eV", num(MAX_ACTIVATION_ENERGY_EV)),
            &num(Ea_eV),
        )
    }

    /// `ok` decides; `rule` says what was expected (e.g. `"> 0 and < 1"`).
    fn require(
        &self,
        path: &[Seg<'_>],
        ok: bool,
        rule: &str,
        got: &str,
    ) -> Result<(), RecipeError> {
        if ok {
            return Ok(());
        }
        Err(self.doc.err(
            path,
            format!("{} must be {rule} (got {got})", key_name(path)),
        ))
    }
}

/// Bench-independent checks of a freshly parsed recipe.
pub(crate) fn validate_recipe(recipe: &Recipe, doc: &Doc<'_>) -> Result<(), RecipeError> {
    let c = Checker { doc };

    let name_path = [Seg::Key("run"), Seg::Key("name")];
    if recipe.run.name.trim().is_empty() {
        return Err(doc.err(
            &name_path,
            "name must not be empty (it names the run folder)",
        ));
    }
    if slug(&recipe.run.name).is_empty() {
        return Err(doc.err(
            &name_path,
            format!(
                "name {:?} has no ASCII letter or digit to build the run folder name from",
                recipe.run.name
            ),
        ));
    }

    let limits = &recipe.limits;
    c.positive(
        &[Seg::Key("limits"), Seg::Key("current_max_A")],
        limits.current_max_A,
    )?;
    let [low_V, high_V] = limits.potential_window_V;
    c.require(
        &[Seg::Key("limits"), Seg::Key("potential_window_V")],
        low_V.is_finite() && high_V.is_finite() && low_V < high_V,
        "[low, high] with low < high",
        &format!("[{}, {}]", num(low_V), num(high_V)),
    )?;
    if let Some(interval_s) = recipe.run.deflection_sample_interval_s {
        c.duration(
            &[Seg::Key("run"), Seg::Key("deflection_sample_interval_s")],
            interval_s,
            false,
            MAX_SAMPLE_INTERVAL_S,
            SAMPLE_WHY,
        )?;
    }

    let v = StepChecker {
        c: &c,
        window_V: [low_V, high_V],
    };
    // First: the substituted checks below visit every planned step.
    check_plan_size(recipe, &c)?;
    for (i, step) in recipe.steps.iter().enumerate() {
        walk(
            doc,
            step,
            &[Seg::Key("step"), Seg::Idx(i)],
            &mut |s, base| v.step(s, base),
        )?;
    }
    Ok(())
}

/// Planned steps `step` expands to (saturating): a temperature sweep runs a
/// temperature step and its nested steps per temperature, a parameter
/// sweep its nested steps per value.
fn planned_steps(step: &Step) -> usize {
    match step {
        Step::Sweep(s) => {
            let nested = s
                .steps()
                .iter()
                .map(planned_steps)
                .fold(0usize, usize::saturating_add);
            let per_iteration = match s {
                SweepStep::Temperature(_) => nested.saturating_add(1),
                SweepStep::Parameter(_) => nested,
            };
            s.iterations().saturating_mul(per_iteration)
        }
        _ => 1,
    }
}

/// The expanded plan within [`MAX_PLAN_STEPS`], counted without expanding
/// it; the error points at the step (a sweep: its temperature or value
/// list) that crosses the limit.
fn check_plan_size(recipe: &Recipe, c: &Checker<'_, '_>) -> Result<(), RecipeError> {
    let mut planned = 0usize;
    for (i, step) in recipe.steps.iter().enumerate() {
        planned = planned.saturating_add(planned_steps(step));
        if planned <= MAX_PLAN_STEPS {
            continue;
        }
        let base = [Seg::Key("step"), Seg::Idx(i)];
        let (path, message) = match step {
            Step::Sweep(SweepStep::Temperature(s)) => {
                let key = if s.temperature_K.is_some() {
                    "temperature_K"
                } else {
                    "temperature_C"
                };
                let nested: usize = s
                    .steps
                    .iter()
                    .map(planned_steps)
                    .fold(0, usize::saturating_add);
                (
                    key_path(&base, key),
                    format!(
                        "{key}: {} temperatures x (1 + {nested} nested steps) bring the plan \
                         to {planned} steps; at most {MAX_PLAN_STEPS} (split the campaign into \
                         several recipes)",
                        s.temperatures_K().len()
                    ),
                )
            }
            Step::Sweep(SweepStep::Parameter(s)) => {
                let nested: usize = s
                    .steps
                    .iter()
                    .map(planned_steps)
                    .fold(0, usize::saturating_add);
                (
                    key_path(&base, "values"),
                    format!(
                        "values: {} values of {} x {nested} nested steps bring the plan to \
                         {planned} steps; at most {MAX_PLAN_STEPS} (fewer values, or split \
                         the recipe)",
                        s.values.len(),
                        s.parameter.name()
                    ),
                )
            }
            _ => (
                base.to_vec(),
                format!(
                    "step {} brings the plan past {MAX_PLAN_STEPS} steps, the most one \
                     recipe may run (split it into several recipes)",
                    i + 1
                ),
            ),
        };
        return Err(c.doc.err(&path, message));
    }
    Ok(())
}

/// Lowest temperature-stage setpoint a recipe may ask for, K: below it the
/// electrolyte freezes and a typo in degC vs K is likely.
pub const MIN_SETPOINT_K: f64 = 200.0;
/// Highest setpoint, K: above it electrolytes boil and cantilever holders
/// are damaged.
pub const MAX_SETPOINT_K: f64 = 500.0;
/// Largest small-signal amplitude (peak) an EIS or ESM step may use, V:
/// beyond it the cell's response is no longer linear and the potential
/// swing leaves the region the spectrum describes.
pub const MAX_AMPLITUDE_V: f64 = 0.5;
/// Highest EIS frequency of the MethodSCRIPT potentiostats (EmStat Pico and
/// EmStat4: 200 kHz), Hz.
pub const MAX_EIS_FREQUENCY_HZ: f64 = 200e3;

/// Path of `key` under the step at `base`.
fn key_path(base: &[Seg<'static>], key: &'static str) -> Vec<Seg<'static>> {
    let mut path = base.to_vec();
    path.push(Seg::Key(key));
    path
}

/// Path of element `j` of array `key` under the step at `base`.
fn elem_path(base: &[Seg<'static>], key: &'static str, j: usize) -> Vec<Seg<'static>> {
    let mut path = key_path(base, key);
    path.push(Seg::Idx(j));
    path
}

/// "step 3" or "step 2, nested step 1" (1-based) for messages whose
/// position alone does not say which step is meant.
fn step_name(base: &[Seg<'_>]) -> String {
    let idx: Vec<String> = base
        .iter()
        .filter_map(|s| match s {
            Seg::Idx(i) => Some((i + 1).to_string()),
            Seg::Key(_) => None,
        })
        .collect();
    match idx.as_slice() {
        [top] => format!("step {top}"),
        [top, nested @ ..] if !nested.is_empty() => {
            format!("step {top}, nested step {}", nested.join("."))
        }
        _ => "step".to_owned(),
    }
}

/// Per-step checks against the recipe's own limits.
struct StepChecker<'c, 'd, 's> {
    c: &'c Checker<'d, 's>,
    window_V: [f64; 2],
}

impl StepChecker<'_, '_, '_> {
    fn window(&self) -> String {
        format!("[{}, {}]", num(self.window_V[0]), num(self.window_V[1]))
    }

    fn inside(&self, x: f64) -> bool {
        (self.window_V[0]..=self.window_V[1]).contains(&x)
    }

    /// A commanded potential inside `limits.potential_window_V`.
    fn potential(&self, path: &[Seg<'_>], x_V: f64) -> Result<(), RecipeError> {
        self.c.require(
            path,
            self.inside(x_V),
            &format!("inside limits.potential_window_V = {}", self.window()),
            &num(x_V),
        )
    }

    /// A small-signal sine around `dc_V`: amplitude in (0, MAX_AMPLITUDE_V]
    /// and the whole swing inside the window.
    fn sine(&self, base: &[Seg<'static>], dc_V: f64, amplitude_V: f64) -> Result<(), RecipeError> {
        self.potential(&key_path(base, "dc_V"), dc_V)?;
        let amp = key_path(base, "amplitude_V");
        self.c.require(
            &amp,
            amplitude_V > 0.0 && amplitude_V <= MAX_AMPLITUDE_V,
            &format!("> 0 and <= {} V (peak)", num(MAX_AMPLITUDE_V)),
            &num(amplitude_V),
        )?;
        let (lo_V, hi_V) = (dc_V - amplitude_V, dc_V + amplitude_V);
        self.c.require(
            &amp,
            self.inside(lo_V) && self.inside(hi_V),
            &format!(
                "small enough that dc_V +- amplitude_V stays inside \
                 limits.potential_window_V = {}",
                self.window()
            ),
            &format!("{}: swing [{}, {}]", num(amplitude_V), num(lo_V), num(hi_V)),
        )
    }

    /// `[high, low]` frequencies with high > low > 0.
    fn freq_pair(
        &self,
        base: &[Seg<'static>],
        key: &'static str,
        pair_Hz: [f64; 2],
    ) -> Result<(), RecipeError> {
        for (j, &f_Hz) in pair_Hz.iter().enumerate() {
            self.c.positive(&elem_path(base, key, j), f_Hz)?;
        }
        self.c.require(
            &key_path(base, key),
            pair_Hz[0] > pair_Hz[1],
            "[high, low] with high > low > 0",
            &format!("[{}, {}]", num(pair_Hz[0]), num(pair_Hz[1])),
        )
    }

    /// Setpoint tolerance, hold and timeout of a temperature step or sweep.
    fn stage(
        &self,
        base: &[Seg<'static>],
        tolerance_K: f64,
        hold_s: f64,
        timeout_s: f64,
    ) -> Result<(), RecipeError> {
        self.c
            .positive(&key_path(base, "tolerance_K"), tolerance_K)?;
        self.c.duration(
            &key_path(base, "hold_s"),
            hold_s,
            true,
            MAX_STAGE_WAIT_S,
            "the stage's stable hold",
        )?;
        self.c.duration(
            &key_path(base, "timeout_s"),
            timeout_s,
            false,
            MAX_STAGE_WAIT_S,
            "a stage not stable after a day never will be",
        )?;
        self.c.require(
            &key_path(base, "timeout_s"),
            timeout_s.is_finite() && timeout_s > hold_s,
            &format!(
                "> hold_s = {} s (the stage must be able to reach the setpoint \
                 and then hold it)",
                num(hold_s)
            ),
            &num(timeout_s),
        )
    }

    /// A setpoint, in the unit of `key` (`..._C` or `..._K`), within
    /// [`MIN_SETPOINT_K`]..[`MAX_SETPOINT_K`].
    fn setpoint(&self, path: &[Seg<'_>], celsius: bool, value: f64) -> Result<(), RecipeError> {
        let t_K = if celsius { value + ZERO_C_IN_K } else { value };
        let rule = if celsius {
            format!(
                "between {:.2} and {:.2} degC ({} to {} K, the stage's safe range)",
                MIN_SETPOINT_K - ZERO_C_IN_K,
                MAX_SETPOINT_K - ZERO_C_IN_K,
                num(MIN_SETPOINT_K),
                num(MAX_SETPOINT_K)
            )
        } else {
            format!(
                "between {} and {} K (the stage's safe range)",
                num(MIN_SETPOINT_K),
                num(MAX_SETPOINT_K)
            )
        };
        self.c.require(
            path,
            (MIN_SETPOINT_K..=MAX_SETPOINT_K).contains(&t_K),
            &rule,
            &num(value),
        )
    }

    /// Exactly one of two optional keys. `neither` is the message when both
    /// are absent (positioned at the step's header).
    fn exactly_one(
        &self,
        base: &[Seg<'static>],
        (a_key, a_given): (&'static str, bool),
        (b_key, b_given): (&'static str, bool),
        neither: &str,
    ) -> Result<(), RecipeError> {
        match (a_given, b_given) {
            (true, true) => Err(self.c.doc.err(
                &key_path(base, b_key),
                format!("give exactly one of {a_key} / {b_key}, not both"),
            )),
            (false, false) => Err(self.c.doc.err(base, neither)),
            _ => Ok(()),
        }
    }

    /// The step's own checks; a sweep's nested steps are checked by
    /// [`walk`], which calls this on each.
    fn step(&self, step: &Step, base: &[Seg<'static>]) -> Result<(), RecipeError> {
        let c = self.c;
        let at = |key| key_path(base, key);
        match step {
            Step::Ocp(s) => {
                c.duration(
                    &at("duration_s"),
                    s.duration_s,
                    false,
                    MAX_STEP_DURATION_S,
                    STEP_WHY,
                )?;
                c.duration(
                    &at("sample_interval_s"),
                    s.sample_interval_s,
                    false,
                    MAX_SAMPLE_INTERVAL_S,
                    SAMPLE_WHY,
                )?;
                c.require(
                    &at("sample_interval_s"),
                    s.sample_interval_s <= s.duration_s,
                    &format!(
                        "<= duration_s = {} s, or the step records no sample",
                        num(s.duration_s)
                    ),
                    &num(s.sample_interval_s),
                )?;
            }
            Step::Wait(s) => c.duration(
                &at("duration_s"),
                s.duration_s,
                false,
                MAX_STEP_DURATION_S,
                STEP_WHY,
            )?,
            Step::Cv(s) => {
                self.potential(&at("begin_V"), s.begin_V)?;
                for (j, &vertex_V) in s.vertex_V.iter().enumerate() {
                    self.potential(&elem_path(base, "vertex_V", j), vertex_V)?;
                }
                let span_V = (s.vertex_V[1] - s.vertex_V[0]).abs();
                c.require(
                    &at("vertex_V"),
                    span_V > 0.0,
                    "two different potentials",
                    &format!("[{}, {}]", num(s.vertex_V[0]), num(s.vertex_V[1])),
                )?;
                c.positive(&at("scan_rate_V_per_s"), s.scan_rate_V_per_s)?;
                c.positive(&at("step_V"), s.step_V)?;
                c.require(
                    &at("step_V"),
                    s.step_V < span_V,
                    &format!(
                        "smaller than the vertex span |vertex_V[1] - vertex_V[0]| = {} V",
                        num(span_V)
                    ),
                    &num(s.step_V),
                )?;
                c.require(&at("cycles"), s.cycles >= 1, ">= 1", &s.cycles.to_string())?;
            }
            Step::Steps(s) => {
                c.require(
                    &at("levels_V"),
                    !s.levels_V.is_empty(),
                    "at least one potential level",
                    "[]",
                )?;
                c.require(
                    &at("hold_s"),
                    s.hold_s.len() == s.levels_V.len(),
                    &format!("one hold time per level ({} levels)", s.levels_V.len()),
                    &format!("{} hold times", s.hold_s.len()),
                )?;
                for (j, &level_V) in s.levels_V.iter().enumerate() {
                    self.potential(&elem_path(base, "levels_V", j), level_V)?;
                }
                c.duration(
                    &at("sample_interval_s"),
                    s.sample_interval_s,
                    false,
                    MAX_SAMPLE_INTERVAL_S,
                    SAMPLE_WHY,
                )?;
                for (j, &hold_s) in s.hold_s.iter().enumerate() {
                    let path = elem_path(base, "hold_s", j);
                    c.duration(&path, hold_s, false, MAX_STEP_DURATION_S, STEP_WHY)?;
                    c.require(
                        &path,
                        hold_s >= s.sample_interval_s,
                        &format!(
                            ">= sample_interval_s = {} s, or the level records no sample",
                            num(s.sample_interval_s)
                        ),
                        &num(hold_s),
                    )?;
                }
            }
            Step::Lsv(s) => {
                self.potential(&at("begin_V"), s.begin_V)?;
                self.potential(&at("end_V"), s.end_V)?;
                let span_V = (s.end_V - s.begin_V).abs();
                c.require(
                    &at("end_V"),
                    span_V > 0.0,
                    &format!("different from begin_V = {} V", num(s.begin_V)),
                    &num(s.end_V),
                )?;
                c.positive(&at("scan_rate_V_per_s"), s.scan_rate_V_per_s)?;
                c.positive(&at("step_V"), s.step_V)?;
                c.require(
                    &at("step_V"),
                    s.step_V <= span_V,
                    &format!("<= the sweep span |end_V - begin_V| = {} V", num(span_V)),
                    &num(s.step_V),
                )?;
            }
            Step::Eis(s) => {
                self.sine(base, s.dc_V, s.amplitude_V)?;
                self.freq_pair(base, "freq_Hz", s.freq_Hz)?;
                c.require(
                    &elem_path(base, "freq_Hz", 0),
                    s.freq_Hz[0] <= MAX_EIS_FREQUENCY_HZ,
                    &format!(
                        "<= {} Hz, the potentiostat's highest EIS frequency",
                        num(MAX_EIS_FREQUENCY_HZ)
                    ),
                    &num(s.freq_Hz[0]),
                )?;
                c.require(
                    &at("points_per_decade"),
                    s.points_per_decade >= 1,
                    ">= 1",
                    &s.points_per_decade.to_string(),
                )?;
                c.require(
                    &at("points_per_decade"),
                    s.n_points() <= MAX_SWEEP_POINTS,
                    &sweep_points_bound(),
                    &format!(
                        "{} per decade: {} points",
                        s.points_per_decade,
                        s.n_points()
                    ),
                )?;
                c.duration(
                    &at("equilibrate_s"),
                    s.equilibrate_s,
                    true,
                    MAX_EQUILIBRATE_S,
                    "a longer relaxation belongs in its own step",
                )?;
            }
            Step::EsmSweep(s) => self.esm_sweep(s, base)?,
            Step::Temperature(s) => {
                self.exactly_one(
                    base,
                    ("setpoint_C", s.setpoint_C.is_some()),
                    ("setpoint_K", s.setpoint_K.is_some()),
                    "temperature step: missing setpoint: give setpoint_C or setpoint_K",
                )?;
                if let Some(t_C) = s.setpoint_C {
                    self.setpoint(&at("setpoint_C"), true, t_C)?;
                }
                if let Some(t_K) = s.setpoint_K {
                    self.setpoint(&at("setpoint_K"), false, t_K)?;
                }
                self.stage(base, s.tolerance_K, s.hold_s, s.timeout_s)?;
            }
            Step::Sweep(SweepStep::Temperature(s)) => {
                self.exactly_one(
                    base,
                    ("temperature_C", s.temperature_C.is_some()),
                    ("temperature_K", s.temperature_K.is_some()),
                    "sweep step: missing temperatures: give temperature_C = [...] \
                     or temperature_K = [...]",
                )?;
                for (key, list, celsius) in [
                    ("temperature_C", &s.temperature_C, true),
                    ("temperature_K", &s.temperature_K, false),
                ] {
                    let Some(list) = list else { continue };
                    c.require(&at(key), !list.is_empty(), "at least one temperature", "[]")?;
                    for (j, &t) in list.iter().enumerate() {
                        self.setpoint(&elem_path(base, key, j), celsius, t)?;
                    }
                }
                self.stage(base, s.tolerance_K, s.hold_s, s.timeout_s)?;
                c.require(
                    &at("step"),
                    !s.steps.is_empty(),
                    "at least one nested [[step.step]]",
                    "none",
                )?;
            }
            Step::Sweep(SweepStep::Parameter(s)) => {
                c.require(
                    &at("values"),
                    !s.values.is_empty(),
                    &format!("at least one value of {}", s.parameter.name()),
                    "[]",
                )?;
                for (j, &value) in s.values.iter().enumerate() {
                    c.finite(&elem_path(base, "values", j), value)?;
                }
                c.require(
                    &at("step"),
                    !s.steps.is_empty(),
                    "at least one nested [[step.step]]",
                    "none",
                )?;
            }
        }
        self.step_duration(step, base)
    }

    /// The whole step's nominal duration (derived for CV, LSV, EIS and ESM
    /// from rates and frequencies) within [`MAX_STEP_DURATION_S`], pointing
    /// at the key that makes it long. A sweep is not bounded as a whole: a
    /// campaign may run for weeks; each of its nested steps is.
    fn step_duration(&self, step: &Step, base: &[Seg<'static>]) -> Result<(), RecipeError> {
        let key_of = match step {
            Step::Cv(_) | Step::Lsv(_) => key_path(base, "scan_rate_V_per_s"),
            Step::Steps(_) => key_path(base, "hold_s"),
            // The lowest frequency dominates the duration.
            Step::Eis(_) => elem_path(base, "freq_Hz", 1),
            Step::EsmSweep(s) => key_path(base, esm_freq_key(s)),
            Step::Ocp(_) | Step::Wait(_) => key_path(base, "duration_s"),
            Step::Temperature(_) => key_path(base, "hold_s"),
            Step::Sweep(_) => return Ok(()),
        };
        let duration_s = step.duration_s();
        self.c.require(
            &key_of,
            duration_s.is_finite() && duration_s <= MAX_STEP_DURATION_S,
            &format!(
                "such that the {} step lasts <= {} (the longest step; a larger number is \
                 likely a unit mistake)",
                step.kind_name(),
                duration_bound(MAX_STEP_DURATION_S)
            ),
            &format!("a step of {} s", num(duration_s)),
        )
    }

    fn esm_sweep(&self, s: &EsmSweepStep, base: &[Seg<'static>]) -> Result<(), RecipeError> {
        let c = self.c;
        let at = |key| key_path(base, key);
        self.sine(base, s.dc_V, s.amplitude_V)?;
        self.exactly_one(
            base,
            ("freq_Hz", s.freq_Hz.is_some()),
            ("freq_range_Hz", s.freq_range_Hz.is_some()),
            "esm_sweep step: missing frequencies: give freq_Hz = [f1, f2, ...] or \
             freq_range_Hz = [high, low] with points_per_decade",
        )?;
        if let Some(list) = &s.freq_Hz {
            c.require(
                &at("freq_Hz"),
                !list.is_empty(),
                "at least one frequency",
                "[]",
            )?;
            c.require(
                &at("freq_Hz"),
                list.len() <= MAX_SWEEP_POINTS as usize,
                &sweep_points_bound(),
                &format!("{} frequencies", list.len()),
            )?;
            for (j, &f_Hz) in list.iter().enumerate() {
                c.positive(&elem_path(base, "freq_Hz", j), f_Hz)?;
            }
            if let Some(ppd) = s.points_per_decade {
                return Err(c.doc.err(
                    &at("points_per_decade"),
                    format!(
                        "points_per_decade = {ppd} only applies to freq_range_Hz; \
                         with an explicit freq_Hz list remove it"
                    ),
                ));
            }
        }
        if let Some(range_Hz) = s.freq_range_Hz {
            self.freq_pair(base, "freq_range_Hz", range_Hz)?;
            let Some(ppd) = s.points_per_decade else {
                return Err(c.doc.err(
                    &at("freq_range_Hz"),
                    "freq_range_Hz needs points_per_decade (the number of log-spaced \
                     frequencies per decade)",
                ));
            };
            c.require(&at("points_per_decade"), ppd >= 1, ">= 1", &ppd.to_string())?;
            let n = s.frequencies_count();
            c.require(
                &at("points_per_decade"),
                n <= MAX_SWEEP_POINTS,
                &sweep_points_bound(),
                &format!("{ppd} per decade: {n} points"),
            )?;
        }
        c.require(
            &at("periods"),
            s.periods >= 1,
            ">= 1",
            &s.periods.to_string(),
        )?;

        let freq_key = esm_freq_key(s);
        let f_max_Hz = s.frequencies_Hz().into_iter().fold(0.0, f64::max);
        let max_interval_s = 1.0 / (ESM_MIN_SAMPLES_PER_PERIOD * f_max_Hz);
        match s.sample_interval_s {
            Some(interval_s) => {
                let path = at("sample_interval_s");
                c.duration(&path, interval_s, false, MAX_SAMPLE_INTERVAL_S, SAMPLE_WHY)?;
                c.require(
                    &path,
                    interval_s >= MIN_SAMPLE_INTERVAL_S,
                    &format!(
                        ">= {} s, the potentiostat's shortest sample interval",
                        num(MIN_SAMPLE_INTERVAL_S)
                    ),
                    &num(interval_s),
                )?;
                c.require(
                    &path,
                    interval_s <= max_interval_s,
                    &format!(
                        "<= 1/({} f_max) = {} s: at least {} samples per period of the \
                         highest frequency ({} Hz)",
                        num(ESM_MIN_SAMPLES_PER_PERIOD),
                        num(max_interval_s),
                        num(ESM_MIN_SAMPLES_PER_PERIOD),
                        num(f_max_Hz)
                    ),
                    &num(interval_s),
                )?;
            }
            None => {
                let f_limit_Hz = 1.0 / (ESM_MIN_SAMPLES_PER_PERIOD * MIN_SAMPLE_INTERVAL_S);
                c.require(
                    &at(freq_key),
                    s.ca_sample_interval_s() <= max_interval_s,
                    &format!(
                        "at most {} Hz: the potentiostat samples at most every {} s and \
                         needs {} samples per period",
                        num(f_limit_Hz),
                        num(MIN_SAMPLE_INTERVAL_S),
                        num(ESM_MIN_SAMPLES_PER_PERIOD)
                    ),
                    &format!("highest frequency {} Hz", num(f_max_Hz)),
                )?;
            }
        }
        Ok(())
    }
}

/// `Err(message)` when the digitizer cannot sample every `interval_s`
/// (timer-paced): the same bounds its driver and the emulator apply, so
/// validate refuses what configure would.
fn deflection_interval_on(limits: &DriverLimits, interval_s: f64) -> Result<(), String> {
    let DriverLimits::Deflection {
        model,
        sample_interval_s: [min_s, max_s],
        rate_hint,
        ..
    } = *limits
    else {
        return Ok(());
    };
    if interval_s >= min_s * (1.0 - 1e-9) && interval_s <= max_s {
        return Ok(());
    }
    Err(format!(
        "sample interval {} s is outside what the {model} can do: {} s to {} s ({rate_hint})",
        num(interval_s),
        num(min_s),
        num(max_s)
    ))
}

/// One instrument's driver/resource pair: the driver is in the table for
/// its role, and the resource (already parsed when the file was read) is
/// `sim` or of the transport the driver speaks. Returns the driver's limits.
fn check_instrument(
    doc: &Doc<'_>,
    role: Role,
    name: &str,
    resource: &Resource,
) -> Result<DriverLimits, RecipeError> {
    let table = role.table();
    let path = |key| [Seg::Key("instruments"), Seg::Key(table), Seg::Key(key)];
    let Some(spec) = driver(role, name) else {
        return Err(doc.err(
            &path("driver"),
            format!(
                "unknown {table} driver `{name}`; known drivers: {}",
                driver_names(role)
            ),
        ));
    };
    if !resource.is_sim() && !spec.transport.accepts(resource) {
        return Err(doc.err(
            &path("resource"),
            format!(
                "driver `{name}` talks over {} or `sim` (got `{resource}`)",
                spec.transport.describe()
            ),
        ));
    }
    Ok(spec.limits)
}

/// Bench checks; fills `sim` with the default virtual bench when an
/// instrument is `sim` and the file has no `[sim]` table.
pub(crate) fn validate_bench(bench: &mut BenchConfig, doc: &Doc<'_>) -> Result<(), RecipeError> {
    let c = Checker { doc };
    let pot = &bench.instruments.potentiostat;
    let defl = &bench.instruments.deflection;
    check_instrument(doc, Role::Potentiostat, &pot.driver, &pot.resource)?;
    let defl_limits = check_instrument(doc, Role::Deflection, &defl.driver, &defl.resource)?;

    let p = |key| {
        [
            Seg::Key("instruments"),
            Seg::Key("potentiostat"),
            Seg::Key(key),
        ]
    };
    c.require(&p("baud"), pot.baud > 0, "> 0", &pot.baud.to_string())?;
    c.require(
        &p("trigger_gpio_pin"),
        pot.trigger_gpio_pin <= MAX_TRIGGER_GPIO_PIN,
        &format!("<= {MAX_TRIGGER_GPIO_PIN} (the GPIO outputs are 0..=15)"),
        &pot.trigger_gpio_pin.to_string(),
    )?;
    c.positive(&p("current_range_max_A"), pot.current_range_max_A)?;
    c.positive(&p("current_range_min_A"), pot.current_range_min_A)?;
    c.require(
        &p("current_range_min_A"),
        pot.current_range_min_A <= pot.current_range_max_A,
        &format!(
            "<= current_range_max_A = {} A",
            num(pot.current_range_max_A)
        ),
        &num(pot.current_range_min_A),
    )?;
    c.duration(
        &p("trigger_latency_s"),
        pot.trigger_latency_s,
        true,
        MAX_TRIGGER_LATENCY_S,
        "measured latencies are µs to ms",
    )?;
    c.duration(
        &p("timeout_s"),
        pot.timeout_s,
        false,
        MAX_TIMEOUT_S,
        TIMEOUT_WHY,
    )?;

    let d = |key| {
        [
            Seg::Key("instruments"),
            Seg::Key("deflection"),
            Seg::Key(key),
        ]
    };
    c.duration(
        &d("sample_interval_s"),
        defl.sample_interval_s,
        false,
        MAX_SAMPLE_INTERVAL_S,
        SAMPLE_WHY,
    )?;
    if let Err(why) = deflection_interval_on(&defl_limits, defl.sample_interval_s) {
        return Err(doc.err(&d("sample_interval_s"), why));
    }
    c.positive(&d("range_V"), defl.range_V)?;
    c.require(
        &d("max_samples"),
        defl.max_samples >= 1,
        ">= 1",
        &defl.max_samples.to_string(),
    )?;
    if let DriverLimits::Deflection {
        model,
        max_sample_count,
        ..
    } = defl_limits
    {
        c.require(
            &d("max_samples"),
            defl.max_samples <= max_sample_count,
            &format!("<= {max_sample_count} (the {model}'s largest sample count)"),
            &defl.max_samples.to_string(),
        )?;
    }
    c.positive(&d("invols_nm_per_V"), defl.invols_nm_per_V)?;
    c.positive(&d("spring_constant_N_per_m"), defl.spring_constant_N_per_m)?;
    c.duration(
        &d("timeout_s"),
        defl.timeout_s,
        false,
        MAX_TIMEOUT_S,
        TIMEOUT_WHY,
    )?;

    if let Some(lockin) = &bench.instruments.lockin {
        check_instrument(doc, Role::LockIn, &lockin.driver, &lockin.resource)?;
        let l = |key| [Seg::Key("instruments"), Seg::Key("lockin"), Seg::Key(key)];
        c.positive(&l("sine_to_cell_V_per_V"), lockin.sine_to_cell_V_per_V)?;
        c.duration(
            &l("timeout_s"),
            lockin.timeout_s,
            false,
            MAX_TIMEOUT_S,
            TIMEOUT_WHY,
        )?;
    }
    if let Some(stage) = &bench.instruments.temperature {
        let limits = check_instrument(doc, Role::TemperatureStage, &stage.driver, &stage.resource)?;
        let t = |key| {
            [
                Seg::Key("instruments"),
                Seg::Key("temperature"),
                Seg::Key(key),
            ]
        };
        if let DriverLimits::TemperatureStage {
            outputs,
            outputs_hint,
            inputs,
            heater_ranges,
            heater_ranges_hint,
        } = limits
        {
            c.require(
                &t("output"),
                (outputs[0]..=outputs[1]).contains(&stage.output),
                outputs_hint,
                &stage.output.to_string(),
            )?;
            c.require(
                &t("input"),
                inputs.contains(&stage.input.as_str()),
                &format!("one of {}", inputs.join(", ")),
                &format!("{:?}", stage.input),
            )?;
            c.require(
                &t("heater_range"),
                (heater_ranges[0]..=heater_ranges[1]).contains(&stage.heater_range),
                heater_ranges_hint,
                &stage.heater_range.to_string(),
            )?;
        }
        c.duration(
            &t("timeout_s"),
            stage.timeout_s,
            false,
            MAX_TIMEOUT_S,
            TIMEOUT_WHY,
        )?;
    }

    let uses_sim = bench.instruments.uses_sim();
    if uses_sim && bench.sim.is_none() {
        bench.sim = Some(SimParams::default());
    }
    if let Some(sim) = &bench.sim {
        validate_sim(sim, &c)?;
    }
    Ok(())
}

/// The virtual bench must describe a physical cell the solver can integrate.
fn validate_sim(sim: &SimParams, c: &Checker<'_, '_>) -> Result<(), RecipeError> {
    let top = |key| [Seg::Key("sim"), Seg::Key(key)];
    let at = |table, key| [Seg::Key("sim"), Seg::Key(table), Seg::Key(key)];

    c.require(
        &top("time_acceleration"),
        sim.time_acceleration > 0.0 && sim.time_acceleration <= MAX_TIME_ACCELERATION,
        &format!("> 0 and <= {}", num(MAX_TIME_ACCELERATION)),
        &num(sim.time_acceleration),
    )?;

    let f = &sim.film;
    c.positive(&at("film", "thickness_m"), f.thickness_m)?;
    c.positive(&at("film", "area_m2"), f.area_m2)?;
    c.positive(&at("film", "c_max_mol_per_m3"), f.c_max_mol_per_m3)?;
    c.require(
        &at("film", "x_initial"),
        f.x_initial > 0.0 && f.x_initial < 1.0,
        "> 0 and < 1",
        &num(f.x_initial),
    )?;
    c.positive(&at("film", "D_m2_per_s"), f.D_m2_per_s)?;
    c.activation_energy(&at("film", "Ea_D_eV"), f.Ea_D_eV)?;
    c.finite(&at("film", "E0_V"), f.E0_V)?;
    c.positive(&at("film", "z"), f.z)?;
    c.require(
        &at("film", "nodes"),
        (MIN_SIM_NODES..=MAX_SIM_NODES).contains(&f.nodes),
        &format!(
            ">= {MIN_SIM_NODES} and <= {MAX_SIM_NODES} (the profile is resolved at 200; \
             every node is integrated at every sample)"
        ),
        &f.nodes.to_string(),
    )?;

    let k = &sim.kinetics;
    c.positive(&at("kinetics", "k0_m_per_s"), k.k0_m_per_s)?;
    c.activation_energy(&at("kinetics", "Ea_k0_eV"), k.Ea_k0_eV)?;
    c.require(
        &at("kinetics", "alpha"),
        k.alpha > 0.0 && k.alpha < 1.0,
        "> 0 and < 1",
        &num(k.alpha),
    )?;

    let cell = &sim.cell;
    c.non_negative(&at("cell", "R_s_ohm"), cell.R_s_ohm)?;
    c.non_negative(&at("cell", "C_dl_F"), cell.C_dl_F)?;
    c.positive(&at("cell", "T_K"), cell.T_K)?;
    c.positive(&at("cell", "T_ref_K"), cell.T_ref_K)?;

    let s = &sim.strain;
    c.finite(&at("strain", "Omega_m3_per_mol"), s.Omega_m3_per_mol)?;
    c.finite(
        &at("strain", "dOmega_dx_m3_per_mol"),
        s.dOmega_dx_m3_per_mol,
    )?;
    // Only a concentration-dependent Omega can change sign inside the
    // composition range; a constant one (even 0, a strain-free film) is
    // left to the checks above.
    if s.dOmega_dx_m3_per_mol != 0.0 {
        let (lo, hi) = s.dOmega_dx_range_m3_per_mol(f.x_initial);
        let rule = if lo < hi {
            format!(
                "> {} and < {} so that Omega(x) = Omega_m3_per_mol + dOmega_dx_m3_per_mol \
                 (x - x_initial) stays > 0 for 0 <= x <= 1",
                bound(lo),
                bound(hi)
            )
        } else {
            "0 unless Omega_m3_per_mol > 0 (Omega(x) must stay > 0 for 0 <= x <= 1)".to_owned()
        };
        c.require(
            &at("strain", "dOmega_dx_m3_per_mol"),
            s.dOmega_dx_m3_per_mol > lo && s.dOmega_dx_m3_per_mol < hi,
            &rule,
            &num(s.dOmega_dx_m3_per_mol),
        )?;
    }
    c.require(
        &at("strain", "poisson_ratio"),
        s.poisson_ratio > -1.0 && s.poisson_ratio <= 0.5,
        "> -1 and <= 0.5",
        &num(s.poisson_ratio),
    )?;

    let l = &sim.lever;
    c.positive(&at("lever", "invols_nm_per_V"), l.invols_nm_per_V)?;
    c.positive(
        &at("lever", "spring_constant_N_per_m"),
        l.spring_constant_N_per_m,
    )?;

    let e = &sim.electrostatic;
    c.non_negative(&at("electrostatic", "dC_dz_F_per_m"), e.dC_dz_F_per_m)?;
    c.finite(&at("electrostatic", "V_cpd_V"), e.V_cpd_V)?;

    let es = &sim.electrostriction;
    c.finite(
        &at("electrostriction", "coefficient_nm_per_V2"),
        es.coefficient_nm_per_V2,
    )?;
    c.finite(&at("electrostriction", "E_zero_V"), es.E_zero_V)?;

    let j = &sim.joule_heating;
    c.non_negative(&at("joule_heating", "R_th_K_per_W"), j.R_th_K_per_W)?;
    c.non_negative(&at("joule_heating", "tau_s"), j.tau_s)?;
    c.finite(
        &at("joule_heating", "expansion_nm_per_K"),
        j.expansion_nm_per_K,
    )?;

    let n = &sim.noise;
    c.non_negative(&at("noise", "deflection_nm_rms"), n.deflection_nm_rms)?;
    c.non_negative(&at("noise", "current_A_rms"), n.current_A_rms)?;
    c.non_negative(&at("noise", "potential_V_rms"), n.potential_V_rms)?;

    let d = &sim.drift;
    c.finite(&at("drift", "holder_nm_per_min"), d.holder_nm_per_min)?;
    c.non_negative(
        &at("drift", "random_walk_nm_per_sqrt_min"),
        d.random_walk_nm_per_sqrt_min,
    )?;

    for (name, clock) in [
        ("potentiostat", &sim.clocks.potentiostat),
        ("deflection", &sim.clocks.deflection),
    ] {
        validate_clock(name, clock, c)?;
    }

    let faults = &sim.faults;
    // Instants into a loop or acquisition, and the stall's length.
    for (key, t_s) in [
        (
            "potentiostat_error_after_s",
            faults.potentiostat_error_after_s,
        ),
        ("current_spike_after_s", faults.current_spike_after_s),
        (
            "potentiostat_silent_after_s",
            faults.potentiostat_silent_after_s,
        ),
        ("digitizer_stall_after_s", faults.digitizer_stall_after_s),
        ("digitizer_stall_s", Some(faults.digitizer_stall_s)),
    ] {
        if let Some(t_s) = t_s {
            c.duration(
                &at("faults", key),
                t_s,
                true,
                MAX_SIM_FAULT_AFTER_S,
                "longer than any run",
            )?;
        }
    }
    c.finite(&at("faults", "current_spike_A"), faults.current_spike_A)?;
    if let Some(t_s) = faults.lockin_switch_delay_s {
        // In wall time it must stay below the lock-in's reply timeout.
        c.duration(
            &at("faults", "lockin_switch_delay_s"),
            t_s,
            true,
            MAX_TIMEOUT_S,
            "a lock-in reply timeout's bound",
        )?;
    }
    if let Some(n) = faults.lockin_switch_delay_every {
        c.require(
            &at("faults", "lockin_switch_delay_every"),
            n >= 1,
            ">= 1 (1 = every FREQ command)",
            &n.to_string(),
        )?;
    }

    let th = &sim.thermal;
    c.duration(
        &at("thermal", "tau_s"),
        th.tau_s,
        false,
        MAX_SIM_THERMAL_TAU_S,
        "the stage must settle within a temperature step's timeout",
    )?;
    c.positive(&at("thermal", "damping"), th.damping)?;
    c.non_negative(&at("thermal", "sensor_noise_K_rms"), th.sensor_noise_K_rms)?;
    c.require(
        &at("eis", "noise_rel"),
        (0.0..1.0).contains(&sim.eis.noise_rel),
        ">= 0 and < 1",
        &num(sim.eis.noise_rel),
    )?;
    Ok(())
}

fn validate_clock(name: &str, clock: &ClockParams, c: &Checker<'_, '_>) -> Result<(), RecipeError> {
    let at = |key| {
        [
            Seg::Key("sim"),
            Seg::Key("clocks"),
            Seg::Key(name),
            Seg::Key(key),
        ]
    };
    c.offset(
        &at("offset_s"),
        clock.offset_s,
        MAX_SIM_CLOCK_OFFSET_S,
        "a device clock's offset",
    )?;
    // The device clock rate is (1 + drift_ppm 1e-6); it must stay positive.
    c.require(
        &at("drift_ppm"),
        clock.drift_ppm.is_finite() && clock.drift_ppm.abs() < 1e6,
        "between -1e6 and 1e6",
        &num(clock.drift_ppm),
    )?;
    c.duration(
        &at("jitter_s"),
        clock.jitter_s,
        true,
        MAX_SIM_JITTER_S,
        "real oscillators jitter by ns to µs",
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::{bound, slug};

    #[test]
    fn bounds_are_short() {
        assert_eq!(bound(-1.600_000_000_000_000_3e-5), "-1.6e-5");
        assert_eq!(bound(4e-6), "4e-6");
        assert_eq!(bound(-4.266_666_666_666_667e-6), "-4.2667e-6");
        assert_eq!(bound(123.0), "1.23e2");
    }

    #[test]
    fn slug_keeps_ascii_words_joined_by_single_dashes() {
        assert_eq!(slug("demo-cv"), "demo-cv");
        assert_eq!(slug("LiMn2O4 CV #3"), "limn2o4-cv-3");
        assert_eq!(slug("  __Hello, World!__ "), "hello-world");
        assert_eq!(slug("Ünïcode"), "n-code");
        assert_eq!(slug("%%%"), "");
        assert_eq!(slug(&"a".repeat(100)).len(), 64);
        // Truncation must not leave a trailing dash.
        let name = format!("{} b", "a".repeat(63));
        assert_eq!(slug(&name), "a".repeat(63));
    }
}
