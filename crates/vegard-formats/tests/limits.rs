//! Input limits of the readers (issue 16): line length and point counts
//! are checked in one pass before any reader parses the text; each error
//! names the file and the line where the limit was crossed.
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;

use vegard_formats::{
    FormatError, MAX_LINE_BYTES, MAX_SPECTRUM_POINTS, parse_ec_series, parse_impedance, parse_trace,
};

fn vendor(name: &str) -> Vec<u8> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/vendors")
        .join(name);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// `n` rows of impedance.py's 3-column example spectrum, repeated.
fn repeated_spectrum(n: usize) -> Vec<u8> {
    let rows: Vec<Vec<u8>> = vendor("exampleData.csv")
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(<[u8]>::to_vec)
        .collect();
    let mut out = Vec::new();
    for k in 0..n {
        out.extend(&rows[k % rows.len()]);
        out.push(b'\n');
    }
    out
}

#[test]
fn a_spectrum_of_more_points_than_the_limit_is_refused_at_the_line_that_crosses_it() {
    let d = parse_impedance(&repeated_spectrum(MAX_SPECTRUM_POINTS), "big.csv").unwrap();
    assert_eq!(d.f_Hz.len(), MAX_SPECTRUM_POINTS);
    let e = parse_impedance(&repeated_spectrum(930_000), "huge.csv").unwrap_err();
    assert_eq!(
        e,
        FormatError::Text {
            path: "huge.csv".into(),
            line: MAX_SPECTRUM_POINTS + 1,
            why: "more than 100000 data rows: an impedance spectrum (a measured one has \
                  10-1000) has at most 100000 points here; decimate it or split it"
                .into(),
        }
    );
    // A vendor header does not count: EC-Lab's 60-odd header lines.
    assert!(
        parse_impedance(
            &std::fs::read(
                PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                    .join("tests/data/biologic/exampleDataBioLogic.mpt")
            )
            .unwrap(),
            "x.mpt"
        )
        .is_ok()
    );
}

#[test]
fn a_line_longer_than_the_limit_is_refused_with_its_number() {
    let mut bytes = repeated_spectrum(3);
    bytes.extend(vec![b'1'; MAX_LINE_BYTES + 1]);
    bytes.push(b'\n');
    for e in [
        parse_impedance(&bytes, "long.csv").unwrap_err(),
        parse_ec_series(&bytes, "long.csv").unwrap_err(),
        parse_trace(&bytes, "long.csv").unwrap_err(),
    ] {
        assert_eq!(
            e.to_string(),
            "long.csv:4: line of 65537 bytes: at most 65536 bytes per line (a data row is \
             tens of bytes)"
        );
    }
    // A file of lone-CR line ends is split on them, as the readers do.
    let cr: Vec<u8> = repeated_spectrum(5)
        .into_iter()
        .map(|b| if b == b'\n' { b'\r' } else { b })
        .collect();
    assert_eq!(parse_impedance(&cr, "cr.csv").unwrap().f_Hz.len(), 5);
}

#[test]
fn a_binary_trace_is_not_split_into_lines() {
    // The Igor wave is bytes: its "lines" are not checked (it is refused
    // as a spectrum for what it is, not for a long line).
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/vendors/igor");
    let ibw = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "ibw"))
        .unwrap();
    let bytes = std::fs::read(&ibw).unwrap();
    assert!(parse_trace(&bytes, "t.ibw").is_ok());
    assert!(matches!(
        parse_impedance(&bytes, "t.ibw"),
        Err(FormatError::Unrecognised { .. })
    ));
}
