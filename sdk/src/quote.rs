/// Quotes an SQL identifier the way PostgreSQL's `quote_ident` does when it
/// must: always double-quoted, inner quotes doubled. NUL cannot appear in an
/// identifier, so it is dropped rather than allowed to cut the string.
///
/// Prefer matching names against the catalog and passing values as
/// parameters; use this only where SQL syntax needs an identifier (VACUUM,
/// REINDEX, ...), after the catalog has confirmed the object exists.
pub fn quote_ident(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 2);
    out.push('"');
    for c in name.chars().filter(|&c| c != '\0') {
        if c == '"' {
            out.push('"');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// Quotes a string literal for statements that take no parameters (such as
/// `ALTER SYSTEM SET x = '...'`): single quotes doubled, and the `E''` form
/// with doubled backslashes when it has a backslash, as PostgreSQL's
/// `quote_literal` does.
pub fn quote_literal(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 3);
    if value.contains('\\') {
        out.push('E');
    }
    out.push('\'');
    for c in value.chars().filter(|&c| c != '\0') {
        match c {
            '\'' => out.push_str("''"),
            '\\' => out.push_str("\\\\"),
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers() {
        assert_eq!(quote_ident("city"), "\"city\"");
        assert_eq!(quote_ident("we\"ird name"), "\"we\"\"ird name\"");
        assert_eq!(quote_ident("a\0b"), "\"ab\"");
    }

    #[test]
    fn literals() {
        assert_eq!(quote_literal("128MB"), "'128MB'");
        assert_eq!(quote_literal("it's"), "'it''s'");
        assert_eq!(quote_literal("a\\b"), "E'a\\\\b'");
    }
}
