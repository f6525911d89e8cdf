//! Physical validation of recipes and bench configs: values that parse but
//! cannot be run (negative scan rates, vertices outside the safety window,
//! more samples than the digitizer holds, unknown drivers, ...). Each error
//! points at the key responsible for it, so nothing reaches the hardware
//! before the file makes sense.

use crate::doc::{Doc, Seg};
use crate::error::{RecipeError, Source};
use crate::schema::{BenchConfig, ClockParams, MAX_ACTIVATION_ENERGY_EV, Recipe, SimParams, Step};

/// Potentiostat driver names the instrument registry provides.
pub const KNOWN_POTENTIOSTAT_DRIVERS: &[&str] = &["methodscript"];
/// Deflection-probe (digitizer) driver names the instrument registry provides.
pub const KNOWN_DEFLECTION_DRIVERS: &[&str] = &["scpi-dmm"];
/// Shortest sample interval the potentiostat can sustain while streaming
/// every sample to the host, s.
pub const MIN_SAMPLE_INTERVAL_S: f64 = 1e-3;
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

/// Checks of a recipe against the bench it will run on: the potentiostat's
/// current range and sampling speed, and the digitizer's buffer. `src` is the
/// recipe's source (see [`Source`]); errors point into it, because the recipe
/// step is what the user changes to fix them.
pub fn validate_with_bench(
    recipe: &Recipe,
    src: &Source,
    bench: &BenchConfig,
) -> Result<(), RecipeError> {
    let doc = Doc::parse(&src.file, &src.text)?;
    let pot = &bench.instruments.potentiostat;
    let defl = &bench.instruments.deflection;

    let cell_on = recipe
        .steps
        .iter()
        .any(|s| matches!(s, Step::Cv(_) | Step::Steps(_)));
    if cell_on && recipe.limits.current_max_A > pot.current_range_max_A {
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

    for (i, step) in recipe.steps.iter().enumerate() {
        let at = |key| [Seg::Key("step"), Seg::Idx(i), Seg::Key(key)];
        let (interval_s, interval_key, count_key) = match step {
            Step::Ocp(s) => (s.sample_interval_s, "sample_interval_s", "duration_s"),
            Step::Cv(s) => (s.sample_interval_s(), "step_V", "cycles"),
            Step::Steps(s) => (s.sample_interval_s, "sample_interval_s", "hold_s"),
            Step::Wait(_) => continue,
        };
        if interval_s < MIN_SAMPLE_INTERVAL_S {
            let what = match step {
                Step::Cv(_) => "sample interval step_V / scan_rate_V_per_s",
                _ => "sample_interval_s",
            };
            return Err(doc.err(
                &at(interval_key),
                format!(
                    "{what} = {} s is below the potentiostat's minimum of {} s",
                    num(interval_s),
                    num(MIN_SAMPLE_INTERVAL_S)
                ),
            ));
        }
        let duration_s = step.duration_s();
        let samples = deflection_samples(duration_s, defl.sample_interval_s);
        if samples > defl.max_samples {
            return Err(doc.err(
                &at(count_key),
                format!(
                    "this {} step records {} s: {} s x {} / {} s = {samples} deflection samples, \
                     more samples than the instrument buffer allows \
                     (instruments.deflection.max_samples = {}); shorten the step or split it",
                    step.kind_name(),
                    num(duration_s),
                    num(duration_s),
                    num(SAMPLE_COUNT_MARGIN),
                    num(defl.sample_interval_s),
                    defl.max_samples
                ),
            ));
        }
    }
    Ok(())
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

/// Number formatting for messages: shortest form that reads back exactly
/// (`0.1`, `1.0`, `1e-9`), so the user sees the value they wrote.
fn num(x: f64) -> String {
    format!("{x:?}")
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
    let inside = |x: f64| (low_V..=high_V).contains(&x);
    let window = format!("[{}, {}]", num(low_V), num(high_V));

    for (i, step) in recipe.steps.iter().enumerate() {
        let at = |key| [Seg::Key("step"), Seg::Idx(i), Seg::Key(key)];
        match step {
            Step::Ocp(s) => {
                c.positive(&at("duration_s"), s.duration_s)?;
                c.positive(&at("sample_interval_s"), s.sample_interval_s)?;
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
            Step::Wait(s) => c.positive(&at("duration_s"), s.duration_s)?,
            Step::Cv(s) => {
                c.require(
                    &at("begin_V"),
                    inside(s.begin_V),
                    &format!("inside limits.potential_window_V = {window}"),
                    &num(s.begin_V),
                )?;
                for (j, &vertex_V) in s.vertex_V.iter().enumerate() {
                    let path = [
                        Seg::Key("step"),
                        Seg::Idx(i),
                        Seg::Key("vertex_V"),
                        Seg::Idx(j),
                    ];
                    c.require(
                        &path,
                        inside(vertex_V),
                        &format!("inside limits.potential_window_V = {window}"),
                        &num(vertex_V),
                    )?;
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
                    let path = [
                        Seg::Key("step"),
                        Seg::Idx(i),
                        Seg::Key("levels_V"),
                        Seg::Idx(j),
                    ];
                    c.require(
                        &path,
                        inside(level_V),
                        &format!("inside limits.potential_window_V = {window}"),
                        &num(level_V),
                    )?;
                }
                c.positive(&at("sample_interval_s"), s.sample_interval_s)?;
                for (j, &hold_s) in s.hold_s.iter().enumerate() {
                    let path = [
                        Seg::Key("step"),
                        Seg::Idx(i),
                        Seg::Key("hold_s"),
                        Seg::Idx(j),
                    ];
                    c.positive(&path, hold_s)?;
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
        }
    }
    Ok(())
}

/// Which transport a driver talks over, for the resource-string check.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Transport {
    Serial,
    Tcp,
}

/// Syntax check of a VISA-style resource string; returns its transport
/// (`None` for `sim`) or a message saying what is wrong.
fn parse_resource(resource: &str) -> Result<Option<Transport>, String> {
    const EXPECTED: &str =
        "expected `sim`, `ASRL<device path>::INSTR` or `TCPIP[n]::<host>::<port>::SOCKET`";
    if resource == "sim" {
        return Ok(None);
    }
    if let Some(path) = resource
        .strip_prefix("ASRL")
        .and_then(|r| r.strip_suffix("::INSTR"))
    {
        if path.is_empty() || path.contains("::") {
            return Err(format!(
                "resource `{resource}` has no device path; {EXPECTED}"
            ));
        }
        if path.chars().all(|c| c.is_ascii_digit()) {
            return Err(format!(
                "resource `{resource}`: numeric ASRL not supported, give the device path \
                 (e.g. `ASRL/dev/ttyACM0::INSTR`)"
            ));
        }
        return Ok(Some(Transport::Serial));
    }
    if let Some(rest) = resource.strip_prefix("TCPIP") {
        let rest = rest.trim_start_matches(|c: char| c.is_ascii_digit());
        let parts: Vec<&str> = rest.split("::").collect();
        if let ["", host, port, "SOCKET"] = parts[..] {
            if host.is_empty() {
                return Err(format!("resource `{resource}` has no host; {EXPECTED}"));
            }
            return match port.parse::<u16>() {
                Ok(p) if p > 0 => Ok(Some(Transport::Tcp)),
                _ => Err(format!(
                    "resource `{resource}`: port `{port}` is not a TCP port (1-65535)"
                )),
            };
        }
    }
    Err(format!(
        "resource `{resource}` is not a VISA resource string; {EXPECTED}"
    ))
}

/// One instrument's driver/resource pair: driver known, resource well formed
/// and of the transport the driver speaks.
fn check_instrument(
    doc: &Doc<'_>,
    name: &str,
    driver: &str,
    resource: &str,
    known: &[&str],
    transport: Transport,
) -> Result<(), RecipeError> {
    let path = |key| [Seg::Key("instruments"), Seg::Key(name), Seg::Key(key)];
    if !known.contains(&driver) {
        return Err(doc.err(
            &path("driver"),
            format!(
                "unknown {name} driver `{driver}`; known drivers: {}",
                known.join(", ")
            ),
        ));
    }
    match parse_resource(resource) {
        Err(message) => Err(doc.err(&path("resource"), message)),
        Ok(Some(t)) if t != transport => {
            let want = match transport {
                Transport::Serial => "a serial port (`ASRL<device path>::INSTR`) or `sim`",
                Transport::Tcp => "a TCP socket (`TCPIP::<host>::<port>::SOCKET`) or `sim`",
            };
            Err(doc.err(
                &path("resource"),
                format!("driver `{driver}` talks over {want} (got `{resource}`)"),
            ))
        }
        Ok(_) => Ok(()),
    }
}

/// Bench checks; fills `sim` with the default virtual bench when an
/// instrument is `sim` and the file has no `[sim]` table.
pub(crate) fn validate_bench(bench: &mut BenchConfig, doc: &Doc<'_>) -> Result<(), RecipeError> {
    let c = Checker { doc };
    let pot = &bench.instruments.potentiostat;
    let defl = &bench.instruments.deflection;
    check_instrument(
        doc,
        "potentiostat",
        &pot.driver,
        &pot.resource,
        KNOWN_POTENTIOSTAT_DRIVERS,
        Transport::Serial,
    )?;
    check_instrument(
        doc,
        "deflection",
        &defl.driver,
        &defl.resource,
        KNOWN_DEFLECTION_DRIVERS,
        Transport::Tcp,
    )?;

    let p = |key| {
        [
            Seg::Key("instruments"),
            Seg::Key("potentiostat"),
            Seg::Key(key),
        ]
    };
    c.require(&p("baud"), pot.baud > 0, "> 0", &pot.baud.to_string())?;
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
    c.non_negative(&p("trigger_latency_s"), pot.trigger_latency_s)?;
    c.positive(&p("timeout_s"), pot.timeout_s)?;

    let d = |key| {
        [
            Seg::Key("instruments"),
            Seg::Key("deflection"),
            Seg::Key(key),
        ]
    };
    c.positive(&d("sample_interval_s"), defl.sample_interval_s)?;
    c.positive(&d("range_V"), defl.range_V)?;
    c.require(
        &d("max_samples"),
        defl.max_samples >= 1,
        ">= 1",
        &defl.max_samples.to_string(),
    )?;
    c.positive(&d("invols_nm_per_V"), defl.invols_nm_per_V)?;
    c.positive(&d("spring_constant_N_per_m"), defl.spring_constant_N_per_m)?;
    c.positive(&d("timeout_s"), defl.timeout_s)?;

    let uses_sim = pot.resource == "sim" || defl.resource == "sim";
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
        f.nodes >= MIN_SIM_NODES,
        &format!(">= {MIN_SIM_NODES}"),
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
    if let Some(t_s) = faults.potentiostat_error_after_s {
        c.non_negative(&at("faults", "potentiostat_error_after_s"), t_s)?;
    }
    if let Some(t_s) = faults.current_spike_after_s {
        c.non_negative(&at("faults", "current_spike_after_s"), t_s)?;
    }
    if let Some(t_s) = faults.potentiostat_silent_after_s {
        c.non_negative(&at("faults", "potentiostat_silent_after_s"), t_s)?;
    }
    c.finite(&at("faults", "current_spike_A"), faults.current_spike_A)?;
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
    c.finite(&at("offset_s"), clock.offset_s)?;
    // The device clock rate is (1 + drift_ppm 1e-6); it must stay positive.
    c.require(
        &at("drift_ppm"),
        clock.drift_ppm.is_finite() && clock.drift_ppm.abs() < 1e6,
        "between -1e6 and 1e6",
        &num(clock.drift_ppm),
    )?;
    c.non_negative(&at("jitter_s"), clock.jitter_s)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::{Transport, parse_resource, slug};

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

    #[test]
    fn resources_are_classified_or_explained() {
        assert!(matches!(parse_resource("sim"), Ok(None)));
        assert!(matches!(
            parse_resource("ASRL/dev/ttyACM0::INSTR"),
            Ok(Some(Transport::Serial))
        ));
        assert!(matches!(
            parse_resource("TCPIP::127.0.0.1::40123::SOCKET"),
            Ok(Some(Transport::Tcp))
        ));
        assert!(matches!(
            parse_resource("TCPIP0::lab-dmm.local::5025::SOCKET"),
            Ok(Some(Transport::Tcp))
        ));
        let err = |r| parse_resource(r).err().unwrap_or_default();
        assert!(err("ASRL3::INSTR").contains("numeric ASRL not supported"));
        assert!(err("ASRL::INSTR").contains("no device path"));
        assert!(err("TCPIP::host::0::SOCKET").contains("not a TCP port"));
        assert!(err("TCPIP::host::99999::SOCKET").contains("not a TCP port"));
        assert!(err("TCPIP::::5025::SOCKET").contains("no host"));
        assert!(err("TCPIP::host::5025::INSTR").contains("not a VISA resource"));
        assert!(err("/dev/ttyACM0").contains("not a VISA resource"));
        assert!(err("").contains("not a VISA resource"));
    }
}
