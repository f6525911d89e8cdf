//! Progress lines of `vegard run --no-tui`: at most one per second, on
//! stderr, never allowed to stop a run.

use std::io::Write;
use std::time::Instant;

use vegard_engine::Progress;

pub fn print_progress(p: &Progress, last: &mut Option<Instant>, started: Instant) {
    // Progress must never stop a run: a closed or full stderr is ignored.
    let mut err = std::io::stderr().lock();
    match p {
        Progress::Started {
            run_dir,
            total_s,
            speed,
            potentiostat,
            deflection,
        } => {
            let _ = writeln!(err, "vegard run -> {}", run_dir.display());
            let _ = writeln!(err, "  potentiostat {potentiostat}");
            let _ = writeln!(err, "  deflection   {deflection}");
            let _ = writeln!(
                err,
                "  {:.1} s of experiment at {}x speed (~{:.0} s wall)",
                total_s,
                speed,
                total_s / speed
            );
        }
        Progress::StepStarted {
            index,
            count,
            kind,
            duration_s,
        } => {
            let _ = writeln!(
                err,
                "step {}/{} {kind}: {duration_s:.1} s",
                index + 1,
                count
            );
        }
        Progress::Tick {
            step,
            count,
            kind,
            cycle,
            cycles,
            elapsed_s,
            eta_s,
            E_V,
            I_A,
            deflection_nm,
        } => {
            // EIS reports impedance points, no potential samples.
            let quiet = E_V.is_nan() && *kind != "eis";
            if quiet || last.is_some_and(|l| l.elapsed().as_secs_f64() < 1.0) {
                return;
            }
            *last = Some(Instant::now());
            let cyc = if *kind == "cv" {
                format!("cycle {cycle}/{cycles}  ")
            } else if *kind == "steps" {
                format!("level {cycle}/{cycles}  ")
            } else if *kind == "esm_sweep" {
                format!("frequency {cycle}/{cycles}  ")
            } else if *kind == "eis" {
                format!("point {cycle}/{cycles}  ")
            } else {
                String::new()
            };
            // At open circuit there is no current to show.
            let current = if I_A.is_finite() {
                format!("I = {:+.3} mA", I_A * 1e3)
            } else {
                "I = (open circuit)".to_string()
            };
            let elec = if E_V.is_finite() {
                format!("E = {E_V:+.3} V  {current}  ")
            } else {
                String::new()
            };
            let _ = writeln!(
                err,
                "  [{:>5.1} s wall] step {}/{} {kind} {cyc}elapsed {:.1} s  ETA {:.1} s  {elec}deflection = {:+.2} nm",
                started.elapsed().as_secs_f64(),
                step + 1,
                count,
                elapsed_s,
                eta_s,
                deflection_nm
            );
        }
        Progress::Temperature {
            step,
            count,
            setpoint_K,
            T_K,
            stable_s,
            hold_s,
            elapsed_s,
            timeout_s,
        } => {
            if last.is_some_and(|l| l.elapsed().as_secs_f64() < 1.0) {
                return;
            }
            *last = Some(Instant::now());
            let _ = writeln!(
                err,
                "  [{:>5.1} s wall] step {}/{} temperature: {:.3} K -> setpoint {:.2} K, stable {:.0}/{:.0} s (waited {:.0} s of {:.0} s allowed)",
                started.elapsed().as_secs_f64(),
                step + 1,
                count,
                T_K,
                setpoint_K,
                stable_s,
                hold_s,
                elapsed_s,
                timeout_s
            );
        }
        Progress::Aborting { reason } => {
            let _ = writeln!(err, "ABORT: {reason} — cell switched off, saving data");
        }
        Progress::Finalizing => {
            let _ = writeln!(err, "finalising: clock alignment, Parquet, analysis");
        }
        Progress::Paused {
            paused: true,
            next_step,
        } => {
            let _ = writeln!(
                err,
                "paused before step {} (cell off); resume from the dashboard",
                next_step + 1
            );
        }
        Progress::Paused { paused: false, .. } => {
            let _ = writeln!(err, "resumed");
        }
        Progress::PauseRequested { requested } => {
            let _ = writeln!(
                err,
                "{}",
                if *requested {
                    "pause requested: the run pauses when the current step ends"
                } else {
                    "pause request withdrawn"
                }
            );
        }
        Progress::Marker { note, step } => {
            let at = step.map_or(String::new(), |s| format!(" (step {})", s + 1));
            let _ = writeln!(err, "marker{at}: {note}");
        }
    }
}
