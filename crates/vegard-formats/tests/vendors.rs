//! Vendor readers against real exports (impedance.py's example files) and
//! the reference numbers impedance.py 1.7.1's `readFile` gives for them;
//! plus refusals (a header naming other quantities is never read by
//! position) and fuzzing (no input panics or allocates beyond its size).

use std::path::PathBuf;

use vegard_formats::{Format, FormatError, ImagSign, csv, parse_ec_series, parse_impedance, parse_trace};

fn data(name: &str) -> Vec<u8> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/vendors").join(name);
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
        text += &format!("{}\t{}\t{}\n", orig.f_Hz[k], orig.Z_re_ohm[k], -orig.Z_im_ohm[k]);
    }
    let z = parse_impedance(text.as_bytes(), "neg.txt").unwrap();
    assert_eq!(z.imag_sign, ImagSign::Negated);
    assert!(z.sign_note.contains("negated"), "{}", z.sign_note);
    assert_eq!(z.Z_im_ohm, orig.Z_im_ohm);
}

#[test]
fn header_csv_variants() {
    let z = parse_impedance(b"freq/Hz;Re(Z)/Ohm;-Im(Z)/Ohm\n1000;1,5;0,25\n10;2,5;1,5\n", "x.csv").unwrap();
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
        ("dc.txt", &b"Potential (V)\tCurrent (A)\tElapsed Time (s)\n3.49\t-0.15\t10\n"[..]),
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
    assert_eq!(e, FormatError::Text { path: "bad.csv".into(), line: 3, why: "'x' in column 'Zre' is not a finite number".into() });
    assert!(e.to_string().starts_with("bad.csv:3: "));
}

#[test]
fn csv_series_and_trace() {
    let s = parse_ec_series(b"time/s,Ewe/V,<I>/mA,cycle number\n0,0.1,1.5,1\n0.5,0.2,-2,2\n", "cv.csv").unwrap();
    assert_eq!(s.t_s, vec![0.0, 0.5]);
    assert_eq!(s.E_V, vec![0.1, 0.2]);
    assert_eq!(s.I_A, vec![1.5e-3, -2e-3]);
    assert_eq!(s.cycle, Some(vec![1, 2]));
    let e = parse_ec_series(b"freq,Zre,Zim\n1,2,3\n", "z.csv").unwrap_err();
    assert!(matches!(e, FormatError::Unrecognised { .. }));

    let t = parse_trace(b"time (ms)\tdeflection (nm)\tsync\n0\t1.5\t0\n1\t2.5\t1\n", "d.tsv").unwrap();
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
