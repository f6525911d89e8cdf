//! Quality flags that reach the answer: ESM points whose modulation was
//! disturbed are left out of the fit and listed, sweeps a stopped run cut
//! short are left out of the Arrhenius fits, and what finalisation found in
//! the data comes back in `analysis_warnings`.
//!
//! Works on a copy of the committed golden campaign (tests/golden/
//! campaign-run: CV, EIS of 11 points and a 4-frequency ESM sweep at 45, 55
//! and 65 C; plan steps 2/6/10 are EIS, 3/7/11 ESM), edited the way a
//! disturbed or interrupted run would have written it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

use vegard_pipeline::{IssueKind, SpectraOptions, analyze_run, esm_flag};
use vegard_store::RecordedIssue;
use vegard_store::schema::{EisData, EsmData, data_path};

fn golden() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/golden/campaign-run")
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dest = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &dest);
        } else {
            std::fs::copy(e.path(), dest).unwrap();
        }
    }
}

/// A fresh copy of the golden campaign under the system temp dir.
fn scratch(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "vegard-pipeline-quality-{tag}-{}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    copy_dir(&golden(), &dir);
    dir
}

fn write_esm(dir: &Path, t: EsmData) {
    vegard_store::write_parquet(&data_path(dir, EsmData::FILE), &t.into_table()).unwrap();
}

fn read_esm(dir: &Path) -> EsmData {
    EsmData::read_parquet_if_exists(&data_path(dir, EsmData::FILE))
        .unwrap()
        .unwrap()
}

#[test]
fn a_disturbed_esm_point_is_left_out_of_the_fit_and_listed() {
    let dir = scratch("flagged");
    let base = analyze_run(&dir, &SpectraOptions::default()).unwrap();
    assert_eq!(base.spectra.esm.len(), 3, "three clean ESM sweeps");
    assert!(base.spectra.esm.iter().all(|s| s.excluded_f_Hz.is_empty()));

    // The lock-in switched late into step 11's 0.07 Hz window.
    let mut t = read_esm(&dir);
    let i = (0..t.len())
        .find(|&i| t.step[i] == 11 && (t.f_Hz[i] - 0.07).abs() < 1e-3)
        .unwrap();
    t.flagged[i] = esm_flag::LATE_SWITCH;
    write_esm(&dir, t);
    let mut meta = vegard_store::read_meta(&dir).unwrap();
    let said = "step 11 (esm_sweep) at 0.07 Hz: warning: lock-in switched 3.210 s into the \
                analysed window (switch latency exceeds the settling time); left out of the ESM fit";
    meta.data_issues = vec![RecordedIssue {
        step: Some(11),
        kind: "esm_window".into(),
        message: said.into(),
    }];
    vegard_store::write_meta(&dir, &meta).unwrap();

    let a = analyze_run(&dir, &SpectraOptions::default()).unwrap();
    // What `vegard run` printed is in the warnings, word for word.
    assert!(
        a.analysis_warnings
            .iter()
            .any(|w| w.kind == IssueKind::EsmWindow && w.message == said),
        "{:#?}",
        a.analysis_warnings
    );
    // The point is named as left out; with 3 of 4 frequencies left the
    // sweep cannot be fitted, which is an error, not a quiet result.
    let listed = a
        .analysis_warnings
        .iter()
        .find(|w| w.step == Some(11) && w.message.contains("left out of the fit"))
        .expect("the excluded point is listed");
    assert!(listed.message.contains("1 of 4 frequencies"), "{listed}");
    assert!(listed.message.contains("0.07 Hz"), "{listed}");
    assert!(
        a.analysis_errors
            .iter()
            .any(|e| e.step == Some(11) && e.kind == IssueKind::NoData),
        "{:#?}",
        a.analysis_errors
    );
    assert_eq!(a.spectra.esm.len(), 2);
    let arr = a.spectra.arrhenius.as_ref().unwrap();
    assert_eq!(arr.esm.as_ref().unwrap().n_points, 2);
    assert_eq!(arr.eis.as_ref().unwrap().n_points, 3);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_sweep_cut_short_is_fitted_but_left_out_of_the_arrhenius_fit_unless_asked() {
    let dir = scratch("cut-short");
    // The run stopped during the last EIS (step 10): its lowest three
    // frequencies were never measured.
    let path = data_path(&dir, EisData::FILE);
    let t = EisData::read_parquet_if_exists(&path).unwrap().unwrap();
    let rows: Vec<usize> = (0..t.len()).filter(|&i| t.step[i] == 10).collect();
    let drop: Vec<usize> = rows[rows.len() - 3..].to_vec();
    let mut kept = EisData::default();
    for i in (0..t.len()).filter(|i| !drop.contains(i)) {
        kept.push(&t.row(i).unwrap());
    }
    vegard_store::write_parquet(&path, &kept.into_table()).unwrap();

    let a = analyze_run(&dir, &SpectraOptions::default()).unwrap();
    let fit = a.spectra.eis.iter().find(|s| s.step == 10).unwrap();
    assert!(fit.cut_short());
    assert_eq!(
        (fit.points_recorded, fit.points_planned),
        (rows.len() - 3, rows.len())
    );
    let w = a
        .analysis_warnings
        .iter()
        .find(|w| w.kind == IssueKind::SweepCutShort)
        .expect("a cut-short warning");
    assert_eq!(w.step, Some(10));
    assert!(
        w.message.contains("left out of the Arrhenius fit"),
        "{}",
        w.message
    );
    let arr = a.spectra.arrhenius.as_ref().unwrap();
    assert_eq!(arr.eis.as_ref().unwrap().n_points, 2, "step 10 left out");
    assert_eq!(arr.esm.as_ref().unwrap().n_points, 3);

    let opts = SpectraOptions {
        include_partial_sweeps: true,
        ..SpectraOptions::default()
    };
    let b = analyze_run(&dir, &opts).unwrap();
    assert_eq!(
        b.spectra.arrhenius.unwrap().eis.unwrap().n_points,
        3,
        "kept on request"
    );
    assert!(
        b.analysis_warnings
            .iter()
            .any(|w| w.kind == IssueKind::SweepCutShort && w.message.contains("kept")),
        "{:#?}",
        b.analysis_warnings
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn weak_clock_alignments_are_analysis_warnings() {
    let dir = scratch("alignment");
    let mut meta = vegard_store::read_meta(&dir).unwrap();
    let seg = &mut meta.alignment.as_mut().unwrap().segments[1];
    seg.note = Some(
        "digitizer drift not fitted (need at least 4 stamped samples, got 2); trigger offset only"
            .into(),
    );
    let (segment, step) = (seg.segment, seg.step);
    vegard_store::write_meta(&dir, &meta).unwrap();
    let a = analyze_run(&dir, &SpectraOptions::default()).unwrap();
    let w = a
        .analysis_warnings
        .iter()
        .find(|w| w.kind == IssueKind::Alignment)
        .expect("alignment warning");
    assert_eq!(w.step, Some(step));
    assert!(
        w.message.starts_with(&format!(
            "step {step} clock alignment (segment {segment}): digitizer drift not fitted"
        )),
        "{}",
        w.message
    );
    let _ = std::fs::remove_dir_all(&dir);
}
