//! BioLogic EC-Lab readers on real files (tests/data/biologic, see the
//! README there for origin and licence). Expected values were read from
//! the text files themselves (first, middle and last data rows).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;

use vegard_formats::{Format, FormatError, ImagSign, biologic};

fn data(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/biologic")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Relative closeness (absolute near zero).
fn close(a: f64, b: f64, rel: f64) -> bool {
    (a - b).abs() <= rel * a.abs().max(b.abs()).max(1e-30)
}

#[track_caller]
fn assert_close(a: f64, b: f64) {
    assert!(close(a, b, 1e-12), "{a} != {b}");
}

// ------------------------------------------------------------------ .mpt

#[test]
fn cv_fixture_ixdat() {
    let bytes = data("Pt_poly_cv_CUT.mpt");
    assert!(biologic::sniff_mpt(&bytes));
    assert_eq!(vegard_formats::sniff(&bytes), Some(Format::BiologicMpt));
    let s = vegard_formats::parse_ec_series(&bytes, "Pt_poly_cv_CUT.mpt").unwrap();
    assert_eq!(s.format, Format::BiologicMpt);
    assert_eq!(s.t_s.len(), 223);
    assert_eq!(s.E_V.len(), 223);
    assert_eq!(s.I_A.len(), 223);
    // First, middle (index 111) and last rows; decimal commas in the file.
    assert_close(s.t_s[0], 3.289600104471901);
    assert_close(s.E_V[0], 0.87869531);
    assert_close(s.I_A[0], -2.604324994466466e-3 * 1e-3);
    assert_close(s.t_s[111], 77.55139822846104);
    assert_close(s.E_V[111], 0.17180039);
    assert_close(s.I_A[111], -1.849714276325026e-2 * 1e-3);
    assert_close(s.t_s[222], 151.810196352526);
    assert_close(s.E_V[222], 0.15471299);
    assert_close(s.I_A[222], 1.777131863198953e-2 * 1e-3);
    let cycle = s.cycle.as_ref().unwrap();
    assert_eq!(cycle[0], 1);
    assert_eq!(cycle[111], 3);
    assert_eq!(cycle[222], 5);
    let mut seen: Vec<i64> = cycle.clone();
    seen.dedup();
    assert_eq!(seen, vec![1, 2, 3, 4, 5]);
    assert_eq!(s.technique.as_deref(), Some("Cyclic Voltammetry Advanced"));
    // Acquisition started on : 07/29/2020 10:31:01 -> 1596018661 s (as UTC).
    assert_eq!(s.start_unix_ns, Some(1_596_018_661_000_000_000));
    let note = s.start_note.as_deref().unwrap();
    assert!(
        note.contains("local time") && note.contains("UTC"),
        "{note}"
    );
    assert_eq!(s.meta["device"], "SP-200 (SN 0961)");
}

#[test]
fn peis_fixture_impedance_py() {
    let bytes = data("exampleDataBioLogic.mpt");
    let z = vegard_formats::parse_impedance(&bytes, "exampleDataBioLogic.mpt").unwrap();
    assert_eq!(z.format, Format::BiologicMpt);
    assert_eq!(z.f_Hz.len(), 43);
    assert_eq!(z.Z_re_ohm.len(), 43);
    assert_eq!(z.Z_im_ohm.len(), 43);
    assert_eq!(z.imag_sign, ImagSign::Negated);
    assert!(z.sign_note.contains("-Im(Z)"));
    assert_close(z.f_Hz[0], 1000.3201);
    assert_close(z.Z_re_ohm[0], 65.470886);
    assert_close(z.Z_im_ohm[0], -0.38998979);
    assert_close(z.f_Hz[21], 4.1118407);
    assert_close(z.Z_re_ohm[21], 65.389824);
    assert_close(z.Z_im_ohm[21], -5.1409044);
    assert_close(z.f_Hz[42], 1.6895540e-2);
    assert_close(z.Z_re_ohm[42], 110.97003);
    assert_close(z.Z_im_ohm[42], -2.3458567);
    assert_eq!(
        z.meta["technique"],
        "Potentio Electrochemical Impedance Spectroscopy"
    );
    assert_eq!(z.meta["device"], "SP-150 (SN 10791079)");
    assert_eq!(z.meta["acquisition_started_on"], "02/04/2018 10:02:46");
}

#[test]
fn yadg_mpt_exports() {
    let z = biologic::mpt_impedance(&data("peis.mpt"), "peis.mpt").unwrap();
    assert_eq!(z.f_Hz.len(), 32);
    assert_close(z.f_Hz[0], 1.9999814e5);
    assert_close(z.Z_re_ohm[16], 12.048583);
    assert_close(z.Z_im_ohm[31], -2.6962531);

    let ca = biologic::mpt_series(&data("ca.issue_149.mpt"), "ca.issue_149.mpt").unwrap();
    assert_eq!(ca.t_s.len(), 80);
    assert_close(ca.t_s[0], 20.65059947832196);
    assert_close(ca.E_V[40], 3.4388921);
    assert_close(ca.I_A[79], 1.332343220587126e-2 * 1e-3);
    assert_eq!(
        ca.technique.as_deref(),
        Some("Chronoamperometry / Chronocoulometry")
    );
    // 01/10/2024 11:02:29.886
    assert_eq!(ca.start_unix_ns, Some(1_704_884_549_886_000_000));

    let cv = biologic::mpt_series(&data("cva.issue_202.mpt"), "cva.issue_202.mpt").unwrap();
    assert_eq!(cv.t_s.len(), 455);
    assert_close(cv.E_V[0], 2.8663592);
    assert_close(cv.E_V[227], 0.59631610);
    assert_close(cv.I_A[454], 2.501073511819982e-3);
    assert!(cv.cycle.as_ref().unwrap().iter().all(|&c| c == 1));
}

#[test]
fn wrong_kind_is_unrecognised() {
    let cv = data("Pt_poly_cv_CUT.mpt");
    for r in [
        biologic::mpt_impedance(&cv, "cv.mpt"),
        vegard_formats::parse_impedance(&cv, "cv.mpt"),
    ] {
        match r {
            Err(FormatError::Unrecognised { why, expected, .. }) => {
                assert!(why.contains("freq/Hz"), "{why}");
                assert!(expected.contains("impedance"), "{expected}");
            }
            other => panic!("{other:?}"),
        }
    }
    let eis = data("peis.mpt");
    match biologic::mpt_series(&eis, "peis.mpt") {
        Err(FormatError::Unrecognised { why, expected, .. }) => {
            assert!(why.contains("impedance"), "{why}");
            assert!(expected.contains("time series"), "{expected}");
        }
        other => panic!("{other:?}"),
    }
    // Not an EC-Lab file at all.
    assert!(matches!(
        biologic::mpt_series(b"hello", "x"),
        Err(FormatError::Unrecognised { .. })
    ));
}

#[test]
fn text_errors_name_file_and_line() {
    // A bad number on the 2nd data row of the CV (line 75).
    let text = String::from_utf8_lossy(&data("Pt_poly_cv_CUT.mpt")).into_owned();
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    let fields: Vec<&str> = lines[74].split('\t').collect();
    let mut fields: Vec<String> = fields.iter().map(|s| s.to_string()).collect();
    fields[8] = "abc".into(); // Ewe/V
    lines[74] = fields.join("\t");
    let bad = lines.join("\n");
    let err = biologic::mpt_series(bad.as_bytes(), "cv.mpt").unwrap_err();
    assert!(matches!(err, FormatError::Text { line: 75, .. }), "{err:?}");
    assert!(err.to_string().starts_with("cv.mpt:75: "), "{err}");
    assert!(err.to_string().contains("Ewe/V"), "{err}");

    // Header count beyond the file.
    let err = biologic::mpt_series(
        b"EC-Lab ASCII FILE\r\nNb header lines : 999\r\n\r\n",
        "short.mpt",
    )
    .unwrap_err();
    assert!(matches!(err, FormatError::Text { line: 2, .. }), "{err:?}");

    // A header and no rows.
    let err = biologic::mpt_impedance(
        b"EC-Lab ASCII FILE\nNb header lines : 3\nfreq/Hz\tRe(Z)/Ohm\t-Im(Z)/Ohm\t\n",
        "empty.mpt",
    )
    .unwrap_err();
    assert!(matches!(err, FormatError::Text { line: 3, .. }), "{err:?}");
}

#[test]
fn headerless_export() {
    let text = "freq/Hz\tRe(Z)/Ohm\t-Im(Z)/Ohm\t\n1,0E+003\t10,5\t0,25\n1.0E+002\t11.5\t1.25\n";
    assert!(biologic::sniff_mpt(text.as_bytes()));
    let z = vegard_formats::parse_impedance(text.as_bytes(), "x.mpt").unwrap();
    assert_eq!(z.f_Hz, vec![1000.0, 100.0]);
    assert_eq!(z.Z_re_ohm, vec![10.5, 11.5]);
    assert_eq!(z.Z_im_ohm, vec![-0.25, -1.25]);
}

// ------------------------------------------------------------------ .mpr

/// Every value equal within `rel` (the .mpt prints f32 columns with 8
/// significant digits).
#[track_caller]
fn assert_all_close(what: &str, a: &[f64], b: &[f64], rel: f64) {
    assert_eq!(a.len(), b.len(), "{what}: lengths");
    for (k, (x, y)) in a.iter().zip(b).enumerate() {
        assert!(close(*x, *y, rel), "{what}[{k}]: {x} vs {y}");
    }
}

#[test]
fn peis_mpr_equals_its_mpt() {
    let bytes = data("peis.mpr");
    assert!(biologic::sniff_mpr(&bytes));
    assert_eq!(vegard_formats::sniff(&bytes), Some(Format::BiologicMpr));
    let bin = vegard_formats::parse_impedance(&bytes, "peis.mpr").unwrap();
    let txt = biologic::mpt_impedance(&data("peis.mpt"), "peis.mpt").unwrap();
    assert_eq!(bin.format, Format::BiologicMpr);
    assert_eq!(bin.f_Hz.len(), 32);
    assert_all_close("f", &bin.f_Hz, &txt.f_Hz, 1e-6);
    assert_all_close("Z'", &bin.Z_re_ohm, &txt.Z_re_ohm, 1e-6);
    assert_all_close("Z''", &bin.Z_im_ohm, &txt.Z_im_ohm, 1e-6);
    assert_eq!(bin.imag_sign, ImagSign::Negated);
    assert_eq!(bin.meta["technique"], txt.meta["technique"]);
    // 03/02/2021 16:17:59.000 in the .mpt.
    let start: i64 = bin.meta["start_unix_ns"].parse().unwrap();
    assert!(
        (start - 1_614_701_879_000_000_000).abs() < 1_000_000,
        "{start}"
    );
}

#[track_caller]
fn series_mpr_equals_mpt(name: &str, n: usize, mpt_start_ns: i64) {
    let bin = vegard_formats::parse_ec_series(&data(&format!("{name}.mpr")), name).unwrap();
    let txt = biologic::mpt_series(&data(&format!("{name}.mpt")), name).unwrap();
    assert_eq!(bin.format, Format::BiologicMpr);
    assert_eq!(bin.t_s.len(), n);
    assert_all_close("t", &bin.t_s, &txt.t_s, 1e-6);
    assert_all_close("E", &bin.E_V, &txt.E_V, 1e-6);
    assert_all_close("I", &bin.I_A, &txt.I_A, 1e-6);
    if let Some(c) = &bin.cycle {
        assert_eq!(Some(c), txt.cycle.as_ref());
    }
    assert_eq!(bin.technique, txt.technique);
    assert_eq!(txt.start_unix_ns, Some(mpt_start_ns));
    let start = bin.start_unix_ns.unwrap();
    assert!(
        (start - mpt_start_ns).abs() < 1_000_000,
        "{start} vs {mpt_start_ns}"
    );
    let note = bin.start_note.unwrap();
    assert!(note.contains("VMP LOG") && note.contains("UTC"), "{note}");
}

#[test]
fn ca_mpr_equals_its_mpt() {
    // 01/10/2024 11:02:29.886
    series_mpr_equals_mpt("ca.issue_149", 80, 1_704_884_549_886_000_000);
    // The .mpr stores no cycle number for this CA; EC-Lab's export derives one.
    let bin = biologic::mpr_series(&data("ca.issue_149.mpr"), "ca").unwrap();
    assert!(bin.cycle.is_none());
}

#[test]
fn cva_mpr_equals_its_mpt() {
    // 12/31/2024 17:44:01.191
    series_mpr_equals_mpt("cva.issue_202", 455, 1_735_667_041_191_000_000);
    let bin = biologic::mpr_series(&data("cva.issue_202.mpr"), "cva").unwrap();
    assert!(bin.cycle.unwrap().iter().all(|&c| c == 1));
}

#[test]
fn mpr_wrong_kind_is_unrecognised() {
    match biologic::mpr_impedance(&data("cva.issue_202.mpr"), "cva.mpr") {
        Err(FormatError::Unrecognised { why, .. }) => assert!(why.contains("freq/Hz"), "{why}"),
        other => panic!("{other:?}"),
    }
    match vegard_formats::parse_ec_series(&data("peis.mpr"), "peis.mpr") {
        Err(FormatError::Unrecognised { why, .. }) => assert!(why.contains("impedance"), "{why}"),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        biologic::mpr_series(b"not an mpr", "x"),
        Err(FormatError::Unrecognised { .. })
    ));
}

#[test]
fn binary_errors_name_the_byte_offset() {
    let good = data("peis.mpr");
    // Module layout of peis.mpr (pre-11.50 headers, 51 bytes): the data
    // module's MODULE is at 6851, its length field at 6851 + 6 + 35 = 6892,
    // its data at 6908 (column IDs from 6913, records from 6908 + 0x196).

    // Cut inside the data module: its declared length no longer fits.
    let err = biologic::mpr_impedance(&good[..8000], "cut.mpr").unwrap_err();
    assert!(
        matches!(err, FormatError::Binary { offset: 6892, .. }),
        "{err:?}"
    );
    assert!(err.to_string().starts_with("cut.mpr: byte 6892: "), "{err}");

    // An unknown column ID (999) in place of the second one.
    let mut bad = good.clone();
    bad[6915..6917].copy_from_slice(&999u16.to_le_bytes());
    let err = biologic::mpr_impedance(&bad, "id.mpr").unwrap_err();
    assert!(
        matches!(&err, FormatError::Binary { offset: 6915, why, .. } if why.contains("999")),
        "{err:?}"
    );

    // A point count the bytes cannot hold (u32::MAX): refused before any
    // allocation is sized by it.
    let mut bad = good.clone();
    bad[6908..6912].copy_from_slice(&u32::MAX.to_le_bytes());
    let err = biologic::mpr_impedance(&bad, "n.mpr").unwrap_err();
    assert!(
        matches!(&err, FormatError::Binary { offset, why, .. }
            if *offset == 6908 + 0x196 && why.contains("4294967295")),
        "{err:?}"
    );

    // Garbage where the next MODULE should start.
    let mut bad = good.clone();
    bad[6851] = b'X';
    let err = biologic::mpr_impedance(&bad, "m.mpr").unwrap_err();
    assert!(
        matches!(err, FormatError::Binary { offset: 6851, .. }),
        "{err:?}"
    );
}

// ------------------------------------------------------------------ fuzz

mod fuzz {
    use super::data;
    use proptest::prelude::*;
    use std::sync::OnceLock;
    use vegard_formats::biologic;

    const FILES: [&str; 8] = [
        "exampleDataBioLogic.mpt",
        "Pt_poly_cv_CUT.mpt",
        "peis.mpr",
        "peis.mpt",
        "ca.issue_149.mpr",
        "ca.issue_149.mpt",
        "cva.issue_202.mpr",
        "cva.issue_202.mpt",
    ];

    fn fixtures() -> &'static Vec<Vec<u8>> {
        static F: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
        F.get_or_init(|| FILES.iter().map(|f| data(f)).collect())
    }

    /// Every reader on the bytes: any result is fine, a panic is not.
    fn all_readers(bytes: &[u8]) {
        let _ = biologic::sniff_mpt(bytes);
        let _ = biologic::sniff_mpr(bytes);
        let _ = biologic::mpt_impedance(bytes, "fuzz");
        let _ = biologic::mpt_series(bytes, "fuzz");
        let _ = biologic::mpr_impedance(bytes, "fuzz");
        let _ = biologic::mpr_series(bytes, "fuzz");
        let _ = vegard_formats::parse_impedance(bytes, "fuzz");
        let _ = vegard_formats::parse_ec_series(bytes, "fuzz");
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
            all_readers(&bytes);
        }

        #[test]
        fn arbitrary_bytes_behind_the_magics(
            which in 0usize..3,
            tail in proptest::collection::vec(any::<u8>(), 0..2048),
        ) {
            let mut bytes: Vec<u8> = match which {
                0 => b"EC-Lab ASCII FILE\r\nNb header lines : 5\r\n".to_vec(),
                1 => b"freq/Hz\tRe(Z)/Ohm\t-Im(Z)/Ohm\n".to_vec(),
                _ => {
                    let mut m = b"BIO-LOGIC MODULAR FILE\x1a".to_vec();
                    m.resize(48, b' ');
                    m.extend_from_slice(&[0; 4]);
                    m.extend_from_slice(b"MODULE");
                    m
                }
            };
            bytes.extend_from_slice(&tail);
            all_readers(&bytes);
        }

        #[test]
        fn truncated_fixtures(file in 0usize..FILES.len(), cut in any::<prop::sample::Index>()) {
            let f = &fixtures()[file];
            let n = cut.index(f.len() + 1);
            all_readers(&f[..n]);
        }

        #[test]
        fn flipped_fixtures(
            file in 0usize..FILES.len(),
            flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..16),
        ) {
            let mut f = fixtures()[file].clone();
            let len = f.len();
            for (at, v) in flips {
                f[at.index(len)] = v;
            }
            all_readers(&f);
        }

        /// Flips confined to the module headers and the data-module
        /// header of the .mpr files, where the counts and layout live.
        #[test]
        fn flipped_mpr_headers(
            file in prop::sample::select(vec![2usize, 4, 6]),
            flips in proptest::collection::vec((0usize..1200, any::<u8>()), 1..6),
        ) {
            let mut f = fixtures()[file].clone();
            // The data module starts after the settings module (~6.9 kB).
            let base = 6800;
            for (at, v) in flips {
                let i = (base + at) % f.len();
                f[i] = v;
            }
            all_readers(&f);
        }
    }
}
