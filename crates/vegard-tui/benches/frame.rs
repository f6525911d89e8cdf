//! Cost of one full dashboard frame with a long run in memory: 10^6 samples
//! of E, I and deflection, drawn to a 200 × 60 TestBackend (the terminal's
//! own write is not included; it depends on the terminal emulator).
//!
//! Budget: 20 frames per second using under 15 % of one core, i.e. about
//! 7 ms per frame. Run with `cargo bench -p vegard-tui --bench frame`.

use std::path::PathBuf;
use std::time::Instant;

use criterion::{Criterion, criterion_group, criterion_main};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use vegard_tui::input::UiState;
use vegard_tui::{DashEvent, DashState, LogLevel, Mode, PlanRow, draw};

const N: usize = 1_000_000;

fn big_state() -> DashState {
    let mut s = DashState::new(Mode::Run);
    s.apply(DashEvent::Started {
        run_dir: PathBuf::from("runs/bench"),
        total_s: 20_000.0,
        speed: 1.0,
        plan: vec![PlanRow {
            index: 0,
            kind: "cv".into(),
            label: "cv 0.4->[0.9,-0.1] V @ 0.2 V/s x1000".into(),
            duration_s: 20_000.0,
            cycles: 1000,
        }],
        instruments: vec![("potentiostat".into(), "bench".into())],
    });
    s.apply(DashEvent::StepStarted {
        index: 0,
        count: 1,
        kind: "cv".into(),
        duration_s: 20_000.0,
        sweep: String::new(),
    });
    let dt = 0.01;
    let chunk = 10_000;
    for c0 in (0..N).step_by(chunk) {
        let (mut t, mut e, mut i, mut cyc, mut u) = (vec![], vec![], vec![], vec![], vec![]);
        for k in c0..c0 + chunk {
            let tk = k as f64 * dt;
            let ph = (tk * 0.2) % 2.0;
            let ek = if ph < 1.0 { -0.1 + ph } else { 1.9 - ph };
            t.push(tk);
            e.push(ek);
            i.push(1e-4 * (tk * 0.6283).sin() + 1e-6 * ((k * 7919) % 13) as f64);
            cyc.push((tk / 10.0) as u32 + 1);
            u.push(0.3 * (tk * 0.6283).cos() + 0.001 * ((k * 104_729) % 17) as f64);
        }
        s.apply(DashEvent::Potentiostat {
            t_s: t.clone(),
            E_V: e,
            I_A: i,
            cycle: cyc,
            step: vec![0; chunk],
        });
        s.apply(DashEvent::Deflection {
            t_s: t,
            deflection_nm: u,
        });
    }
    for k in 0..200 {
        s.apply(DashEvent::Log {
            t_s: f64::from(k),
            level: if k % 7 == 0 {
                LogLevel::Warn
            } else {
                LogLevel::Info
            },
            text: format!("event {k}"),
        });
    }
    s.apply(DashEvent::Progress {
        step: 0,
        count: 1,
        kind: "cv".into(),
        cycle: 1000,
        cycles: 1000,
        elapsed_s: 10_000.0,
        eta_s: 10_000.0,
    });
    s
}

fn frame(c: &mut Criterion) {
    let t0 = Instant::now();
    let state = big_state();
    println!(
        "built a state of {} potentiostat + {} deflection samples in {:.2} s",
        state.pot.t_s.len(),
        state.defl.t_s.len(),
        t0.elapsed().as_secs_f64()
    );
    let ui = UiState::default();
    let mut terminal = match Terminal::new(TestBackend::new(200, 60)) {
        Ok(t) => t,
        Err(e) => panic!("test backend: {e}"),
    };
    // A plain measurement first, so the number is printed even with
    // criterion's output trimmed.
    let frames = 100;
    let t0 = Instant::now();
    for _ in 0..frames {
        if let Err(e) = terminal.draw(|f| draw(f, &state, &ui)) {
            panic!("draw: {e}");
        }
    }
    println!(
        "full frame 200x60, 3 x 10^6 samples: {:.2} ms per frame",
        t0.elapsed().as_secs_f64() * 1e3 / f64::from(frames)
    );
    c.bench_function("frame_200x60_1e6_points", |b| {
        b.iter(|| {
            if let Err(e) = terminal.draw(|f| draw(f, &state, &ui)) {
                panic!("draw: {e}");
            }
        })
    });
}

criterion_group!(benches, frame);
criterion_main!(benches);
