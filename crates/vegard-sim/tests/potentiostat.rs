//! The MethodSCRIPT potentiostat emulator, driven over its pseudo-terminal.

mod common;

use common::{Pstat, decode_package, serial_path};
use std::time::{Duration, Instant};
use vegard_recipe::SimParams;
use vegard_sim::{Device, SampleTruth, VirtualBench};

const CV_SCRIPT: &str = "e\nvar c\nvar p\nset_pgstat_chan 0\nset_pgstat_mode 2\n\
set_max_bandwidth 400\nset_range ba 10m\nset_autoranging ba 1n 10m\nset_e 400m\n\
set_gpio_cfg 0x01 1\ncell_on\nset_gpio 0x01i\n\
meas_loop_cv p c 400m 900m -100m 2m 200m nscans(3)\n  pck_start\n    pck_add p\n\
    pck_add c\n  pck_end\nendloop\nset_gpio 0x00i\non_finished:\n  cell_off\n\n";

fn params(speed: f64) -> SimParams {
    SimParams {
        time_acceleration: speed,
        ..SimParams::default()
    }
}

#[test]
fn host_commands_answer_like_the_firmware() {
    let bench = VirtualBench::start(&params(20.0)).unwrap();
    let mut p = Pstat::open(&bench);
    p.send("t\n");
    assert_eq!(p.line(2.0).as_deref(), Some("tes4_lr1.4"));
    assert_eq!(p.line(2.0).as_deref(), Some("R1.4.0#vegard virtual bench*"));
    p.send("i\nv\nZ\n");
    assert_eq!(p.line(2.0).as_deref(), Some("iVIRTUAL-EMSTAT-0001"));
    assert_eq!(p.line(2.0).as_deref(), Some("v0104"));
    assert_eq!(p.line(2.0).as_deref(), Some("Z!0006"));
    assert!(bench.received(Device::Potentiostat, "v"));
    assert!(!bench.received(Device::Deflection, "v"));
    bench.shutdown();
}

#[test]
fn the_pty_opens_by_path_exclusively_and_reopens() {
    let bench = VirtualBench::start(&params(20.0)).unwrap();
    let path = serial_path(&bench.potentiostat_resource().to_string());
    assert!(path.starts_with("/dev/"), "{path}");
    let mut first = Pstat::open(&bench);
    // A second exclusive open of a port in use fails, as with hardware.
    assert!(
        serialport::new(&path, 230_400)
            .timeout(Duration::from_millis(50))
            .open()
            .is_err()
    );
    first.send("i\n");
    assert_eq!(first.line(2.0).as_deref(), Some("iVIRTUAL-EMSTAT-0001"));
    drop(first);
    // Closing and reopening works, and the device is still there.
    let mut again = Pstat::open(&bench);
    again.send("v\n");
    assert_eq!(again.line(2.0).as_deref(), Some("v0104"));
}

#[test]
fn cv_script_emits_every_sample_on_time() {
    let speed = 20.0;
    let bench = VirtualBench::start(&params(speed)).unwrap();
    let mut p = Pstat::open(&bench);
    let started = Instant::now();
    p.send(CV_SCRIPT);
    // 3 scans x 2 V / 0.2 V/s = 30 s true = 1.5 s wall at 20x.
    let lines = p.until_script_end(10.0);
    let wall_s = started.elapsed().as_secs_f64();
    assert!(wall_s > 30.0 / speed * 0.97, "finished early: {wall_s} s");
    assert_eq!(lines[0], "e");
    assert_eq!(lines[1], "M0000");
    assert_eq!(&lines[lines.len() - 2..], ["*", ""]);
    let body = &lines[2..lines.len() - 2];
    // 3 scans of round(2.0 / 0.002) = 1000 packages, each opened by `C`
    // + 4 hex (the scan) and closed by `-`.
    assert_eq!(body.len(), 3 * 1002);
    let mut packages = Vec::new();
    for (scan, chunk) in body.chunks(1002).enumerate() {
        assert_eq!(chunk[0], format!("C{scan:04X}"));
        assert_eq!(chunk[1001], "-", "scan {scan}");
        packages.extend_from_slice(&chunk[1..1001]);
    }
    let decoded: Vec<(f64, f64)> = packages
        .iter()
        .map(|l| {
            let v = decode_package(l);
            assert_eq!(v[0].0, "da");
            assert_eq!(v[1].0, "ba");
            // `,10` status OK, `,2hh` the autoranged range as the EmStat4
            // numbers it (3 = 1 nA, +3 per decade), the smallest that holds
            // the current.
            let meta: Vec<&str> = l.split(';').nth(1).unwrap().split(',').skip(1).collect();
            assert_eq!(meta[0], "10", "{l}");
            let index = i32::from_str_radix(meta[1].strip_prefix('2').unwrap(), 16).unwrap();
            assert_eq!(index % 3, 0, "{l}");
            let decade = index / 3 - 1;
            let range_A = 1e-9 * 10f64.powi(decade);
            assert!(v[1].1.abs() <= range_A * (1.0 + 1e-12), "{l}");
            assert!(decade == 0 || v[1].1.abs() > range_A / 10.0, "{l}");
            (v[0].1, v[1].1)
        })
        .collect();
    // The set potential is the ramp at (k+1) * 10 ms, to the encoding's 1 uV.
    for (k, expect) in [
        (0, 0.402),
        (248, 0.898),
        (249, 0.9),
        (749, -0.1),
        (999, 0.4),
        (1249, 0.9),
    ] {
        assert!(
            (decoded[k].0 - expect).abs() < 1.5e-6,
            "E[{k}] = {}",
            decoded[k].0
        );
    }
    // Anodic sweep above E0 = 0.4 V extracts ions: positive current; the
    // cathodic sweep down to -0.1 V inserts them: negative current.
    let anodic: f64 = decoded[100..249].iter().map(|d| d.1).sum::<f64>() / 149.0;
    let cathodic: f64 = decoded[600..749].iter().map(|d| d.1).sum::<f64>() / 149.0;
    assert!(anodic > 1e-5, "anodic mean current {anodic} A");
    assert!(cathodic < -1e-5, "cathodic mean current {cathodic} A");
    assert!(decoded.iter().all(|d| d.1.abs() < 10e-3));
    // The script ran on_finished: the cell is off.
    assert!(!bench.cell_is_on());
    assert!(bench.received(Device::Potentiostat, "cell_off"));

    // Sample k is at trigger + (k+1) * 10 ms on a clock 20 ppm fast, each
    // instant disturbed by 20 us rms jitter.
    let truth = bench.truth_log();
    assert_eq!(truth.triggers_s.len(), 1);
    assert_eq!(truth.potentiostat.len(), 3000);
    let t0 = truth.triggers_s[0];
    let rate = 1.0 + 20e-6;
    let mut sum = 0.0;
    for s in &truth.potentiostat {
        assert_eq!(s.segment, 0);
        let residual = s.t_true_s - t0 - (s.index + 1) as f64 * 0.01 / rate;
        assert!(
            residual.abs() < 6.0 * 20e-6,
            "sample {}: {residual}",
            s.index
        );
        sum += residual;
    }
    // Mean residual ~ 0 (20 us / sqrt(3000) = 0.4 us); a clock without the
    // drift would be off by 300 us on average.
    assert!(
        (sum / 3000.0).abs() < 3e-6,
        "mean residual {}",
        sum / 3000.0
    );
    // Every package was sent after true time passed its instant.
    let log = bench.log();
    let sent_packages: Vec<f64> = log
        .iter()
        .filter(|e| e.line.starts_with('P'))
        .map(|e| e.t_true_s)
        .collect();
    for (s, t_sent) in truth.potentiostat.iter().zip(&sent_packages) {
        assert!(*t_sent >= s.t_true_s, "sample {} sent early", s.index);
    }
}

#[test]
fn z_aborts_the_loop_and_switches_the_cell_off() {
    let bench = VirtualBench::start(&params(20.0)).unwrap();
    let mut p = Pstat::open(&bench);
    p.send(CV_SCRIPT);
    assert_eq!(p.line(2.0).as_deref(), Some("e"));
    assert_eq!(p.line(2.0).as_deref(), Some("M0000"));
    assert_eq!(p.line(2.0).as_deref(), Some("C0000"));
    for _ in 0..50 {
        assert!(p.line(2.0).unwrap().starts_with('P'));
    }
    assert!(bench.cell_is_on());
    p.send("Z\n");
    let rest = p.until_script_end(2.0);
    let z = rest.iter().position(|l| l == "Z").unwrap();
    // Packages already in flight may precede `Z`; nothing but `*` and the
    // empty line follows it.
    assert!(rest[..z].iter().all(|l| l.starts_with('P')), "{rest:?}");
    // Generous for a loaded machine: 40 packages are 20 ms of wall time.
    assert!(z < 40, "abort took {z} more packages");
    assert_eq!(&rest[z..], ["Z", "*", ""]);
    assert!(!bench.cell_is_on());
    assert!(bench.received(Device::Potentiostat, "Z"));
    // The host's safety sequence still gets its answers.
    p.send("Z\ne\ncell_off\n\n");
    assert_eq!(p.line(2.0).as_deref(), Some("Z!0006"));
    assert_eq!(p.line(2.0).as_deref(), Some("e"));
    assert_eq!(p.line(2.0).as_deref(), Some(""));
    assert_eq!(p.line(0.3), None);
}

#[test]
fn injected_fault_stops_the_script_with_4004() {
    let mut prm = params(40.0);
    prm.faults.potentiostat_error_after_s = Some(1.0);
    let bench = VirtualBench::start(&prm).unwrap();
    let mut p = Pstat::open(&bench);
    p.send(CV_SCRIPT);
    let lines = p.until_script_end(5.0);
    let n_packages = lines.iter().filter(|l| l.starts_with('P')).count();
    // Samples at (k+1) * 10 ms before 1.0 s: 99, or 100 when the jitter of
    // the 100th (at 0.99998 s) stays below +20 us.
    assert!((99..=100).contains(&n_packages), "{n_packages}");
    let n = lines.len();
    assert!(lines[n - 2].starts_with("!4004"), "{:?}", &lines[n - 3..]);
    assert_eq!(lines[n - 1], "");
    assert!(!lines.iter().any(|l| l == "*"));
    assert!(!bench.cell_is_on());
}

#[test]
fn current_spike_is_added_after_its_time() {
    let mut prm = params(40.0);
    prm.faults.current_spike_after_s = Some(0.5);
    prm.faults.current_spike_A = 0.05;
    let bench = VirtualBench::start(&prm).unwrap();
    let mut p = Pstat::open(&bench);
    p.send(CV_SCRIPT);
    let mut currents = Vec::new();
    while currents.len() < 100 {
        let l = p.line(2.0).unwrap();
        if l.starts_with('P') {
            currents.push(decode_package(&l)[1].1);
        }
    }
    p.send("Z\n");
    // Before 0.5 s the film draws well under a milliamp; from 0.5 s on the
    // 50 mA spike dominates: it overloads the 10 mA range, so it reads as
    // that range's full scale (and the package flags overload).
    assert!(currents[..48].iter().all(|i| i.abs() < 5e-3));
    assert!(currents[50..].iter().all(|i| (i - 0.01).abs() < 1e-9));
    assert!(p.until_script_end(2.0).iter().any(|l| l == "Z"));
}

#[test]
fn a_bad_script_is_refused_whole() {
    let bench = VirtualBench::start(&params(20.0)).unwrap();
    let mut p = Pstat::open(&bench);
    p.send("e\nvar p\ncell_on\nfrobnicate 3\n\n");
    let l = p.line(2.0).unwrap();
    assert!(l.starts_with("!2001"), "{l}");
    assert_eq!(l, "!2001: Line 4, Col 1");
    assert!(!bench.cell_is_on(), "a refused script must not run");
    assert_eq!(p.line(0.3), None);
    p.send("v\n");
    assert_eq!(p.line(2.0).as_deref(), Some("v0104"));
}

#[test]
fn ocp_loop_without_trigger_reports_the_rest_potential() {
    let bench = VirtualBench::start(&params(50.0)).unwrap();
    let mut p = Pstat::open(&bench);
    p.send("e\nvar p\nmeas_loop_ocp p 10m 500m\n  pck_start\n  pck_add p\n  pck_end\nendloop\n\n");
    let lines = p.until_script_end(3.0);
    assert_eq!(&lines[..2], ["e", "M0000"]);
    assert_eq!(&lines[lines.len() - 2..], ["*", ""]);
    let packages = &lines[2..lines.len() - 2];
    assert_eq!(packages.len(), 50);
    // The film starts at x = 0.5, whose equilibrium potential is E0 = 0.4 V;
    // 50 uV rms noise.
    for l in packages {
        let v = decode_package(l);
        assert_eq!(v[0].0, "ab");
        assert!((v[0].1 - 0.4).abs() < 5e-4, "{l}");
    }
    let truth = bench.truth_log();
    assert!(truth.triggers_s.is_empty());
    assert!(
        truth
            .potentiostat
            .iter()
            .all(|s| s.segment == SampleTruth::NO_TRIGGER)
    );
}

#[test]
fn shutdown_is_prompt_even_mid_script_with_clients_connected() {
    let bench = VirtualBench::start(&params(1.0)).unwrap();
    let mut p = Pstat::open(&bench);
    let _meter =
        std::net::TcpStream::connect(common::tcp_addr(&bench.deflection_resource().to_string()))
            .unwrap();
    p.send(CV_SCRIPT);
    assert_eq!(p.line(2.0).as_deref(), Some("e"));
    assert_eq!(p.line(2.0).as_deref(), Some("M0000"));
    let t = Instant::now();
    bench.shutdown();
    let took = t.elapsed();
    assert!(took < Duration::from_millis(300), "shutdown took {took:?}");
}
