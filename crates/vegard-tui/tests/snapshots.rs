//! Rendered frames of synthetic runs at the three sizes the dashboard is
//! made for (80 × 24, the smallest; 120 × 40, the smallest full layout;
//! 200 × 60), as insta snapshots, and at each size a check that no panel's
//! text runs into its neighbour's. The states are built from DashEvents
//! only, the way the dashboard sees a run.
//!
//! Update after an intended change: `INSTA_UPDATE=always cargo test -p
//! vegard-tui --test snapshots`, then review the `.snap` diffs.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is a failure

use std::f64::consts::{FRAC_1_SQRT_2, PI};
use std::path::PathBuf;

use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::layout::Rect;
use vegard_tui::draw::{Focus, focus, layout};
use vegard_tui::input::{InputMode, UiState};
use vegard_tui::readout::sig4;
use vegard_tui::{DashEvent, DashState, LogLevel, Mode, PlanRow, draw};

fn plan() -> Vec<PlanRow> {
    let row = |index, kind: &str, label: &str, duration_s, cycles| PlanRow {
        index,
        kind: kind.into(),
        label: label.into(),
        duration_s,
        cycles,
    };
    vec![
        row(0, "ocp", "ocp 2 s", 2.0, 1),
        row(1, "cv", "cv 0.4->[0.9,-0.1] V @ 0.2 V/s x3", 30.0, 3),
        row(2, "temperature", "temperature -> 40.0 C", 60.0, 1),
        row(
            3,
            "eis",
            "eis 0.4 V ±10 mV 10000->0.01 Hz @ 40.0 C",
            555.0,
            31,
        ),
        row(
            4,
            "esm_sweep",
            "esm 0.4 V ±50 mV 1000->1 Hz (13 f) @ 40.0 C",
            120.0,
            13,
        ),
    ]
}

fn started() -> DashEvent {
    DashEvent::Started {
        run_dir: PathBuf::from("runs/20261124T025121Z_demo-cv"),
        total_s: 767.0,
        speed: 20.0,
        plan: plan(),
        instruments: vec![
            ("potentiostat".into(), "espbl_virtual R1.4.0".into()),
            (
                "deflection".into(),
                "Keysight Technologies,34465A,MY57800123,A.03.01-02.40-03.01 at ASRL/dev/pts/3::INSTR"
                    .into(),
            ),
        ],
    }
}

/// CV potential at time `t` into the step: 0.4 -> 0.9 -> -0.1 -> 0.4 at 0.2 V/s.
fn cv_e(t: f64) -> f64 {
    let s = (t * 0.2) % 2.0;
    if s < 0.5 {
        0.4 + s
    } else if s < 1.5 {
        0.9 - (s - 0.5)
    } else {
        -0.1 + (s - 1.5)
    }
}

/// A CV run: OCP 2 s, then `cycles_done` complete cycles plus `frac` of the next.
fn cv_state(mode: Mode, cycles_done: u32, frac: f64) -> DashState {
    let mut s = DashState::new(mode);
    s.apply(started());
    s.apply(DashEvent::Log {
        t_s: 0.0,
        level: LogLevel::Info,
        text: "run started (time ×20)".into(),
    });
    s.apply(DashEvent::StepStarted {
        index: 0,
        count: 5,
        kind: "ocp".into(),
        duration_s: 2.0,
        sweep: String::new(),
    });
    let n0 = 200;
    let t: Vec<f64> = (0..n0).map(|k| 0.01 * f64::from(k)).collect();
    s.apply(DashEvent::Potentiostat {
        E_V: t.iter().map(|t| 0.4 + 1e-4 * (t * 9.0).sin()).collect(),
        I_A: vec![f64::NAN; n0 as usize],
        cycle: vec![0; n0 as usize],
        step: vec![0; n0 as usize],
        t_s: t,
    });
    s.apply(DashEvent::StepStarted {
        index: 1,
        count: 5,
        kind: "cv".into(),
        duration_s: 30.0,
        sweep: String::new(),
    });
    s.apply(DashEvent::Log {
        t_s: 2.0,
        level: LogLevel::Info,
        text: "step 2 cv started".into(),
    });
    let dt = 0.01;
    let n = ((f64::from(cycles_done) + frac) * 10.0 / dt) as usize;
    let (mut t, mut e, mut i, mut cyc) = (vec![], vec![], vec![], vec![]);
    for k in 0..n {
        let tk = k as f64 * dt;
        let ek = cv_e(tk);
        let sweep = if (tk * 0.2) % 2.0 < 0.5 || (tk * 0.2) % 2.0 >= 1.5 {
            1.0
        } else {
            -1.0
        };
        // Double layer + a faradaic wave at E0 = 0.4 V, sign with the sweep.
        let ik = 150e-6 * 0.2 * sweep + sweep * 4e-4 * (-((ek - 0.4) / 0.08).powi(2)).exp();
        t.push(2.0 + tk);
        e.push(ek);
        i.push(ik);
        cyc.push(1 + (tk / 10.0) as u32);
    }
    s.apply(DashEvent::Potentiostat {
        t_s: t.clone(),
        E_V: e,
        I_A: i.clone(),
        cycle: cyc,
        step: vec![1; n],
    });
    // Deflection: Vegard line in the step's charge plus a slow drift.
    let mut q = 0.0;
    let mut u = Vec::with_capacity(n);
    for k in 0..n {
        if k > 0 {
            q += 0.5 * (i[k] + i[k - 1]) * dt * 1e3;
        }
        u.push(-0.2 * q + 0.002 * t[k]);
    }
    s.apply(DashEvent::Deflection {
        t_s: t.clone(),
        deflection_nm: u,
    });
    let elapsed = 2.0 + t.last().map_or(0.0, |x| x - 2.0);
    s.apply(DashEvent::Progress {
        step: 1,
        count: 5,
        kind: "cv".into(),
        cycle: (cycles_done + 1).min(3),
        cycles: 3,
        elapsed_s: elapsed,
        eta_s: 647.0 - elapsed,
    });
    s.apply(DashEvent::Clock {
        device: "potentiostat".into(),
        offset_s: 2.437,
        drift_ppm: 19.8,
        alignment_error_s: Some(0.00021),
    });
    s.apply(DashEvent::Clock {
        device: "deflection".into(),
        offset_s: 2.437,
        drift_ppm: -35.2,
        alignment_error_s: Some(0.00021),
    });
    for c in 1..=cycles_done {
        s.apply(DashEvent::Log {
            t_s: 2.0 + 10.0 * f64::from(c),
            level: LogLevel::Info,
            text: format!("cycle {c} done"),
        });
    }
    s
}

fn eis_state() -> DashState {
    let mut s = cv_state(Mode::Run, 3, 0.0);
    s.apply(DashEvent::StepStarted {
        index: 3,
        count: 5,
        kind: "eis".into(),
        duration_s: 555.0,
        sweep: String::new(),
    });
    // Randles cell with a finite reflective Warburg element.
    let (rs, rct, cdl, tau, rw) = (10.0, 40.0, 150e-6, 26.7, 60.0);
    let n = 24;
    for k in 0..n {
        let f = 1e4 * 10f64.powf(-f64::from(k) / 5.0);
        let w = 2.0 * PI * f;
        // Complex arithmetic by hand: Z = Rs + 1/(jωC + 1/(Rct + Zw)),
        // Zw = Rw coth(sqrt(jωτ))/sqrt(jωτ), approximated for display by
        // Rw/ sqrt(jωτ) at high f and Rw/3 - j/(ωC_int) at low f.
        let s_mag = (w * tau).sqrt();
        let (zw_re, zw_im) = if w * tau > 3.0 {
            (rw / s_mag * FRAC_1_SQRT_2, -rw / s_mag * FRAC_1_SQRT_2)
        } else {
            (rw / 3.0, -rw / (w * tau))
        };
        let (a, b) = (rct + zw_re, zw_im);
        let den = a * a + b * b;
        let (ya, yb) = (a / den, -b / den + w * cdl);
        let d2 = ya * ya + yb * yb;
        let re = rs + ya / d2;
        let im = -yb / d2;
        s.apply(DashEvent::Impedance {
            step: 3,
            f_Hz: f,
            Z_re_ohm: re,
            Z_im_ohm: im,
        });
    }
    s.apply(DashEvent::Progress {
        step: 3,
        count: 5,
        kind: "eis".into(),
        cycle: n,
        cycles: 31,
        elapsed_s: 300.0,
        eta_s: 347.0,
    });
    s.apply(DashEvent::Log {
        t_s: 92.0,
        level: LogLevel::Info,
        text: "step 4 eis started at 313.15 K".into(),
    });
    s
}

fn temperature_state() -> DashState {
    let mut s = cv_state(Mode::Run, 3, 0.0);
    s.apply(DashEvent::StepStarted {
        index: 2,
        count: 5,
        kind: "temperature".into(),
        duration_s: 60.0,
        sweep: String::new(),
    });
    for k in 0..240 {
        let t = f64::from(k) * 0.5;
        let before = t < 32.0;
        let x = (t - 32.0).max(0.0);
        // Second-order approach with a small overshoot.
        let tk = if before {
            298.15
        } else {
            313.15 - 15.0 * (-x / 12.0).exp() * (x / 9.0).cos()
        };
        s.apply(DashEvent::Temperature {
            t_s: t,
            T_K: tk,
            setpoint_K: (!before).then_some(313.15),
        });
    }
    s.apply(DashEvent::Progress {
        step: 2,
        count: 5,
        kind: "temperature".into(),
        cycle: 1,
        cycles: 1,
        elapsed_s: 110.0,
        eta_s: 537.0,
    });
    s
}

fn paused_state() -> DashState {
    let mut s = cv_state(Mode::Run, 1, 0.6);
    s.apply(DashEvent::Paused(true));
    s.apply(DashEvent::Log {
        t_s: 17.8,
        level: LogLevel::Marker,
        text: "bubble on the tip".into(),
    });
    s.apply(DashEvent::Log {
        t_s: 18.0,
        level: LogLevel::Warn,
        text: "deflection near the range limit (9.1 V of 10 V)".into(),
    });
    s.apply(DashEvent::Clock {
        device: "deflection".into(),
        offset_s: 2.437,
        drift_ppm: -135.0,
        alignment_error_s: Some(0.0023),
    });
    s
}

/// After the CV and EIS: an ESM sweep at 40 °C, 9 of 13 frequencies done,
/// with the lock-in's sine on the potential (its charge oscillates, and a
/// u–Q fit over it would mean nothing).
fn esm_state() -> DashState {
    let mut s = eis_state();
    s.apply(DashEvent::StepStarted {
        index: 4,
        count: 5,
        kind: "esm_sweep".into(),
        duration_s: 120.0,
        sweep: String::new(),
    });
    s.apply(DashEvent::Temperature {
        t_s: 92.0,
        T_K: 313.16,
        setpoint_K: Some(313.15),
    });
    let n = 400;
    let t: Vec<f64> = (0..n).map(|k| 92.0 + 0.01 * f64::from(k)).collect();
    s.apply(DashEvent::Potentiostat {
        E_V: t
            .iter()
            .map(|t| 0.4 + 0.05 * (t * 2.0 * PI * 5.0).sin())
            .collect(),
        I_A: t
            .iter()
            .map(|t| 2e-5 * (t * 2.0 * PI * 5.0).cos())
            .collect(),
        cycle: vec![9; n as usize],
        step: vec![4; n as usize],
        t_s: t.clone(),
    });
    s.apply(DashEvent::Deflection {
        deflection_nm: t
            .iter()
            .map(|t| 0.02 * (t * 2.0 * PI * 5.0 - 0.7).sin())
            .collect(),
        t_s: t.clone(),
    });
    s.apply(DashEvent::Temperature {
        t_s: 95.99,
        T_K: 313.14,
        setpoint_K: Some(313.15),
    });
    for k in 0..9 {
        let f = 1000.0 * 10f64.powf(-f64::from(k) / 4.0);
        let x = f / 30.0;
        s.apply(DashEvent::EsmPoint {
            step: 4,
            f_Hz: f,
            amplitude_nm_per_V: 0.8 / (1.0 + x.sqrt()),
            phase_deg: -x.atan().to_degrees() / 2.0,
        });
    }
    s.apply(DashEvent::Progress {
        step: 4,
        count: 5,
        kind: "esm_sweep".into(),
        cycle: 9,
        cycles: 13,
        elapsed_s: 700.0,
        eta_s: 67.0,
    });
    s
}

fn render(state: &DashState, ui: &UiState, w: u16, h: u16) -> Terminal<TestBackend> {
    let mut terminal = Terminal::new(TestBackend::new(w, h)).expect("test backend");
    terminal
        .draw(|f| draw(f, state, ui))
        .expect("draw to the test backend");
    terminal
}

/// The sizes every scenario is drawn and checked at.
const SIZES: [(u16, u16); 3] = [(80, 24), (120, 40), (200, 60)];

/// A cell with something drawn in it (braille blank counts as empty).
fn ink(sym: &str) -> bool {
    !sym.chars().all(|c| c == ' ' || c == '\u{2800}')
}

/// Box-drawing characters: two panel borders side by side are a frame, not
/// an overlap.
fn boxy(sym: &str) -> bool {
    sym.chars().all(|c| ('\u{2500}'..='\u{257f}').contains(&c))
}

/// The layout's panels lie inside the terminal and do not intersect, and in
/// the rendered frame no cell of one panel touches a cell of the panel to
/// its right unless both are borders: no tick label, title or trace runs
/// into the next panel.
fn assert_no_overlap(name: &str, state: &DashState, ui: &UiState, w: u16, h: u16) {
    let area = Rect::new(0, 0, w, h);
    let panels = layout(area, state, ui);
    assert!(!panels.is_empty(), "{name} {w}x{h}: no layout");
    for (k, (p, r)) in panels.iter().enumerate() {
        assert!(
            r.right() <= w && r.bottom() <= h,
            "{name} {w}x{h}: {p:?} {r:?} outside the terminal"
        );
        for (q, o) in &panels[k + 1..] {
            assert!(
                r.area() == 0 || o.area() == 0 || !r.intersects(*o),
                "{name} {w}x{h}: {p:?} {r:?} overlaps {q:?} {o:?}"
            );
        }
    }
    let term = render(state, ui, w, h);
    let buf = term.backend().buffer();
    for (p, r) in &panels {
        for (q, o) in &panels {
            if r.area() == 0 || o.area() == 0 || r.right() != o.x {
                continue;
            }
            for y in r.y.max(o.y)..r.bottom().min(o.bottom()) {
                let a = buf[(r.right() - 1, y)].symbol();
                let b = buf[(o.x, y)].symbol();
                assert!(
                    !(ink(a) && ink(b)) || (boxy(a) && boxy(b)),
                    "{name} {w}x{h}: {p:?} runs into {q:?} at row {y}: {a:?}{b:?}"
                );
            }
        }
    }
}

/// The rendered frame's rows as strings.
fn rows(state: &DashState, ui: &UiState, w: u16, h: u16) -> Vec<String> {
    let term = render(state, ui, w, h);
    let buf = term.backend().buffer();
    (0..h)
        .map(|y| (0..w).map(|x| buf[(x, y)].symbol()).collect())
        .collect()
}

macro_rules! snap {
    ($name:ident, $state:expr, $ui:expr) => {
        #[test]
        fn $name() {
            let state = $state;
            let ui = $ui;
            for (w, h) in SIZES {
                insta::assert_snapshot!(
                    format!("{}_{w}x{h}", stringify!($name)),
                    render(&state, &ui, w, h).backend()
                );
                if !ui.help {
                    assert_no_overlap(stringify!($name), &state, &ui, w, h);
                }
            }
        }
    };
}

snap!(
    cv_in_progress,
    cv_state(Mode::Run, 2, 0.7),
    UiState::default()
);
snap!(eis_step, eis_state(), UiState::default());
snap!(temperature_step, temperature_state(), UiState::default());
snap!(
    paused_with_marker_and_warning,
    paused_state(),
    UiState {
        input: InputMode::Marker("second bubble".into()),
        ..UiState::default()
    }
);
snap!(
    help_overlay,
    cv_state(Mode::Run, 2, 0.7),
    UiState {
        help: true,
        ..UiState::default()
    }
);
snap!(
    watch_finished,
    {
        let mut s = cv_state(Mode::Watch, 3, 0.0);
        s.apply(DashEvent::Finished {
            status: "complete".into(),
            reason: None,
        });
        s
    },
    UiState::default()
);
snap!(esm_sweep, esm_state(), UiState::default());

/// The readout's first line shows the last sample's E (0.1 mV), I (four
/// significant digits, µA here) and u (1 pm) with units, at every size.
#[test]
fn readout_shows_the_last_samples() {
    let state = cv_state(Mode::Run, 2, 0.7);
    let e = *state.pot.E_V.last().unwrap();
    let i_uA = *state.pot.I_A.last().unwrap() * 1e6;
    let u = *state.defl.nm.last().unwrap();
    for (w, h) in SIZES {
        let r = rows(&state, &UiState::default(), w, h);
        let readout = r[2..4].join("\n");
        assert!(
            readout.contains(&format!("E {e:.4} V")),
            "{w}x{h}: {readout}"
        );
        assert!(
            readout.contains(&format!("I {} µA", sig4(i_uA))),
            "{w}x{h}: {readout}"
        );
        assert!(
            readout.contains(&format!("u {u:.3} nm")),
            "{w}x{h}: {readout}"
        );
        assert!(
            readout.contains("T —"),
            "{w}x{h}: no stage, no T: {readout}"
        );
        assert!(
            readout.contains("(cv)"),
            "{w}x{h}: kappa marked as the CV's: {readout}"
        );
    }
}

/// During an ESM sweep the right-hand panels are its amplitude and phase,
/// no u–Q panel shows a kappa, and the readout's kappa is the last CV's,
/// marked as such.
#[test]
fn esm_sweep_shows_its_spectrum_not_a_kappa() {
    let state = esm_state();
    let ui = UiState::default();
    assert_eq!(focus(&state, &ui), Focus::Esm);
    for (w, h) in SIZES {
        let text = rows(&state, &ui, w, h).join("\n");
        assert!(text.contains("ESM |u|/V"), "{w}x{h}");
        assert!(text.contains("ESM phase"), "{w}x{h}");
        assert!(
            !text.contains("κ ="),
            "{w}x{h}: no kappa panel in an ESM sweep"
        );
        assert!(text.contains("(last cv, step 2)"), "{w}x{h}: {text}");
    }
}

/// A stage holding its setpoint within sensor noise draws as a flat line on
/// an axis at least 1 K wide, not as an oscillation filling the panel.
#[test]
fn temperature_axis_has_a_floor() {
    let mut state = DashState::new(Mode::Run);
    state.apply(DashEvent::StepStarted {
        index: 0,
        count: 1,
        kind: "temperature".into(),
        duration_s: 60.0,
        sweep: String::new(),
    });
    for k in 0..200 {
        state.apply(DashEvent::Temperature {
            t_s: f64::from(k) * 0.5,
            T_K: 313.15 + 0.02 * (f64::from(k) * 1.3).sin(),
            setpoint_K: Some(313.15),
        });
    }
    let r = rows(&state, &UiState::default(), 120, 40);
    let text = r.join("\n");
    // Labels of the 1 K floor centred on 313.15 K (5 % margin not added).
    assert!(text.contains("313.65"), "{text}");
    assert!(text.contains("312.65"), "{text}");
}

/// Long plan labels and instrument IDs end in "…" at a word boundary in
/// the full layout instead of being cut ("@ 0.2 V/", "ASRL/dev/pts/3::INST").
#[test]
fn long_text_is_elided_not_cut() {
    let state = eis_state();
    let text = rows(&state, &UiState::default(), 120, 40).join("\n");
    assert!(text.contains("deflection: Keysight…"), "{text}");
    assert!(!text.contains("::INST"), "{text}");
}

/// Between and around the three reference sizes (including both sides of
/// the compact/full switch at 120 × 36 and below 80 × 24), every scenario
/// draws without panicking and without one panel running into another.
#[test]
fn no_overlap_at_other_sizes() {
    let scenarios = [
        ("cv", cv_state(Mode::Run, 2, 0.7)),
        ("eis", eis_state()),
        ("esm", esm_state()),
        ("temperature", temperature_state()),
        ("paused", paused_state()),
    ];
    let ui = UiState::default();
    for (name, state) in &scenarios {
        for (w, h) in [
            (60, 18),
            (79, 23),
            (100, 30),
            (119, 40),
            (120, 35),
            (120, 36),
            (160, 48),
            (250, 70),
        ] {
            assert_no_overlap(name, state, &ui, w, h);
        }
    }
}
