//! Limits on the text of configuration files (recipes, bench configs,
//! report specs, run.toml), checked on the bytes before any parser sees
//! them, and the positions of what broke them.
//!
//! Why before parsing: the TOML parser allocates for every nesting level
//! and only stops at its own recursion limit, so 20 MB of `[[[[...` cost
//! 1 GB of memory before the parser refused it (issue 16), and a non-UTF-8
//! file was refused without a position. The checks here are one linear pass
//! over the bytes with constant memory, so no input can cost more than its
//! length. Reading the file (bounded by the size limits below) is the
//! caller's; this module does no I/O.
//!
//! Positions are 1-based line and character column, as in every
//! `FILE:LINE:COL` message vegard prints.

/// Largest recipe, bench config or report spec, bytes: 1 MiB. Real ones
/// are 1-10 kB (the 2 h 46 min campaign recipe is 2 kB); a megabyte of
/// TOML is generated, not written, and refusing it bounds the memory every
/// later stage (parser, spanned document, plan) can take.
pub const MAX_CONFIG_FILE_BYTES: u64 = 1 << 20;

/// Largest run.toml, bytes: 16 MiB. vegard writes it: the recipe and
/// bench tables (a few kB), a record per executed step (about 300 B, at
/// most `vegard_recipe::MAX_PLAN_STEPS` = 10 000 of them: 3 MB) and an
/// import's provenance; anything larger was not written by vegard.
pub const MAX_RUN_META_BYTES: u64 = 16 << 20;

/// Deepest nesting of arrays, inline tables, table-header segments and
/// dotted-key segments in a configuration file: 32. vegard's own files
/// nest at most 5 deep (`[[step.step]]` + `freq_Hz = [...]`, run.toml's
/// copy of the bench's `[sim.clocks.potentiostat]`); the TOML parser's own
/// recursion limit comes only after it allocated for every level.
pub const MAX_TOML_DEPTH: usize = 32;

/// Longest line of a configuration file, bytes: 64 KiB. A list of 3000
/// frequencies on one line fits; a longer line is not hand-written, and
/// bounding it keeps every column in a message meaningful.
pub const MAX_CONFIG_LINE_BYTES: usize = 64 << 10;

/// A limit broken at a position of the text: `LINE:COL: message` (the
/// caller prefixes the file name).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{line}:{col}: {message}")]
pub struct TextLimitError {
    /// Byte offset of the offending byte.
    pub offset: usize,
    /// 1-based line.
    pub line: usize,
    /// 1-based column in characters (bytes past a non-UTF-8 byte count
    /// as one each).
    pub col: usize,
    pub message: String,
}

/// 1-based line and character column of byte `offset` in `bytes`,
/// counting characters by their UTF-8 lead bytes (valid or not, every
/// byte that is not a continuation byte starts a column). Offsets past the
/// end are clamped to the end. Linear in `offset`.
pub fn line_col(bytes: &[u8], offset: usize) -> (usize, usize) {
    let before = &bytes[..offset.min(bytes.len())];
    let line_start = before
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |i| i + 1);
    let line = 1 + before.iter().filter(|&&b| b == b'\n').count();
    let col = 1 + before[line_start..]
        .iter()
        .filter(|&&b| !is_continuation(b))
        .count();
    (line, col)
}

fn is_continuation(b: u8) -> bool {
    b & 0xC0 == 0x80
}

fn error_at(bytes: &[u8], offset: usize, message: String) -> TextLimitError {
    let (line, col) = line_col(bytes, offset);
    TextLimitError {
        offset,
        line,
        col,
        message,
    }
}

/// The text of a configuration file: UTF-8 (a leading BOM is kept, the
/// TOML parser accepts it), every line at most [`MAX_CONFIG_LINE_BYTES`],
/// nesting at most [`MAX_TOML_DEPTH`]. `bytes` must already be within the
/// file's size limit (the reader checks it, before reading everything).
/// The first broken limit is returned with its position.
pub fn toml_text(bytes: &[u8]) -> Result<&str, TextLimitError> {
    let text = utf8(bytes)?;
    check_line_lengths(bytes, MAX_CONFIG_LINE_BYTES)?;
    check_toml_depth(bytes, MAX_TOML_DEPTH)?;
    Ok(text)
}

/// `bytes` as UTF-8, or the position of the first byte that is not.
pub fn utf8(bytes: &[u8]) -> Result<&str, TextLimitError> {
    std::str::from_utf8(bytes).map_err(|e| utf8_error(bytes, &e))
}

/// [`utf8`] for bytes the caller owns: no copy.
pub fn utf8_string(bytes: Vec<u8>) -> Result<String, TextLimitError> {
    String::from_utf8(bytes).map_err(|e| utf8_error(e.as_bytes(), &e.utf8_error()))
}

fn utf8_error(bytes: &[u8], e: &std::str::Utf8Error) -> TextLimitError {
    let at = e.valid_up_to();
    let byte = bytes.get(at).copied().unwrap_or(0);
    error_at(
        bytes,
        at,
        format!(
            "not UTF-8: byte 0x{byte:02X} is not valid here (save the file as UTF-8; \
             latin-1 'µ' or '°' is a common cause)"
        ),
    )
}

/// Every line (ended by `\n`) at most `max_bytes` long, not counting the
/// line end; the error points at the first character past the limit.
pub fn check_line_lengths(bytes: &[u8], max_bytes: usize) -> Result<(), TextLimitError> {
    let mut start = 0;
    for line in bytes.split(|&b| b == b'\n') {
        let len = line.strip_suffix(b"\r").unwrap_or(line).len();
        if len > max_bytes {
            return Err(error_at(
                bytes,
                start + max_bytes,
                format!(
                    "line of {len} bytes: at most {max_bytes} bytes per line \
                     (a longer line is not a hand-written configuration)"
                ),
            ));
        }
        start += line.len() + 1;
    }
    Ok(())
}

/// What the scanner is inside of.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Lex {
    Normal,
    Comment,
    Basic,
    Literal,
    MultiBasic,
    MultiLiteral,
}

/// Nesting of a TOML text at most `max_depth`, counted the way the parser
/// will build tables: each array or inline-table bracket, each segment of
/// a `[table.header]`, each dotted-key segment `a.b.c = ...` adds a
/// level. Brackets, dots and `=` inside strings and comments do not count.
/// One pass, constant memory (the bracket stack never grows past
/// `max_depth`). It is a bound, not a parser: malformed TOML passes here
/// and is reported by the parser with its position.
pub fn check_toml_depth(bytes: &[u8], max_depth: usize) -> Result<(), TextLimitError> {
    // Open brackets, innermost last: `[` or `{`, and the depth they add
    // (1 + the dotted segments of the key they are the value of).
    let mut stack: Vec<(u8, usize)> = Vec::new();
    let mut stack_depth = 0usize;
    let mut header_depth = 0usize;
    let mut in_header = false;
    let mut header_segments = 0usize;
    // Whether the scanner is in a key (before `=`), the dots seen in it,
    // and those of the key whose value comes next.
    let mut key_mode = true;
    let mut key_dots = 0usize;
    let mut value_dots = 0usize;
    let mut line_blank = true;
    let mut lex = Lex::Normal;
    let too_deep = |at: usize, depth: usize| {
        error_at(
            bytes,
            at,
            format!(
                "nested {depth} levels deep: at most {max_depth} levels of arrays, inline \
                 tables and dotted keys (vegard's files nest at most 5)"
            ),
        )
    };
    let starts = |at: usize, pat: &[u8]| bytes.get(at..at + pat.len()) == Some(pat);
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        match lex {
            Lex::Comment => {
                if b == b'\n' {
                    lex = Lex::Normal;
                    continue; // the newline is handled in Normal
                }
            }
            Lex::Basic => match b {
                b'\\' => i += 1,
                b'"' | b'\n' => lex = Lex::Normal,
                _ => {}
            },
            Lex::Literal => {
                if b == b'\'' || b == b'\n' {
                    lex = Lex::Normal;
                }
            }
            Lex::MultiBasic => {
                if b == b'\\' {
                    i += 1;
                } else if starts(i, b"\"\"\"") {
                    // Up to two quotes may precede the closing three.
                    i += 3;
                    while i < bytes.len() && bytes[i] == b'"' {
                        i += 1;
                    }
                    lex = Lex::Normal;
                    continue;
                }
            }
            Lex::MultiLiteral => {
                if starts(i, b"'''") {
                    i += 3;
                    while i < bytes.len() && bytes[i] == b'\'' {
                        i += 1;
                    }
                    lex = Lex::Normal;
                    continue;
                }
            }
            Lex::Normal => {
                let at_line_start = line_blank;
                if !b.is_ascii_whitespace() {
                    line_blank = false;
                }
                match b {
                    b'\n' => {
                        line_blank = true;
                        if stack.is_empty() {
                            key_mode = true;
                            key_dots = 0;
                        }
                    }
                    b'#' => lex = Lex::Comment,
                    b'"' if starts(i, b"\"\"\"") => {
                        lex = Lex::MultiBasic;
                        i += 3;
                        continue;
                    }
                    b'"' => lex = Lex::Basic,
                    b'\'' if starts(i, b"'''") => {
                        lex = Lex::MultiLiteral;
                        i += 3;
                        continue;
                    }
                    b'\'' => lex = Lex::Literal,
                    b'[' if stack.is_empty() && at_line_start && !in_header => {
                        // A table header `[a.b]` or `[[a.b]]`.
                        in_header = true;
                        header_segments = 1;
                        if starts(i, b"[[") {
                            i += 1;
                        }
                    }
                    b']' if in_header => {
                        in_header = false;
                        header_depth = header_segments;
                        key_mode = true;
                        key_dots = 0;
                    }
                    b'.' if in_header => {
                        header_segments += 1;
                        if header_segments > max_depth {
                            return Err(too_deep(i, header_segments));
                        }
                    }
                    b'.' if key_mode => {
                        key_dots += 1;
                        let depth = header_depth + stack_depth + key_dots + 1;
                        if depth > max_depth {
                            return Err(too_deep(i, depth));
                        }
                    }
                    b'=' if key_mode => {
                        key_mode = false;
                        value_dots = key_dots;
                        key_dots = 0;
                    }
                    b'[' | b'{' => {
                        let weight = 1 + value_dots;
                        value_dots = 0;
                        stack_depth += weight;
                        let depth = header_depth + stack_depth;
                        if depth > max_depth {
                            return Err(too_deep(i, depth));
                        }
                        stack.push((b, weight));
                        key_mode = b == b'{';
                        key_dots = 0;
                    }
                    b']' | b'}' => {
                        if let Some((_, weight)) = stack.pop() {
                            stack_depth -= weight;
                        }
                        key_mode = false;
                    }
                    b',' => {
                        value_dots = 0;
                        if stack.last().is_some_and(|(open, _)| *open == b'{') {
                            key_mode = true;
                            key_dots = 0;
                        }
                    }
                    _ => {}
                }
            }
        }
        i += 1;
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn positions_count_lines_and_characters_from_one() {
        let t = "a = 1\nµ = 2\n".as_bytes();
        assert_eq!(line_col(t, 0), (1, 1));
        assert_eq!(line_col(t, 6), (2, 1));
        // 'µ' is two bytes: byte 9 is the '=' in column 3.
        assert_eq!(line_col(t, 9), (2, 3));
        assert_eq!(line_col(t, 1000), (3, 1));
    }

    #[test]
    fn non_utf8_is_reported_at_its_line_and_column() {
        let e = utf8(b"[run]\nname = \"caf\xE9\"\n").unwrap_err();
        assert_eq!((e.line, e.col, e.offset), (2, 12, 17));
        assert!(e.message.contains("0xE9"), "{}", e.message);
        // Multi-byte characters before it count as one column each.
        let e = utf8_string(b"x = \"\xC2\xB5\xC2\xB5\xFF\"".to_vec()).unwrap_err();
        assert_eq!((e.line, e.col), (1, 8));
        assert_eq!(utf8_string(b"ok".to_vec()).unwrap(), "ok");
    }

    #[test]
    fn real_configs_pass_and_their_depth_is_small() {
        let text = "# c [[[[\n[run]\nname = \"a [b] {c}\"\n[[step]]\nkind = 'x[[['\n\
                    freq_Hz = [[1.0, 2.0], [3.0]]\nt = { a.b = [1, {c = 2}] }\n\
                    s = \"\"\"\n[[[[\"\"\"\"\n[sim.clocks.potentiostat]\ndrift_ppm = 1.5\n";
        assert!(toml_text(text.as_bytes()).is_ok());
        // The deepest of those is 5: [[step]], t, a, b = [...], {c = 2};
        // a limit of 4 fails at that last brace.
        assert!(check_toml_depth(text.as_bytes(), 5).is_ok());
        let e = check_toml_depth(text.as_bytes(), 4).unwrap_err();
        assert_eq!((e.line, e.col), (7, 17), "{e}");
    }

    #[test]
    fn deep_arrays_tables_headers_and_dotted_keys_are_refused_where_they_cross() {
        let deep = format!("x = {}1{}\n", "[".repeat(40), "]".repeat(40));
        let e = toml_text(deep.as_bytes()).unwrap_err();
        assert_eq!((e.line, e.col), (1, 5 + MAX_TOML_DEPTH), "{e}");
        assert!(e.message.contains("33 levels"), "{e}");

        let inline = format!("x = {}\n", "{a = ".repeat(40));
        assert!(toml_text(inline.as_bytes()).is_err());

        let dotted = format!("{} = 1\n", vec!["a"; 40].join("."));
        let e = toml_text(dotted.as_bytes()).unwrap_err();
        assert_eq!(e.line, 1);

        let header = format!("[{}]\n", vec!["a"; 40].join("."));
        assert!(toml_text(header.as_bytes()).is_err());

        // Headers and keys add up: 20 + 20 segments.
        let both = format!(
            "[{}]\n{} = 1\n",
            vec!["a"; 20].join("."),
            vec!["b"; 20].join(".")
        );
        let e = toml_text(both.as_bytes()).unwrap_err();
        assert_eq!(e.line, 2, "{e}");

        // Brackets in strings and comments are text.
        let quoted = format!(
            "x = \"{}\"\n# {}\ny = '{}'\n",
            "[".repeat(100),
            "{".repeat(100),
            "[".repeat(100)
        );
        assert!(toml_text(quoted.as_bytes()).is_ok());
    }

    #[test]
    fn long_lines_are_refused_at_the_first_character_past_the_limit() {
        let mut text = b"a = 1\nb = \"".to_vec();
        text.extend(std::iter::repeat_n(b'x', MAX_CONFIG_LINE_BYTES));
        text.extend(b"\"\n");
        let e = toml_text(&text).unwrap_err();
        assert_eq!((e.line, e.col), (2, MAX_CONFIG_LINE_BYTES + 1), "{e}");
        assert!(check_line_lengths(b"ab\r\ncd\r\n", 2).is_ok());
    }

    /// The scan is linear: 20 MB of brackets cost one pass and stop at
    /// the first level past the limit, without growing the stack.
    #[test]
    fn a_huge_nested_input_stops_at_the_limit() {
        let huge = vec![b'['; 20 << 20];
        let mut text = b"x = ".to_vec();
        text.extend(&huge);
        let e = check_toml_depth(&text, MAX_TOML_DEPTH).unwrap_err();
        assert_eq!(e.offset, 4 + MAX_TOML_DEPTH);
    }
}
