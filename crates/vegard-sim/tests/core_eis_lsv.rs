//! `meas_loop_eis`, `meas_loop_lsv` and the CA loop's measured potential,
//! over the potentiostat's pseudo-terminal.
// Test helpers: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

mod common;

use common::{Pstat, decode_package};
use vegard_recipe::SimParams;
use vegard_sim::VirtualBench;
use vegard_sim::model::impedance_ohm;

fn params(speed: f64, T_K: f64) -> SimParams {
    let mut p = SimParams {
        time_acceleration: speed,
        ..SimParams::default()
    };
    p.cell.T_K = T_K;
    p
}

/// 1 kHz down to 1 Hz, 7 points (2 per decade), 7.071 mV RMS (10 mV peak)
/// around 0.4 V; device time sum(2/f + 0.05) = 3.27 s.
const EIS_SCRIPT: &str = "e\nvar f\nvar r\nvar j\nset_pgstat_chan 0\nset_pgstat_mode 3\n\
set_range ba 10m\nset_autoranging ba 1n 10m\nset_e 400m\ncell_on\n\
meas_loop_eis f r j 7071u 1k 1 7i 400m\n  pck_start\n    pck_add f\n    pck_add r\n\
    pck_add j\n  pck_end\nendloop\non_finished:\n  cell_off\n\n";

/// Runs the EIS script on a bench whose cell (and stage) is at `T_K` and
/// checks every point against the small-signal model at that temperature.
fn eis_matches_the_model_at(T_K: f64) -> Vec<(f64, f64, f64)> {
    let p = params(20.0, T_K);
    let bench = VirtualBench::start(&p).unwrap();
    let mut pstat = Pstat::open(&bench);
    pstat.send(EIS_SCRIPT);
    let lines = pstat.until_script_end(10.0);
    assert_eq!(&lines[..2], ["e", "M0000"], "{lines:?}");
    assert_eq!(&lines[lines.len() - 2..], ["*", ""]);
    let packages = &lines[2..lines.len() - 2];
    assert_eq!(packages.len(), 7, "{packages:?}");
    let mut points = Vec::new();
    for (k, l) in packages.iter().enumerate() {
        let v = decode_package(l);
        let kinds: Vec<&str> = v.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(kinds, ["dc", "cc", "cd"], "{l}");
        // Status OK and a current range on both impedance fields.
        for field in l.split(';').skip(1) {
            let meta: Vec<&str> = field.split(',').skip(1).collect();
            assert_eq!(meta.len(), 2, "{l}");
            assert_eq!(meta[0], "10", "{l}");
        }
        let f_Hz = v[0].1;
        // Log-spaced by the device: 1000 * 1e-3^(k/6).
        let f_expected = 1000.0 * 10f64.powf(-0.5 * k as f64);
        assert!(
            (f_Hz / f_expected - 1.0).abs() < 1e-5,
            "{f_Hz} vs {f_expected}"
        );
        let z = impedance_ohm(&p, 0.4, f_Hz);
        let (re, im) = (v[1].1, v[2].1);
        let err = (re - z.re).hypot(im - z.im) / z.norm();
        // noise_rel = 0.2 % rms: 1 % is 5 sigma.
        assert!(
            err < 0.01,
            "T = {T_K} K, f = {f_Hz} Hz: Z = {re} {im:+}j vs {z:?}"
        );
        assert!(im < 0.0, "capacitive cell: Z'' < 0, got {im}");
        points.push((f_Hz, re, im));
    }
    // The truth log has the noiseless impedance, at the cell temperature,
    // and the instants follow the per-point timing 2/f + 0.05 s.
    let truth = bench.truth_log();
    assert_eq!(truth.impedance.len(), 7);
    assert_eq!(truth.potentiostat.len(), 7);
    // This script raises no trigger edge, so the loop's start is only known
    // from the `M0000` line's stamp, taken when it is written (tens of ms
    // late on a loaded machine). The first point is checked loosely against
    // it; the spacing of the points, on the device clock, tightly.
    let t_m = bench
        .log()
        .iter()
        .find(|e| e.line == "M0000")
        .unwrap()
        .t_true_s;
    let first = truth.impedance[0];
    let d0 = vegard_recipe::eis_point_duration_s(first.f_Hz);
    assert!(
        (first.t_true_s - t_m - d0).abs() < 0.2,
        "first point {} s after M0000, expected {d0}",
        first.t_true_s - t_m
    );
    let t0 = first.t_true_s - d0;
    let mut t_dev = 0.0;
    for (k, point) in truth.impedance.iter().enumerate() {
        assert_eq!(point.index, k as u64);
        assert!((point.T_K - T_K).abs() < 1e-9);
        assert_eq!(point.E_dc_V, 0.4);
        let z = impedance_ohm(&p, 0.4, point.f_Hz);
        assert!((point.Z_re_ohm - z.re).abs() < 1e-9 * z.norm());
        t_dev += vegard_recipe::eis_point_duration_s(point.f_Hz);
        // Device clock: offset from the edge only through drift (20 ppm
        // of ~2.5 s) and 20 us jitter.
        let residual = point.t_true_s - t0 - t_dev;
        assert!(residual.abs() < 1e-3, "point {k}: {residual} s");
    }
    assert!(!bench.cell_is_on());
    points
}

#[test]
fn eis_reports_the_small_signal_impedance_at_25_c() {
    eis_matches_the_model_at(298.15);
}

#[test]
fn eis_reports_the_small_signal_impedance_at_65_c() {
    let hot = eis_matches_the_model_at(338.15);
    // The test has the power to tell: at 65 C the Warburg and charge
    // transfer are several times smaller, so at 1 Hz the 25 C model is off
    // by far more than the 1 % tolerance.
    let cold = impedance_ohm(&params(1.0, 298.15), 0.4, 1.0);
    let (_, re, im) = hot[6];
    assert!((re - cold.re).hypot(im - cold.im) / cold.norm() > 0.2);
}

#[test]
fn z_aborts_an_eis_loop_within_a_point() {
    // 10 Hz to 0.01 Hz: the last points take 20 and 200 s of device time.
    let bench = VirtualBench::start(&params(20.0, 298.15)).unwrap();
    let mut p = Pstat::open(&bench);
    p.send(
        "e\nvar f\nvar r\nvar j\nset_e 400m\ncell_on\nmeas_loop_eis f r j 7m 10 10m 4i 400m\n\
         pck_start\npck_add f\npck_add r\npck_add j\npck_end\nendloop\non_finished:\ncell_off\n\n",
    );
    assert_eq!(p.line(2.0).as_deref(), Some("e"));
    assert_eq!(p.line(2.0).as_deref(), Some("M0000"));
    // The 10 Hz point is due after 0.25 s true (12.5 ms wall).
    assert!(p.line(2.0).unwrap().starts_with("Pdc"));
    assert!(bench.cell_is_on());
    let asked = std::time::Instant::now();
    p.send("Z\n");
    let rest = p.until_script_end(2.0);
    assert!(asked.elapsed().as_secs_f64() < 0.5);
    let z = rest.iter().position(|l| l == "Z").unwrap();
    assert_eq!(&rest[z..], ["Z", "*", ""], "{rest:?}");
    assert!(!bench.cell_is_on());
}

#[test]
fn an_injected_fault_stops_an_eis_loop_with_4004() {
    let mut prm = params(40.0, 298.15);
    prm.faults.potentiostat_error_after_s = Some(1.0);
    let bench = VirtualBench::start(&prm).unwrap();
    let mut p = Pstat::open(&bench);
    // 10, 3.16 and 1 Hz are due at 0.25, 0.93 and 2.98 s: two packages
    // before the fault at 1.0 s.
    p.send(
        "e\nvar f\nvar r\nvar j\nset_e 400m\ncell_on\nmeas_loop_eis f r j 7m 10 1 3i 400m\n\
         pck_start\npck_add f\npck_add r\npck_add j\npck_end\nendloop\non_finished:\ncell_off\n\n",
    );
    let lines = p.until_script_end(5.0);
    let n = lines.len();
    assert_eq!(
        lines.iter().filter(|l| l.starts_with('P')).count(),
        2,
        "{lines:?}"
    );
    assert!(lines[n - 2].starts_with("!4004"), "{lines:?}");
    assert!(!bench.cell_is_on());
}

#[test]
fn lsv_sweeps_once_with_one_sample_per_step() {
    let bench = VirtualBench::start(&params(20.0, 298.15)).unwrap();
    let mut p = Pstat::open(&bench);
    // 0.2 -> 0.8 V in 10 mV steps at 100 mV/s: 60 samples, 0.1 s apart.
    p.send(
        "e\nvar p\nvar c\nset_range ba 10m\nset_e 200m\ncell_on\n\
         meas_loop_lsv p c 200m 800m 10m 100m\n  pck_start\n  pck_add p\n  pck_add c\n  pck_end\n\
         endloop\non_finished:\ncell_off\n\n",
    );
    let lines = p.until_script_end(10.0);
    assert_eq!(&lines[..2], ["e", "M0000"]);
    assert_eq!(&lines[lines.len() - 2..], ["*", ""]);
    let packages = &lines[2..lines.len() - 2];
    assert_eq!(packages.len(), 60);
    let mut currents = Vec::new();
    for (k, l) in packages.iter().enumerate() {
        let v = decode_package(l);
        assert_eq!(v[0].0, "da");
        assert_eq!(v[1].0, "ba");
        let expected = 0.2 + 0.01 * (k + 1) as f64;
        assert!((v[0].1 - expected).abs() < 1.5e-6, "E[{k}] = {}", v[0].1);
        currents.push(v[1].1);
    }
    // Starting 0.2 V below E0 the film is nearly full (the bench starts at
    // x = 1/2, so the first samples first charge it); sweeping up through
    // E0 = 0.4 V extracts ions: anodic current around the wave.
    let around_e0: f64 = currents[15..30].iter().sum::<f64>() / 15.0;
    assert!(around_e0 > 1e-5, "mean current near E0 {around_e0} A");
    // One sweep, device time 6 s: samples at trigger-less t0 + 0.1 (k+1).
    let truth = bench.truth_log();
    assert_eq!(truth.potentiostat.len(), 60);
    let dt = truth.potentiostat[59].t_true_s - truth.potentiostat[0].t_true_s;
    assert!((dt - 5.9).abs() < 1e-3, "{dt}");
}

#[test]
fn ca_reports_the_measured_potential() {
    let bench = VirtualBench::start(&params(20.0, 298.15)).unwrap();
    let mut p = Pstat::open(&bench);
    p.send(
        "e\nvar p\nvar c\nset_e 450m\ncell_on\nmeas_loop_ca p c 450m 20m 1\n  pck_start\n\
         \x20 pck_add p\n  pck_add c\n  pck_end\nendloop\non_finished:\ncell_off\n\n",
    );
    let lines = p.until_script_end(5.0);
    let packages: Vec<&String> = lines.iter().filter(|l| l.starts_with('P')).collect();
    assert_eq!(packages.len(), 50);
    let mut spread = 0.0f64;
    for l in packages {
        let v = decode_package(l);
        // `ab`, the measured potential: the set 0.45 V plus 50 uV rms noise
        // (no external sine on this bench).
        assert_eq!(v[0].0, "ab", "{l}");
        assert!((v[0].1 - 0.45).abs() < 5e-4, "{l}");
        spread = spread.max((v[0].1 - 0.45).abs());
        assert!(v[1].1 > 0.0, "anodic step above E0: {l}");
    }
    assert!(spread > 1e-6, "the measured potential carries noise");
}
