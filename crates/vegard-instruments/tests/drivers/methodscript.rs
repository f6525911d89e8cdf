//! MethodSCRIPT driver against a fake device thread on the master side of a
//! pseudo-terminal; the driver opens the slave by path like a real port.

use std::io::{Read, Write};
use std::sync::Mutex;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use serialport::{SerialPort, TTYPort};
use vegard_instruments::{
    InstrumentError, Potentiostat, PstatEvent, Resource, Technique, open_potentiostat,
};
use vegard_recipe::PotentiostatConfig;

use crate::transcript::{ANY_SCRIPT, Exchange, fixture, parse};

/// `TTYPort::pair()` is not thread-safe; tests run in parallel.
static PTY_LOCK: Mutex<()> = Mutex::new(());

struct Pty {
    master: TTYPort,
    /// Held open so the pty exists until the driver has opened it by path.
    _slave: TTYPort,
    path: String,
}

fn pty() -> Pty {
    let _guard = PTY_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let (mut master, slave) = TTYPort::pair().unwrap();
    master.set_timeout(Duration::from_secs(5)).unwrap();
    let path = slave.name().unwrap();
    Pty {
        master,
        _slave: slave,
        path,
    }
}

fn cfg(path: &str, timeout_s: f64) -> PotentiostatConfig {
    PotentiostatConfig {
        driver: "methodscript".into(),
        resource: Resource::parse(&format!("ASRL{path}::INSTR")).unwrap(),
        baud: 230_400,
        current_range_max_A: 1e-3,
        current_range_min_A: 1e-9,
        trigger_gpio_pin: 0,
        trigger_latency_s: 0.0015,
        timeout_s,
    }
}

fn open(pty: &Pty, timeout_s: f64) -> Box<dyn Potentiostat> {
    let c = cfg(&pty.path, timeout_s);
    open_potentiostat(&c, &c.resource).unwrap()
}

/// Reads `\n` lines from the master side.
struct Lines {
    port: TTYPort,
    buf: Vec<u8>,
}

impl Lines {
    fn next(&mut self) -> Result<String, String> {
        loop {
            if let Some(pos) = self.buf.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = self.buf.drain(..=pos).collect();
                return Ok(String::from_utf8_lossy(&line[..line.len() - 1]).into_owned());
            }
            let mut chunk = [0u8; 256];
            match self.port.read(&mut chunk) {
                Ok(n) if n > 0 => self.buf.extend_from_slice(&chunk[..n]),
                Ok(_) => return Err("master read returned 0".into()),
                Err(e) => return Err(format!("fake device read: {e}")),
            }
        }
    }

    /// Send device lines in 7-byte pieces so the driver sees partial lines.
    fn send(&mut self, lines: &[String]) {
        let mut bytes = Vec::new();
        for l in lines {
            bytes.extend_from_slice(l.as_bytes());
            bytes.push(b'\n');
        }
        for piece in bytes.chunks(7) {
            self.port.write_all(piece).unwrap();
            thread::sleep(Duration::from_micros(200));
        }
    }
}

/// Replay `exchanges`; returns every line received (or the first mismatch)
/// and the master port, which stays open until the test drops it.
fn spawn_fake(
    master: TTYPort,
    exchanges: Vec<Exchange>,
) -> thread::JoinHandle<(Result<Vec<String>, String>, TTYPort)> {
    thread::spawn(move || {
        let mut lines = Lines {
            port: master,
            buf: Vec::new(),
        };
        let result = (|| {
            let mut received = Vec::new();
            for ex in &exchanges {
                for expected in &ex.host {
                    if expected == ANY_SCRIPT {
                        loop {
                            let l = lines.next()?;
                            received.push(l.clone());
                            if l.is_empty() {
                                break;
                            }
                        }
                        continue;
                    }
                    let got = lines.next()?;
                    received.push(got.clone());
                    if &got != expected {
                        return Err(format!(
                            "host line {}: expected {expected:?}, got {got:?}",
                            received.len()
                        ));
                    }
                }
                lines.send(&ex.device);
            }
            Ok(received)
        })();
        (result, lines.port)
    })
}

fn collect_until_finished(p: &mut dyn Potentiostat) -> Vec<PstatEvent> {
    let mut events = Vec::new();
    loop {
        let ev = p
            .read_event(Duration::from_secs(5))
            .unwrap()
            .expect("no event within 5 s");
        let done = ev == PstatEvent::Finished;
        events.push(ev);
        if done {
            return events;
        }
    }
}

#[test]
fn cv_transcript_yields_samples_scans_and_device_times() {
    let pty = pty();
    let mut p = open(&pty, 2.0);
    let fake = spawn_fake(
        pty.master.try_clone_native().unwrap(),
        parse(&fixture("methodscript_cv.txt")),
    );

    assert_eq!(
        p.identify().unwrap(),
        "es4_lr1.4 R1.4.0#vegard virtual bench (serial VIRTUAL-EMSTAT-0001, MethodSCRIPT 0104)"
    );
    // The fixture's script lines are compared verbatim by the fake.
    p.start(&Technique::Cv {
        begin_V: 0.2,
        vertex_V: [0.3, 0.1],
        scan_rate_V_per_s: 0.1,
        step_V: 0.05,
        cycles: 2,
        current_range_A: 1e-3,
    })
    .unwrap();
    let events = collect_until_finished(p.as_mut());
    let (result, _master) = fake.join().unwrap();
    result.unwrap();

    // Analog ramp 0.2 -> 0.3 -> 0.1 -> 0.2 V at 0.1 V/s, sampled at
    // t_k = (k+1) * 0.5 s.
    let e_per_scan = [0.25, 0.30, 0.25, 0.20, 0.15, 0.10, 0.15, 0.20];
    let i_per_scan_uA = [1.5, 2.0, -0.5, -1.0, -1.5, -2.0, 0.5, 1.0];
    assert_eq!(events[0], PstatEvent::Started);
    assert_eq!(events.len(), 1 + 16 + 2 + 2);
    let mut k = 0u64;
    let mut scan_ends = Vec::new();
    for ev in &events[1..events.len() - 2] {
        match ev {
            PstatEvent::Sample {
                index,
                t_dev_s,
                E_V,
                I_A,
                status,
                scan,
            } => {
                let j = (k % 8) as usize;
                assert_eq!(*index, k);
                assert_eq!(*scan, (k / 8) as u32);
                // trigger_latency_s + (k+1) * step/scan rate, to rounding.
                let t = 0.0015 + (k + 1) as f64 * 0.5;
                assert!((t_dev_s - t).abs() < 1e-12, "k={k}: {t_dev_s} vs {t}");
                // E is encoded in uV (or nV): exact to 1e-12 V here.
                assert!((E_V - e_per_scan[j]).abs() < 1e-12, "k={k}: E {E_V}");
                let i = I_A.unwrap();
                assert!(
                    ((i - i_per_scan_uA[j] * 1e-6) / i).abs() < 1e-9,
                    "k={k}: I {i}"
                );
                assert_eq!(*status, if k == 9 { 0x8 } else { 0 });
                k += 1;
            }
            PstatEvent::ScanEnd { scan } => {
                assert_eq!(k, 8 * (u64::from(*scan) + 1), "scan end after sample {k}");
                scan_ends.push(*scan);
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(k, 16);
    assert_eq!(scan_ends, [0, 1]);
    assert_eq!(events[events.len() - 2], PstatEvent::LoopEnd);
    assert_eq!(events[events.len() - 1], PstatEvent::Finished);
}

#[test]
fn device_error_during_run_is_an_event_then_finished() {
    let pty = pty();
    let mut p = open(&pty, 2.0);
    let transcript = format!(
        "> {ANY_SCRIPT}\n< e\n< M0000\n< Pab803D090u\n< Pab80493E0u\n< !4004: measurement fault\n<\n"
    );
    let fake = spawn_fake(pty.master.try_clone_native().unwrap(), parse(&transcript));
    p.start(&Technique::Ocp {
        duration_s: 1.0,
        sample_interval_s: 0.1,
    })
    .unwrap();
    let events = collect_until_finished(p.as_mut());
    let (result, _master) = fake.join().unwrap();
    let script = result.unwrap();
    assert!(
        script.contains(&"meas_loop_ocp p 100m 1".to_string()),
        "{script:?}"
    );
    assert!(!script.contains(&"cell_on".to_string()));
    // Trigger: driven low, then the rising edge right before the loop; the
    // line is lowered again in on_finished (after cell_off), so an abort or
    // a device error like the one below cannot leave it high.
    let gpio: Vec<&str> = script
        .iter()
        .map(String::as_str)
        .filter(|l| l.contains("set_gpio"))
        .collect();
    assert_eq!(
        gpio,
        [
            "set_gpio_cfg 0x01 1",
            "set_gpio 0x00i",
            "set_gpio 0x01i",
            "  set_gpio 0x00i"
        ]
    );
    let high = script.iter().position(|l| l == "set_gpio 0x01i").unwrap();
    assert!(script[high + 1].starts_with("meas_loop_ocp"), "{script:?}");
    assert!(
        script.ends_with(&[
            "endloop".into(),
            "on_finished:".into(),
            "  cell_off".into(),
            "  set_gpio 0x00i".into(),
            String::new()
        ]),
        "{script:?}"
    );

    assert_eq!(events.len(), 5, "{events:?}");
    assert_eq!(events[0], PstatEvent::Started);
    // OCP: measured potential (ab), no current, interval 0.1 s.
    match &events[2] {
        PstatEvent::Sample {
            index,
            t_dev_s,
            E_V,
            I_A,
            scan,
            ..
        } => {
            assert_eq!((*index, *scan, *I_A), (1, 0, None));
            assert!((t_dev_s - (0.0015 + 0.2)).abs() < 1e-12);
            assert!((E_V - 0.3).abs() < 1e-12);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        events[3],
        PstatEvent::DeviceError {
            code: 0x4004,
            detail: "measurement fault".into()
        }
    );
    assert_eq!(events[4], PstatEvent::Finished);
}

#[test]
fn rejected_script_is_an_error_naming_the_device() {
    let pty = pty();
    let mut p = open(&pty, 2.0);
    let transcript = format!("> {ANY_SCRIPT}\n< !2001: syntax error\n");
    let fake = spawn_fake(pty.master.try_clone_native().unwrap(), parse(&transcript));
    let e = p
        .start(&Technique::Ocp {
            duration_s: 1.0,
            sample_interval_s: 0.1,
        })
        .unwrap_err();
    fake.join().unwrap().0.unwrap();
    assert_eq!(
        e.to_string(),
        format!(
            "potentiostat ASRL{}::INSTR: device error !2001: syntax error",
            pty.path
        )
    );
}

/// The firmware names the refused command's position; the error names the
/// command itself.
#[test]
fn refused_script_names_the_command_at_the_firmware_position() {
    let pty = pty();
    let mut p = open(&pty, 2.0);
    let mut lines = Lines {
        port: pty.master.try_clone_native().unwrap(),
        buf: Vec::new(),
    };
    let device = thread::spawn(move || {
        let mut script = Vec::new();
        loop {
            let l = lines.next().unwrap();
            if l.is_empty() {
                break;
            }
            script.push(l);
        }
        // Point at the first set_range (script line numbers count `e` as 1).
        let n = script
            .iter()
            .position(|l| l.trim().starts_with("set_range"))
            .unwrap()
            + 1;
        lines.send(&[format!("!2004: Line {n}, Col 1")]);
        (script, lines)
    });
    let e = p
        .start(&Technique::Ocp {
            duration_s: 1.0,
            sample_interval_s: 0.1,
        })
        .unwrap_err()
        .to_string();
    let (script, _lines) = device.join().unwrap();
    let cmd = script
        .iter()
        .find(|l| l.trim().starts_with("set_range"))
        .unwrap();
    assert!(
        e.ends_with(&format!(
            "device error !2004: Line {}, Col 1 (script: {:?})",
            script.iter().position(|l| l == cmd).unwrap() + 1,
            cmd.trim()
        )),
        "{e}"
    );
}

#[test]
fn silent_device_times_out_with_the_command_named() {
    let pty = pty();
    let mut p = open(&pty, 0.3);
    let t0 = Instant::now();
    let e: InstrumentError = p.identify().unwrap_err();
    let waited = t0.elapsed();
    assert_eq!(
        e.to_string(),
        format!(
            "potentiostat ASRL{}::INSTR: timeout after 0.3 s waiting for reply to t",
            pty.path
        )
    );
    assert!(waited >= Duration::from_millis(300) && waited < Duration::from_secs(2));
    // read_event reports a quiet line as None, not as an error ...
    assert_eq!(p.read_event(Duration::from_millis(50)).unwrap(), None);
    // ... and a zero timeout still picks up what has already arrived.
    let mut master = pty.master.try_clone_native().unwrap();
    master.write_all(b"M0000\n").unwrap();
    thread::sleep(Duration::from_millis(50));
    assert_eq!(
        p.read_event(Duration::ZERO).unwrap(),
        Some(PstatEvent::Started)
    );
    assert_eq!(p.read_event(Duration::ZERO).unwrap(), None);
}

#[test]
fn safety_aborts_and_switches_off_while_reader_blocks() {
    let pty = pty();
    let mut p = open(&pty, 2.0);
    let safety = p.safety().unwrap();
    let mut master = pty.master.try_clone_native().unwrap();

    // Fake device: accept the script, stream a sample every 20 ms until a
    // line arrives, then behave as the contract says for `Z` and the
    // cell-off script.
    let fake = thread::spawn(move || {
        master.set_timeout(Duration::from_millis(20)).unwrap();
        let mut lines = Lines {
            port: master,
            buf: Vec::new(),
        };
        let mut script = Vec::new();
        lines.port.set_timeout(Duration::from_secs(5)).unwrap();
        loop {
            let l = lines.next().unwrap();
            if l.is_empty() {
                break;
            }
            script.push(l);
        }
        lines.send(&["e".into(), "M0000".into()]);
        lines.port.set_timeout(Duration::from_millis(20)).unwrap();
        let mut after = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(5);
        while after.is_empty() && Instant::now() < deadline {
            match lines.next() {
                Ok(l) => after.push(l),
                Err(_) => lines.send(&["Pda803D090u;ba816E360p,10,286".into()]),
            }
        }
        lines.port.set_timeout(Duration::from_secs(5)).unwrap();
        assert_eq!(after, ["Z"]);
        lines.send(&["Z".into(), "*".into(), String::new()]);
        for _ in 0..3 {
            after.push(lines.next().unwrap());
        }
        lines.send(&["e".into(), String::new()]);
        (script, after, lines.port)
    });

    p.start(&Technique::Cv {
        begin_V: 0.2,
        vertex_V: [0.3, 0.1],
        scan_rate_V_per_s: 0.1,
        step_V: 0.05,
        cycles: 2,
        current_range_A: 1e-3,
    })
    .unwrap();
    let (tx, rx) = mpsc::channel();
    let reader = thread::spawn(move || {
        let mut events = Vec::new();
        loop {
            let ev = p.read_event(Duration::from_secs(5)).unwrap().unwrap();
            tx.send(ev.clone()).unwrap();
            let done = ev == PstatEvent::Finished;
            events.push(ev);
            if done {
                return (p, events);
            }
        }
    });
    // Wait for a few samples: the reader is now blocked in read_event.
    let mut samples = 0;
    while samples < 3 {
        if let PstatEvent::Sample { .. } = rx.recv_timeout(Duration::from_secs(5)).unwrap() {
            samples += 1;
        }
    }
    safety.switch_off().unwrap();
    let (_p, events) = reader.join().unwrap();
    let (script, after, _master) = fake.join().unwrap();

    assert!(script.iter().any(|l| l == "cell_on"));
    // The aborted script's on_finished lowers the trigger after cell_off.
    assert!(
        script.ends_with(&[
            "on_finished:".into(),
            "  cell_off".into(),
            "  set_gpio 0x00i".into()
        ]),
        "{script:?}"
    );
    assert_eq!(after, ["Z", "e", "cell_off", ""]);
    assert_eq!(events.last(), Some(&PstatEvent::Finished));
    assert!(events.contains(&PstatEvent::LoopEnd));
}

#[test]
fn start_after_safety_switch_off_fails_without_writing() {
    let pty = pty();
    let mut p = open(&pty, 2.0);
    let safety = p.safety().unwrap();
    let mut lines = Lines {
        port: pty.master.try_clone_native().unwrap(),
        buf: Vec::new(),
    };

    // The device: what an idle one answers to the switch-off, which
    // start() must not take for anything afterwards.
    let device = thread::spawn(move || {
        let mut off = Vec::new();
        for _ in 0..4 {
            off.push(lines.next().unwrap());
        }
        lines.send(&["Z!0006".into(), "e".into(), String::new()]);
        (off, lines)
    });
    safety.switch_off().unwrap();
    let (off, mut lines) = device.join().unwrap();
    assert_eq!(off, ["Z", "e", "cell_off", ""]);

    let e = p
        .start(&Technique::Ocp {
            duration_s: 1.0,
            sample_interval_s: 0.1,
        })
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        format!(
            "potentiostat ASRL{}::INSTR: cell was switched off by the safety path; \
             not starting a new script",
            pty.path
        )
    );
    // Nothing reached the device after the cell-off script.
    lines.port.set_timeout(Duration::from_millis(200)).unwrap();
    let mut rest = [0u8; 64];
    match lines.port.read(&mut rest) {
        Ok(n) => panic!(
            "host wrote after switch_off: {:?}",
            String::from_utf8_lossy(&rest[..n])
        ),
        Err(e) => assert_eq!(e.kind(), std::io::ErrorKind::TimedOut, "{e}"),
    }
    assert!(lines.buf.is_empty(), "{:?}", lines.buf);
    // The latch holds: a second attempt is refused too.
    assert!(
        p.start(&Technique::Ocp {
            duration_s: 1.0,
            sample_interval_s: 0.1,
        })
        .is_err()
    );
}

#[test]
fn eis_transcript_yields_impedance_points() {
    let pty = pty();
    let mut p = open(&pty, 2.0);
    let fake = spawn_fake(
        pty.master.try_clone_native().unwrap(),
        parse(&fixture("methodscript_eis.txt")),
    );
    p.start(&Technique::Eis {
        dc_V: 0.4,
        amplitude_V: 0.01,
        f_start_Hz: 1000.0,
        f_end_Hz: 10.0,
        n_points: 3,
        equilibrate_s: 0.0,
        current_range_A: 1e-3,
    })
    .unwrap();
    let events = collect_until_finished(p.as_mut());
    let (result, _master) = fake.join().unwrap();
    result.unwrap();

    assert_eq!(events.len(), 1 + 3 + 2, "{events:?}");
    assert_eq!(events[0], PstatEvent::Started);
    // (f, Z', Z'', status); point 1 is the public PalmSens known answer
    // (99.999732 Hz, 9885.956 ohm, 2.9946 ohm), the others are exact in
    // their encoding (m or u counts).
    let expected = [
        (1000.0, 120.5, -35.25, 0u8),
        (99.9997, 9885.956, 2.9946, 0),
        (10.0, 250.0, -1200.0, 0x4),
    ];
    for (k, (ev, (f, zr, zi, st))) in events[1..4].iter().zip(expected).enumerate() {
        let PstatEvent::Impedance {
            index,
            f_Hz,
            Z_re_ohm,
            Z_im_ohm,
            status,
        } = ev
        else {
            panic!("event {k}: {ev:?}");
        };
        assert_eq!(*index, k as u64);
        // 1e-6 relative: the known answer's frequency is quoted to 6 digits.
        assert!(((f_Hz - f) / f).abs() < 1e-6, "k={k}: f {f_Hz}");
        assert!(((Z_re_ohm - zr) / zr).abs() < 1e-9, "k={k}: Z' {Z_re_ohm}");
        assert!(((Z_im_ohm - zi) / zi).abs() < 1e-9, "k={k}: Z'' {Z_im_ohm}");
        assert_eq!(*status, st);
    }
    assert_eq!(events[4], PstatEvent::LoopEnd);
    assert_eq!(events[5], PstatEvent::Finished);
}

#[test]
fn eis_package_without_impedance_is_an_error_naming_the_line() {
    let pty = pty();
    let mut p = open(&pty, 2.0);
    let transcript = format!("> {ANY_SCRIPT}\n< e\n< M0007\n< Pdc80F4240m;cc803D090m\n");
    let fake = spawn_fake(pty.master.try_clone_native().unwrap(), parse(&transcript));
    p.start(&Technique::Eis {
        dc_V: 0.0,
        amplitude_V: 0.01,
        f_start_Hz: 1000.0,
        f_end_Hz: 10.0,
        n_points: 3,
        equilibrate_s: 1.0,
        current_range_A: 1e-3,
    })
    .unwrap();
    assert_eq!(
        p.read_event(Duration::from_secs(5)).unwrap(),
        Some(PstatEvent::Started)
    );
    let e = p
        .read_event(Duration::from_secs(5))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("Pdc80F4240m;cc803D090m") && e.contains("cd"),
        "{e}"
    );
    let script = fake.join().unwrap().0.unwrap();
    // Equilibration at dc with the cell on, before the edge.
    let on = script.iter().position(|l| l == "cell_on").unwrap();
    assert_eq!(script[on + 1], "wait 1");
    assert_eq!(script[on + 2], "set_gpio 0x01i");
    assert!(script[on + 3].starts_with("meas_loop_eis f r j "));
}

#[test]
fn lsv_transcript_yields_samples_at_step_over_rate() {
    let pty = pty();
    let mut p = open(&pty, 2.0);
    let fake = spawn_fake(
        pty.master.try_clone_native().unwrap(),
        parse(&fixture("methodscript_lsv.txt")),
    );
    p.start(&Technique::Lsv {
        begin_V: 0.3,
        end_V: 0.5,
        scan_rate_V_per_s: 0.1,
        step_V: 0.05,
        current_range_A: 1e-3,
    })
    .unwrap();
    let events = collect_until_finished(p.as_mut());
    let (result, _master) = fake.join().unwrap();
    result.unwrap();
    assert_eq!(events.len(), 1 + 4 + 2, "{events:?}");
    let e_V = [0.35, 0.4, 0.45, 0.5];
    let i_uA = [1.5, 2.0, 3.0, 4.0];
    for (k, ev) in events[1..5].iter().enumerate() {
        let PstatEvent::Sample {
            index,
            t_dev_s,
            E_V,
            I_A,
            status,
            scan,
        } = ev
        else {
            panic!("{ev:?}");
        };
        assert_eq!((*index, *scan, *status), (k as u64, 0, 0));
        // trigger_latency_s + (k+1) * 0.05 V / 0.1 V/s.
        let t = 0.0015 + (k + 1) as f64 * 0.5;
        assert!((t_dev_s - t).abs() < 1e-12, "k={k}: {t_dev_s}");
        assert!((E_V - e_V[k]).abs() < 1e-12, "k={k}: {E_V}");
        assert!((I_A.unwrap() - i_uA[k] * 1e-6).abs() < 1e-15, "k={k}");
    }
    assert_eq!(events[5], PstatEvent::LoopEnd);
    assert_eq!(events[6], PstatEvent::Finished);
}

#[test]
fn potential_steps_report_the_measured_potential() {
    // ESM dwell: CA packages carry the measured WE potential (`ab`, which
    // contains the lock-in sine); with both `da` and `ab` present, `ab` wins.
    let pty = pty();
    let mut p = open(&pty, 2.0);
    let transcript = format!(
        "> {ANY_SCRIPT}\n< e\n< M0001\n< Pab80668A0u;ba816E360p,10,286\n\
         < Pda8061A80u;ab805CC60u;ba81E8480p,10,286\n< Pda8061A80u;ba7F0BDC0p,10,286\n< *\n<\n"
    );
    let fake = spawn_fake(pty.master.try_clone_native().unwrap(), parse(&transcript));
    p.start(&Technique::Steps {
        levels_V: vec![0.4],
        hold_s: vec![0.3],
        sample_interval_s: 0.1,
        current_range_A: 1e-3,
    })
    .unwrap();
    let events = collect_until_finished(p.as_mut());
    fake.join().unwrap().0.unwrap();
    let samples: Vec<(f64, f64, f64)> = events
        .iter()
        .filter_map(|ev| match ev {
            PstatEvent::Sample {
                t_dev_s, E_V, I_A, ..
            } => Some((*t_dev_s, *E_V, I_A.unwrap())),
            _ => None,
        })
        .collect();
    assert_eq!(samples.len(), 3);
    // (measured E, I): 0.42 V / 1.5 uA, 0.38 V (ab, not the set 0.4) / 2 uA,
    // then a package with only `da` falls back to it: 0.4 V / -1 uA.
    for (k, (e, i)) in [(0.42, 1.5e-6), (0.38, 2e-6), (0.4, -1e-6)]
        .into_iter()
        .enumerate()
    {
        let (t, got_e, got_i) = samples[k];
        assert!((t - (0.0015 + (k + 1) as f64 * 0.1)).abs() < 1e-12);
        assert!((got_e - e).abs() < 1e-12, "k={k}: {got_e}");
        assert!((got_i - i).abs() < 1e-15, "k={k}: {got_i}");
    }
}

/// A device that takes the switch-off bytes and says nothing (hung, or a
/// frozen emulator) must not get a "cell off": the safety path waits for the
/// acknowledgement and then fails, saying what it waited for.
#[test]
fn switch_off_without_acknowledgement_is_not_confirmed() {
    let pty = pty();
    let p = open(&pty, 0.5);
    let safety = p.safety().unwrap();
    let mut lines = Lines {
        port: pty.master.try_clone_native().unwrap(),
        buf: Vec::new(),
    };
    let t0 = Instant::now();
    let e = safety.switch_off().unwrap_err().to_string();
    let waited_s = t0.elapsed().as_secs_f64();
    assert_eq!(
        e,
        format!(
            "potentiostat ASRL{}::INSTR: switch-off not confirmed: no answer to the abort (Z) \
             from the instrument within 1.0 s",
            pty.path
        )
    );
    // Bounded: the 1 s minimum wait plus the 50 ms gap, with slack for a
    // loaded host.
    assert!((1.0..3.0).contains(&waited_s), "{waited_s}");
    // The bytes were sent all the same.
    let mut sent = Vec::new();
    for _ in 0..4 {
        sent.push(lines.next().unwrap());
    }
    assert_eq!(sent, ["Z", "e", "cell_off", ""]);

    // Half an answer is no answer either: the abort, then a refused
    // cell-off script (its end line must not count).
    let device = thread::spawn(move || {
        for _ in 0..4 {
            lines.next().unwrap();
        }
        lines.send(&[
            "Z!0006".into(),
            "e".into(),
            "!4004: Line 1, Col 1".into(),
            String::new(),
        ]);
        lines
    });
    let e = safety.switch_off().unwrap_err().to_string();
    assert!(
        e.ends_with("no acceptance (e) of the cell-off script from the instrument within 1.0 s"),
        "{e}"
    );
    drop(device.join().unwrap());
}

/// Noise that happens to contain `!` and four hex digits is a garbled line,
/// not a device error (an earlier version reported `!2DDC` as one).
#[test]
fn garbled_line_during_a_run_is_reported_as_garbled() {
    let pty = pty();
    let mut p = open(&pty, 2.0);
    let mut lines = Lines {
        port: pty.master.try_clone_native().unwrap(),
        buf: Vec::new(),
    };
    let device = thread::spawn(move || {
        loop {
            if lines.next().unwrap().is_empty() {
                break;
            }
        }
        lines.send(&[
            "e".into(),
            "M0000".into(),
            "Pda803D090u;ba816E360p,10,286".into(),
            "Pda80!2DDCu;ba816E360p,10,286".into(),
        ]);
        lines
    });
    p.start(&Technique::Ocp {
        duration_s: 1.0,
        sample_interval_s: 0.1,
    })
    .unwrap();
    assert_eq!(
        p.read_event(Duration::from_secs(2)).unwrap(),
        Some(PstatEvent::Started)
    );
    assert!(matches!(
        p.read_event(Duration::from_secs(2)).unwrap(),
        Some(PstatEvent::Sample { .. })
    ));
    let e = p.read_event(Duration::from_secs(2)).unwrap_err();
    let text = e.to_string();
    assert!(
        text.contains("garbled line from the instrument while waiting for measurement data: \"Pda80!2DDCu;ba816E360p,10,286\""),
        "{text}"
    );
    assert!(!text.contains("device error"), "{text}");
    drop(device.join().unwrap());
}
