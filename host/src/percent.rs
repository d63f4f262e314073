//! Percent-decoding of URL parts, strict about malformed escapes.
//!
//! The `percent-encoding` crate passes a `%` that is not followed by two
//! hex digits through as it is; a request carrying one (`%zz`, `%+1`, a
//! lone `%`) is refused instead, as the SDK refuses it in plugins, so the
//! host and plugins never read the same text two ways.

/// `input` decoded (with `+` as a space when `plus_is_space`, as in a
/// query), or `None` when it holds a malformed escape or is not UTF-8.
pub fn decode(input: &str, plus_is_space: bool) -> Option<String> {
    if !escapes_are_well_formed(input) {
        return None;
    }
    let spaced;
    let input = if plus_is_space && input.contains('+') {
        spaced = input.replace('+', " ");
        spaced.as_str()
    } else {
        input
    };
    percent_encoding::percent_decode_str(input)
        .decode_utf8()
        .ok()
        .map(|decoded| decoded.into_owned())
}

fn escapes_are_well_formed(input: &str) -> bool {
    let bytes = input.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = |j: usize| bytes.get(j).is_some_and(u8::is_ascii_hexdigit);
            if !(hex(i + 1) && hex(i + 2)) {
                return false;
            }
            i += 3;
        } else {
            i += 1;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::decode;

    #[test]
    fn decodes_and_refuses_malformed_escapes() {
        assert_eq!(decode("a%20b+c", true).as_deref(), Some("a b c"));
        assert_eq!(decode("a%20b+c", false).as_deref(), Some("a b+c"));
        assert_eq!(decode("%2F%2f", false).as_deref(), Some("//"));
        for bad in ["%zz", "%+1", "%", "a%2", "%%41", "%ff"] {
            assert_eq!(decode(bad, true), None, "{bad}");
        }
    }
}
