//! Shared helpers of the text readers: decoding (UTF-8, else latin-1, as
//! EC-Lab and NOVA write on European Windows machines), numbers written
//! with a decimal comma, and a size-bounded line split.

use std::borrow::Cow;

/// Decode text: UTF-8 when it is valid (a BOM is dropped), else latin-1,
/// which maps every byte to a char and so never fails.
pub fn decode(bytes: &[u8]) -> Cow<'_, str> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    match std::str::from_utf8(bytes) {
        Ok(s) => Cow::Borrowed(s),
        Err(_) => Cow::Owned(bytes.iter().map(|&b| char::from(b)).collect()),
    }
}

/// Parse a number that may use a decimal comma (`1,234E-03`). Only a field
/// with exactly one comma and no point is read as a decimal comma, so a
/// caller must split fields on its own delimiter first. Only finite
/// values: `inf`/`NaN` in a data file is a broken row, not a measurement.
pub fn number(field: &str) -> Option<f64> {
    let field = field.trim();
    if field.is_empty() {
        return None;
    }
    let v = match field.parse::<f64>() {
        Ok(v) => Some(v),
        Err(_) if field.matches(',').count() == 1 && !field.contains('.') => {
            field.replace(',', ".").parse::<f64>().ok()
        }
        Err(_) => None,
    };
    v.filter(|v| v.is_finite())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn latin1_and_decimal_commas() {
        assert_eq!(decode(b"\xB5A"), "µA");
        assert_eq!(decode("µA".as_bytes()), "µA");
        assert_eq!(number("1,5E-03"), Some(1.5e-3));
        assert_eq!(number(" -2.5 "), Some(-2.5));
        assert_eq!(number("1,2,3"), None);
        assert_eq!(number("1,2.3"), None);
        assert_eq!(number(""), None);
        assert_eq!(number("inf"), None);
        assert_eq!(number("NaN"), None);
    }
}
