//! A synthetic live run in Run mode, to try the keys without hardware or the
//! engine: a CV with a Vegard-like deflection streams at 20 batches per
//! second; `p` pauses it, `m` notes appear as markers, `a`/`q` + `y` abort it.
//!
//! ```text
//! cargo run -p vegard-tui --example synthetic
//! ```

use std::path::PathBuf;
use std::time::Duration;

use tokio::sync::mpsc;
use vegard_tui::{Command, DashEvent, LogLevel, Mode, PlanRow, run_dashboard};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (tx, rx) = mpsc::unbounded_channel();
    let (cmd_tx, mut cmd_rx) = mpsc::unbounded_channel();
    let total_s = 60.0;
    let _ = tx.send(DashEvent::Started {
        run_dir: PathBuf::from("runs/synthetic"),
        total_s,
        speed: 1.0,
        plan: vec![PlanRow {
            index: 0,
            kind: "cv".into(),
            label: "cv 0.4->[0.9,-0.1] V @ 0.1 V/s x3".into(),
            duration_s: total_s,
            cycles: 3,
        }],
        instruments: vec![("potentiostat".into(), "synthetic".into())],
    });
    let _ = tx.send(DashEvent::StepStarted {
        index: 0,
        count: 1,
        kind: "cv".into(),
        duration_s: total_s,
        sweep: String::new(),
    });
    let feeder = tokio::spawn(async move {
        let (dt, mut t, mut q_mC, mut paused) = (0.01, 0.0_f64, 0.0, false);
        let mut tick = tokio::time::interval(Duration::from_millis(50));
        loop {
            tokio::select! {
                cmd = cmd_rx.recv() => match cmd {
                    Some(Command::TogglePause) => {
                        paused = !paused;
                        let _ = tx.send(DashEvent::Paused(paused));
                    }
                    Some(Command::Marker(note)) => {
                        let _ = tx.send(DashEvent::Log { t_s: t, level: LogLevel::Marker, text: note });
                    }
                    Some(Command::Abort) | None => {
                        let _ = tx.send(DashEvent::Log { t_s: t, level: LogLevel::Error, text: "abort: user".into() });
                        tokio::time::sleep(Duration::from_millis(500)).await;
                        let _ = tx.send(DashEvent::Finished { status: "aborted".into(), reason: Some("user abort".into()) });
                        return;
                    }
                },
                _ = tick.tick() => {
                    if paused || t >= total_s {
                        continue;
                    }
                    let (mut ts, mut e, mut i, mut c, mut u) = (vec![], vec![], vec![], vec![], vec![]);
                    for _ in 0..5 {
                        let ph = (t * 0.1) % 2.0;
                        let ek = if ph < 1.0 { -0.1 + ph } else { 1.9 - ph };
                        let sweep = if ph < 1.0 { 1.0 } else { -1.0 };
                        let ik = sweep * (2e-5 + 3e-4 * (-((ek - 0.4) / 0.08_f64).powi(2)).exp());
                        q_mC += ik * dt * 1e3;
                        ts.push(t);
                        e.push(ek);
                        i.push(ik);
                        c.push(1 + (t / 20.0) as u32);
                        u.push(-0.2 * q_mC + 0.01 * (t * 3.0).sin());
                        t += dt;
                    }
                    let cycle = c[0];
                    let _ = tx.send(DashEvent::Potentiostat { t_s: ts.clone(), E_V: e, I_A: i, cycle: c, step: vec![0; 5] });
                    let _ = tx.send(DashEvent::Deflection { t_s: ts, deflection_nm: u });
                    let _ = tx.send(DashEvent::Progress {
                        step: 0, count: 1, kind: "cv".into(), cycle, cycles: 3,
                        elapsed_s: t, eta_s: total_s - t,
                    });
                    if t >= total_s {
                        let _ = tx.send(DashEvent::Finished { status: "complete".into(), reason: None });
                    }
                }
            }
        }
    });
    let exit = run_dashboard(Mode::Run, rx, Some(cmd_tx)).await?;
    feeder.abort();
    println!("dashboard: {exit:?}");
    Ok(())
}
