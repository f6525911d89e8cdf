//! Vendor readers against real exports (impedance.py's example files) and
//! the reference numbers impedance.py 1.7.1's `readFile` gives for them;
//! plus refusals (a header naming other quantities is never read by
//! position) and fuzzing (no input panics or allocates beyond its size).

use std::path::PathBuf;

use vegard_formats::{
    Format, FormatError, ImagSign, csv, parse_ec_series, parse_impedance, parse_trace,
};

fn data(name: &str) -> Vec<u8> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/vendors")
        .join(name);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// Relative closeness, for values printed with 4-7 significant digits.
fn close(a: f64, b: f64, rel: f64) -> bool {
    (a - b).abs() <= rel * a.abs().max(b.abs()) + 1e-300
}

fn sum(v: &[f64]) -> f64 {
    v.iter().sum()
}

// ---------------------------------------------------------------- CSV

#[test]
fn example_data_csv_headerless() {
    let z = parse_impedance(&data("exampleData.csv"), "exampleData.csv").unwrap();
    assert_eq!(z.format, Format::PlainCsv);
    assert_eq!(z.f_Hz.len(), 66);
    assert_eq!(z.imag_sign, ImagSign::AsIs);
    // impedance.py readFile(instrument=None): first, last point, sums.
    assert_eq!(z.f_Hz[0], 0.0031623);
    assert_eq!(z.Z_re_ohm[0], 0.0494998977640506);
    assert_eq!(z.Z_im_ohm[0], -0.020438698544418925);
    assert_eq!(z.f_Hz[65], 10000.0);
    assert_eq!(z.Z_im_ohm[65], 0.010157474564938236);
    assert!(close(sum(&z.Z_re_ohm), 1.8027416097049982, 1e-12));
    assert!(close(sum(&z.Z_im_ohm), -0.2432472672939686, 1e-12));
    assert!(close(sum(&z.f_Hz), 48621.3211202, 1e-12));
}

#[test]
fn headerless_minus_z_is_negated_and_says_so() {
    let orig = parse_impedance(&data("exampleData.csv"), "a").unwrap();
    let mut text = String::new();
    for k in 0..orig.f_Hz.len() {
        text += &format!(
            "{}\t{}\t{}\n",
            orig.f_Hz[k], orig.Z_re_ohm[k], -orig.Z_im_ohm[k]
        );
    }
    let z = parse_impedance(text.as_bytes(), "neg.txt").unwrap();
    assert_eq!(z.imag_sign, ImagSign::Negated);
    assert!(z.sign_note.contains("negated"), "{}", z.sign_note);
    assert_eq!(z.Z_im_ohm, orig.Z_im_ohm);
}

#[test]
fn header_csv_variants() {
    let z = parse_impedance(
        b"freq/Hz;Re(Z)/Ohm;-Im(Z)/Ohm\n1000;1,5;0,25\n10;2,5;1,5\n",
        "x.csv",
    )
    .unwrap();
    assert_eq!(z.format, Format::HeaderCsv);
    assert_eq!(z.imag_sign, ImagSign::Negated);
    assert_eq!(z.Z_re_ohm, vec![1.5, 2.5]);
    assert_eq!(z.Z_im_ohm, vec![-0.25, -1.5]);
    let z = parse_impedance(b"Frequency (kHz),|Z| (ohm),Phase (deg)\n1,2,-90\n", "p.csv").unwrap();
    assert_eq!(z.imag_sign, ImagSign::FromPolar);
    assert_eq!(z.f_Hz, vec![1000.0]);
    assert!(z.Z_re_ohm[0].abs() < 1e-12 && close(z.Z_im_ohm[0], -2.0, 1e-12));
    // numpy's saveCSV header line.
    let z = parse_impedance(b"# freq,Re(Z),Im(Z)\n1.0,2.0,-3.0\n", "s.csv").unwrap();
    assert_eq!(z.format, Format::HeaderCsv);
    assert_eq!(z.Z_im_ohm, vec![-3.0]);
}

#[test]
fn header_not_naming_impedance_is_refused() {
    for (name, bytes) in [
        ("cv.csv", &b"time,E,I\n0,0.1,1e-6\n1,0.2,2e-6\n"[..]),
        (
            "dc.txt",
            &b"Potential (V)\tCurrent (A)\tElapsed Time (s)\n3.49\t-0.15\t10\n"[..],
        ),
        ("five.csv", &b"1,2,3,4,5\n1,2,3,4,5\n"[..]),
    ] {
        let e = csv::impedance(bytes, name).unwrap_err();
        assert!(matches!(e, FormatError::Unrecognised { .. }), "{name}: {e}");
        let e = parse_impedance(bytes, name).unwrap_err();
        assert!(matches!(e, FormatError::Unrecognised { .. }), "{name}: {e}");
    }
}

#[test]
fn bad_row_names_file_and_line() {
    let e = parse_impedance(b"f,Zre,Zim\n1,2,3\n2,x,4\n", "bad.csv").unwrap_err();
    assert_eq!(
        e,
        FormatError::Text {
            path: "bad.csv".into(),
            line: 3,
            why: "'x' in column 'Zre' is not a finite number".into()
        }
    );
    assert!(e.to_string().starts_with("bad.csv:3: "));
}

#[test]
fn csv_series_and_trace() {
    let s = parse_ec_series(
        b"time/s,Ewe/V,<I>/mA,cycle number\n0,0.1,1.5,1\n0.5,0.2,-2,2\n",
        "cv.csv",
    )
    .unwrap();
    assert_eq!(s.t_s, vec![0.0, 0.5]);
    assert_eq!(s.E_V, vec![0.1, 0.2]);
    assert_eq!(s.I_A, vec![1.5e-3, -2e-3]);
    assert_eq!(s.cycle, Some(vec![1, 2]));
    let e = parse_ec_series(b"freq,Zre,Zim\n1,2,3\n", "z.csv").unwrap_err();
    assert!(matches!(e, FormatError::Unrecognised { .. }));

    let t = parse_trace(
        b"time (ms)\tdeflection (nm)\tsync\n0\t1.5\t0\n1\t2.5\t1\n",
        "d.tsv",
    )
    .unwrap();
    assert_eq!(t.t_s, vec![0.0, 1e-3]);
    assert_eq!(t.value, vec![1.5, 2.5]);
    assert_eq!(t.unit, "nm");
    assert_eq!(t.sync, Some(vec![0.0, 1.0]));
    let t = parse_trace(b"t/s,defl/m\n0,1e-9\n", "d.csv").unwrap();
    assert_eq!(t.unit, "m");
    let t = parse_trace(b"t,Signal [V]\n0,1\n", "d.csv").unwrap();
    assert_eq!(t.unit, "V");
    let e = parse_trace(b"0,1\n1,2\n", "d.csv").unwrap_err();
    assert!(matches!(e, FormatError::Unrecognised { .. }));
}

// ------------------------------------------------------ vendor spectra

/// (file, format, points, first f/Z'/Z'', last f/Z'/Z'', sums of Z', Z'', f)
/// as impedance.py 1.7.1 readFile(path, instrument=...) gives them.
type Ref = (&'static str, Format, usize, [f64; 3], [f64; 3], [f64; 3]);
const REFS: &[Ref] = &[
    (
        "exampleDataGamry.DTA",
        Format::GamryDta,
        72,
        [200015.6, 825.8584, -1367.239],
        [0.0158898, 17007.49, -6635.557],
        [375919.5774, -89675.9714, 973178.0406607],
    ),
    (
        "exampleDataGamryABORT.DTA",
        Format::GamryDta,
        72,
        [200015.6, 825.8584, -1367.239],
        [0.0158898, 17007.49, -6635.557],
        [375919.5774, -89675.9714, 973178.0406607],
    ),
    (
        "exampleDataCHInstruments.txt",
        Format::ChiText,
        73,
        [99610.0, 98.91, -2.748],
        [0.1, 5685.0, -15860.0],
        [61529.38, -120906.0441, 572423.4317],
    ),
    (
        "exampleDataZPlot.z",
        Format::Zplot,
        21,
        [300000.0, 147.77, -11.335],
        [3000.0, 613.68, -137.13],
        [6141.48, -2778.253, 1447048.485],
    ),
    (
        "exampleDataZPlot_noComments.z",
        Format::Zplot,
        31,
        [300000.0, 642.62, -85.821],
        [300.0, 1305.3, -195.01],
        [30882.72, -4569.951, 1457476.1995],
    ),
    (
        "Circuit1_EIS_1.z",
        Format::Zplot,
        48,
        [50000.0, 29.036, 0.63662],
        [1.0, 75.803, -0.16244],
        [2595.766, -312.48461, 243101.95497],
    ),
    (
        "exampleDataAutolab.txt",
        Format::AutolabText,
        41,
        [10000.0, 0.013785863964281, 0.007191946305823],
        [0.1, 0.0345697771923854, -0.00390292888845954],
        [0.9341171867518174, -0.0941893857576214, 39982.81128],
    ),
    (
        "exampleDataParstat.txt",
        Format::ParstatText,
        31,
        [10000.0, -0.00049816280376104, 0.0175143479976367],
        [10.0, 0.0270946491457229, -0.00399791080333837],
        [0.648558700165598, 0.01332349070644827, 48582.539269447356],
    ),
    (
        "exampleDataVersaStudio.par",
        Format::ParstatText,
        61,
        [100000.0, 55.31571, 4.575431],
        [0.02154435, 1516.313, -122.8279],
        [23565.73218, -8720.966230269998, 442994.68075957],
    ),
];

#[test]
fn vendor_spectra_match_impedance_py() {
    for (name, format, n, first, last, sums) in REFS {
        let z = parse_impedance(&data(name), name).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(z.format, *format, "{name}");
        assert_eq!(z.f_Hz.len(), *n, "{name}");
        assert_eq!(z.imag_sign, ImagSign::AsIs, "{name}");
        // Single values are parsed from the same decimal text: exact.
        assert_eq!([z.f_Hz[0], z.Z_re_ohm[0], z.Z_im_ohm[0]], *first, "{name}");
        let k = n - 1;
        assert_eq!([z.f_Hz[k], z.Z_re_ohm[k], z.Z_im_ohm[k]], *last, "{name}");
        // Sums differ from numpy's pairwise sums by rounding only: 1e-12.
        for (got, want) in [sum(&z.Z_re_ohm), sum(&z.Z_im_ohm), sum(&z.f_Hz)]
            .iter()
            .zip(sums)
        {
            assert!(close(*got, *want, 1e-12), "{name}: {got} vs {want}");
        }
    }
}

#[test]
fn vendor_metadata() {
    let z = parse_impedance(&data("exampleDataParstat.txt"), "p").unwrap();
    assert!(
        z.meta["dc_rows_skipped"].starts_with("781 rows"),
        "{:?}",
        z.meta
    );
    let z = parse_impedance(&data("exampleDataGamryABORT.DTA"), "g").unwrap();
    assert_eq!(z.meta["EXPERIMENTABORTED"], "T");
    assert_eq!(z.meta["TAG"], "EISPOT");
    let z = parse_impedance(&data("exampleDataZPlot.z"), "z").unwrap();
    assert!(z.meta["points_note"].contains("56"), "{:?}", z.meta);
    let z = parse_impedance(&data("exampleDataCHInstruments.txt"), "c").unwrap();
    assert_eq!(z.meta["technique"], "A.C. Impedance");
    assert_eq!(z.meta["Instrument Model"], "CHI660E");
}

/// The Parstat file's first columns are potential, current and time: read
/// by position they would be taken as f, Z', Z''. The csv reader refuses
/// the DC columns alone, and by name reads the same 31 EIS points' values.
#[test]
fn parstat_is_never_read_by_position() {
    let bytes = data("exampleDataParstat.txt");
    let text = String::from_utf8(bytes.clone()).unwrap();
    let dc_only: String = text
        .lines()
        .map(|l| l.split('\t').take(3).collect::<Vec<_>>().join("\t") + "\n")
        .collect();
    let e = csv::impedance(dc_only.as_bytes(), "dc.txt").unwrap_err();
    assert!(matches!(e, FormatError::Unrecognised { .. }), "{e}");
    // Read as generic CSV the f = 0 rows are an error (line 2), not data.
    let e = csv::impedance(&bytes, "p.txt").unwrap_err();
    assert!(matches!(e, FormatError::Text { line: 2, .. }), "{e}");
}
