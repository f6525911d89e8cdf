//! One set of digitizer limits (issue 17, item 5): `vegard validate`, the
//! scpi-dmm driver and the emulator agree on the 34465A's documented
//! bounds, so what validates runs, down to 50 kSa/s, and what the meter
//! cannot do is refused before a run starts.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{tmpdir, vegard};

fn recipe(dir: &std::path::Path, interval_s: &str) -> std::path::PathBuf {
    let path = dir.join(format!("fast-{interval_s}.toml"));
    std::fs::write(
        &path,
        format!(
            "[run]\nname = \"fast-digitizer\"\ndeflection_sample_interval_s = {interval_s}\n\n\
             [limits]\ncurrent_max_A = 0.01\npotential_window_V = [-0.2, 1.0]\n\n\
             [[step]]\nkind = \"ocp\"\nduration_s = 0.5\nsample_interval_s = 0.01\n"
        ),
    )
    .unwrap();
    path
}

#[test]
fn the_fastest_documented_rate_validates_and_runs_and_faster_is_refused_by_validate() {
    let dir = tmpdir("digitizer-limits");
    for bad in ["1e-5", "1.9e-5"] {
        let out = vegard()
            .arg("validate")
            .arg(recipe(&dir, bad))
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{bad}: {stderr}");
        assert!(
            stderr.contains(":3:1:") && stderr.contains("50 kSa/s"),
            "{bad}: {stderr}"
        );
    }
    // 20 us (50 kSa/s) and 25 us: configure must accept what validate
    // did, and the readings come on the 20/25 us grid.
    for (good, dt_s) in [("2e-5", 20e-6), ("2.5e-5", 25e-6)] {
        let runs = dir.join(format!("runs-{good}"));
        let out = vegard()
            .args(["run", "--no-tui", "--json", "--out"])
            .arg(&runs)
            .arg(recipe(&dir, good))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{good}: exit {:?}\n{}\n{}",
            out.status.code(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let run_dir = std::fs::read_dir(&runs)
            .unwrap()
            .flatten()
            .find(|e| e.path().is_dir())
            .unwrap()
            .path();
        let t_dev_s = vegard_store::read_raw(&run_dir, "deflection")
            .unwrap()
            .f64("t_dev_s")
            .unwrap();
        // 0.5 s of rest: at least 0.5 / dt readings (the plan adds a margin).
        let want = (0.5 / dt_s) as usize;
        assert!(t_dev_s.len() >= want, "{good}: {} readings", t_dev_s.len());
        for w in t_dev_s.windows(2).take(1000) {
            assert!(((w[1] - w[0]) - dt_s).abs() < 1e-9, "{good}: {w:?}");
        }
    }
}
