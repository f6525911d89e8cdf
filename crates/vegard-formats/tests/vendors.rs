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
#[allow(clippy::approx_constant)] // 0.63662 is a measured Z'', not 2/pi
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

// ---------------------------------------------------------------- Igor

/// Waves written by tests/data/vendors/igor/write.py (a TN003 layout
/// writer); the reference values are what igor2 0.5.15's reader gives.
#[test]
#[allow(clippy::type_complexity)]
fn igor_waves_match_igor2() {
    // (file, points, unit, version, value[0], value[1], value[last], sum, dx)
    let refs: &[(&str, usize, &str, &str, f64, f64, f64, f64, f64)] = &[
        (
            "trace_v2_le.ibw",
            100,
            "V",
            "2",
            0.0,
            0.0998334139585495,
            -0.45753589272499084,
            18.647397553548217,
            1e-3,
        ),
        (
            "force_v5_be.ibw",
            100,
            "m",
            "5",
            9.999999717180685e-10,
            9.898132313779229e-10,
            -5.6901709906409526e-12,
            7.485132837875032e-09,
            2e-5,
        ),
        (
            "int16_v5_le.ibw",
            100,
            "V",
            "5",
            -150.0,
            -147.0,
            147.0,
            -150.0,
            1e-3,
        ),
        (
            "multi_v5_le.ibw",
            50,
            "m",
            "5",
            -0.0,
            -1e-09,
            -4.9e-08,
            -1.2250000000000001e-06,
            1e-4,
        ),
    ];
    for (name, n, unit, version, v0, v1, vl, s, dx) in refs {
        let path = format!("igor/{name}");
        let t = parse_trace(&data(&path), name).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(t.format, Format::IgorIbw);
        assert_eq!(t.value.len(), *n, "{name}");
        assert_eq!(t.t_s.len(), *n, "{name}");
        assert_eq!(t.unit, *unit, "{name}");
        assert_eq!(t.meta["igor_version"], *version, "{name}");
        assert_eq!(
            [t.value[0], t.value[1], t.value[n - 1]],
            [*v0, *v1, *vl],
            "{name}"
        );
        assert!(close(sum(&t.value), *s, 1e-12), "{name}");
        assert!(close(t.t_s[1], *dx, 1e-15), "{name}");
    }
    let t = parse_trace(&data("igor/force_v5_be.ibw"), "f").unwrap();
    assert_eq!(t.meta["note.InvOLS"], "5.2e-08");
    assert_eq!(t.meta["note.SpringConstant"], "0.12");
    let t = parse_trace(&data("igor/multi_v5_le.ibw"), "m").unwrap();
    assert!(t.meta["value_column"].contains("'Defl'"), "{:?}", t.meta);
    let t = parse_trace(&data("igor/trace_v2_le.ibw"), "t").unwrap();
    assert_eq!(
        t.meta["x0"],
        "0.5 s (x offset of the first point; t_s starts at 0)"
    );
    // A wave is not a spectrum.
    let e = parse_impedance(&data("igor/trace_v2_le.ibw"), "t").unwrap_err();
    assert!(matches!(e, FormatError::Unrecognised { .. }));
}

/// Declared sizes larger than the file are errors, not allocations.
#[test]
fn igor_oversized_counts_are_errors() {
    let mut b = data("igor/force_v5_be.ibw");
    // npnts (big endian, @64+12) = 2^31 - 1, nDim[0] the same, checksum fixed.
    for off in [64 + 12, 64 + 68] {
        b[off..off + 4].copy_from_slice(&i32::MAX.to_be_bytes());
    }
    fix_checksum(&mut b, 384, false);
    let e = parse_trace(&b, "big.ibw").unwrap_err();
    assert!(matches!(e, FormatError::Binary { offset: 384, .. }), "{e}");
    let mut b = data("igor/trace_v2_le.ibw");
    b[16 + 42..16 + 46].copy_from_slice(&1_000_000i32.to_le_bytes());
    fix_checksum(&mut b, 126, true);
    assert!(matches!(
        parse_trace(&b, "big2.ibw").unwrap_err(),
        FormatError::Binary { .. }
    ));
    // A broken checksum is not an Igor wave at all.
    let mut b = data("igor/trace_v2_le.ibw");
    b[20] ^= 1;
    assert!(parse_trace(&b, "x.ibw").is_err());
}

fn fix_checksum(b: &mut [u8], n: usize, little: bool) {
    let at = if n == 126 { 14 } else { 2 };
    b[at] = 0;
    b[at + 1] = 0;
    let mut s: u16 = 0;
    for k in (0..n).step_by(2) {
        let v = [b[k], b[k + 1]];
        s = s.wrapping_add(if little {
            u16::from_le_bytes(v)
        } else {
            u16::from_be_bytes(v)
        });
    }
    let c = 0u16.wrapping_sub(s);
    let c = if little {
        c.to_le_bytes()
    } else {
        c.to_be_bytes()
    };
    b[at..at + 2].copy_from_slice(&c);
}

// ------------------------------------------------- vendor time series

/// Synthetic Gamry CV in the EXPLAIN layout (two CURVEn tables, one per
/// cycle; decimal commas as on a German Windows).
const GAMRY_CV: &str = "EXPLAIN\r\nTAG\tCV\r\nTITLE\tLABEL\tCyclic Voltammetry\tTest &Identifier\r\nDATE\tLABEL\t4/23/2018\tDate\r\nTIME\tLABEL\t16:43:15\tTime\r\nSCANRATE\tQUANT\t1,00000E+002\tScan Rate (mV/s)\r\nCURVE1\tTABLE\t3\r\n\tPt\tT\tVf\tIm\tVu\tSig\tAch\tIERange\tOver\r\n\t#\ts\tV vs. Ref.\tA\tV\tV\tV\t#\tbits\r\n\t0\t0,01\t0,1\t1,5E-006\t0\t0\t0\t5\t...........\r\n\t1\t0,02\t0,2\t2,5E-006\t0\t0\t0\t5\t...........\r\n\t2\t0,03\t0,1\t-1E-006\t0\t0\t0\t5\t...........\r\nCURVE2\tTABLE\t2\r\n\tPt\tT\tVf\tIm\tVu\tSig\tAch\tIERange\tOver\r\n\t#\ts\tV vs. Ref.\tA\tV\tV\tV\t#\tbits\r\n\t0\t0,04\t0,2\t3E-006\t0\t0\t0\t5\t...........\r\n\t1\t0,05\t0,1\t-2E-006\t0\t0\t0\t5\t...........\r\n";

/// Synthetic CHI CV export (layout of the CHI660E text export).
const CHI_CV: &str = "Jul. 10, 2019   14:22:41\nCyclic Voltammetry\nFile:  C:\\data\\cv.bin\nData Source:  Experiment\nInstrument Model:  CHI660E\nHeader: \nNote: \n\nInit E (V) = 0\nHigh E (V) = 0.002\nLow E (V) = 0\nInit P/N = P\nScan Rate (V/s) = 0.1\nSegment = 2\nSample Interval (V) = 0.001\nQuiet Time (sec) = 2\nSensitivity (A/V) = 1e-6\n\nPotential/V, Current/A\n\n0.000, 1.000e-7\n0.001, 2.000e-7\n0.002, 3.000e-7\n0.001, -1.000e-7\n0.000, -2.000e-7\n";

#[test]
fn gamry_and_chi_series() {
    let s = parse_ec_series(GAMRY_CV.as_bytes(), "cv.DTA").unwrap();
    assert_eq!(s.format, Format::GamryDta);
    assert_eq!(s.technique.as_deref(), Some("CV"));
    assert_eq!(s.t_s, vec![0.01, 0.02, 0.03, 0.04, 0.05]);
    assert_eq!(s.E_V, vec![0.1, 0.2, 0.1, 0.2, 0.1]);
    assert_eq!(s.I_A, vec![1.5e-6, 2.5e-6, -1e-6, 3e-6, -2e-6]);
    assert_eq!(s.cycle, Some(vec![1, 1, 1, 2, 2]));
    assert_eq!(s.start_unix_ns, Some(1_524_501_795_000_000_000));
    assert!(s.start_note.unwrap().contains("UTC"));
    // The impedance example has no CURVE table: not a time series.
    let e = parse_ec_series(&data("exampleDataGamry.DTA"), "g").unwrap_err();
    assert!(matches!(e, FormatError::Unrecognised { .. }), "{e}");
    let e = parse_impedance(GAMRY_CV.as_bytes(), "cv.DTA").unwrap_err();
    assert!(matches!(e, FormatError::Unrecognised { .. }), "{e}");

    let s = parse_ec_series(CHI_CV.as_bytes(), "cv.txt").unwrap();
    assert_eq!(s.format, Format::ChiText);
    assert_eq!(s.technique.as_deref(), Some("Cyclic Voltammetry"));
    assert_eq!(s.E_V, vec![0.0, 0.001, 0.002, 0.001, 0.0]);
    assert_eq!(s.I_A, vec![1e-7, 2e-7, 3e-7, -1e-7, -2e-7]);
    for (t, want) in s.t_s.iter().zip([0.0, 0.01, 0.02, 0.03, 0.04]) {
        assert!((t - want).abs() < 1e-12, "{:?}", s.t_s);
    }
    assert!(s.meta["t_note"].contains("scan rate"));
    assert_eq!(s.meta["Segment"], "2");
    assert_eq!(s.start_unix_ns, Some(1_562_768_561_000_000_000));
    let e = parse_impedance(CHI_CV.as_bytes(), "cv.txt").unwrap_err();
    assert!(matches!(e, FormatError::Unrecognised { .. }), "{e}");
}

/// Synthetic NOVA export (`;`, decimal commas, -Z'' and -Phase columns)
/// holding the first points of exampleData.csv: same f/Z after reading.
#[test]
fn nova_export_gives_the_example_spectrum() {
    let orig = parse_impedance(&data("exampleData.csv"), "a").unwrap();
    let mut text = String::from(
        "Index;Frequency (Hz);Z' (\u{3a9});-Z'' (\u{3a9});Z (\u{3a9});-Phase (\u{b0});Time (s)\r\n",
    );
    for k in 0..orig.f_Hz.len() {
        let (re, im) = (orig.Z_re_ohm[k], orig.Z_im_ohm[k]);
        let row = format!(
            "{};{:e};{:e};{:e};{:e};{:e};{}",
            k + 1,
            orig.f_Hz[k],
            re,
            -im,
            re.hypot(im),
            -im.atan2(re).to_degrees(),
            k
        );
        text += &row.replace('.', ",");
        text += "\r\n";
    }
    let z = parse_impedance(text.as_bytes(), "nova.txt").unwrap();
    assert_eq!(z.format, Format::AutolabText);
    assert_eq!(z.imag_sign, ImagSign::Negated);
    assert_eq!(z.f_Hz, orig.f_Hz);
    assert_eq!(z.Z_re_ohm, orig.Z_re_ohm);
    assert_eq!(z.Z_im_ohm, orig.Z_im_ohm);
}

// ---------------------------------------------------------------- fuzz

mod fuzz {
    use super::*;
    use proptest::prelude::*;
    use vegard_formats::{autolab, chi, gamry, igor, parstat, zplot};

    const FILES: &[&str] = &[
        "exampleData.csv",
        "exampleDataGamry.DTA",
        "exampleDataCHInstruments.txt",
        "exampleDataZPlot.z",
        "exampleDataZPlot_noComments.z",
        "exampleDataAutolab.txt",
        "exampleDataParstat.txt",
        "exampleDataVersaStudio.par",
        "igor/force_v5_be.ibw",
        "igor/multi_v5_le.ibw",
        "igor/trace_v2_le.ibw",
    ];

    /// Every reader and dispatcher on the bytes: only Ok or Err, no panic.
    fn all_readers(b: &[u8]) {
        let s = "fuzz";
        let _ = vegard_formats::sniff(b);
        let _ = parse_impedance(b, s);
        let _ = parse_ec_series(b, s);
        let _ = parse_trace(b, s);
        let _ = csv::impedance(b, s);
        let _ = csv::series(b, s);
        let _ = csv::trace(b, s);
        let _ = gamry::impedance(b, s);
        let _ = gamry::series(b, s);
        let _ = chi::impedance(b, s);
        let _ = chi::series(b, s);
        let _ = zplot::impedance(b, s);
        let _ = autolab::impedance(b, s);
        let _ = parstat::impedance(b, s);
        let _ = igor::trace(b, s);
        for f in [
            gamry::sniff,
            chi::sniff,
            zplot::sniff,
            autolab::sniff,
            parstat::sniff,
            igor::sniff,
        ] {
            let _ = f(b);
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

        #[test]
        fn arbitrary_bytes(b in proptest::collection::vec(any::<u8>(), 0..2048)) {
            all_readers(&b);
        }

        #[test]
        fn mutated_fixtures(
            which in 0..FILES.len(),
            cut in any::<prop::sample::Index>(),
            flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..8),
        ) {
            let mut b = data(FILES[which]);
            for (at, v) in flips {
                let k = at.index(b.len());
                b[k] = v;
            }
            all_readers(&b);
            let n = cut.index(b.len() + 1);
            all_readers(&b[..n]);
        }

        /// Igor headers with random sizes but a valid checksum.
        #[test]
        fn igor_headers(which in 0..3usize, words in proptest::collection::vec((0..96usize, any::<i32>()), 1..6)) {
            let name = ["igor/force_v5_be.ibw", "igor/multi_v5_le.ibw", "igor/trace_v2_le.ibw"][which];
            let (n, little) = [(384, false), (384, true), (126, true)][which];
            let mut b = data(name);
            for (w, v) in words {
                let off = (w * 4).min(n - 4);
                let bytes = if little { v.to_le_bytes() } else { v.to_be_bytes() };
                b[off..off + 4].copy_from_slice(&bytes);
            }
            b[0] = if little { [5, 5, 2][which] } else { 0 };
            b[1] = if little { 0 } else { 5 };
            fix_checksum(&mut b, n, little);
            all_readers(&b);
        }
    }
}
