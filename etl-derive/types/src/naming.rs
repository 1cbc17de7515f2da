//! Names: the Rust identifiers `cargo xtask gen` and the derive give tables and columns, and
//! SQL identifier quoting. One place, so that a generated file's module and the derive's
//! Diesel module agree (`UserID` is `user_id` in both).

/// Quotes an identifier for PostgreSQL (`"Display Name"`, `"a""b"`).
pub fn quote_ident(ident: &str) -> String {
    format!("\"{}\"", ident.replace('"', "\"\""))
}

/// Rust's strict and reserved keywords, which an identifier gets `_` after.
const KEYWORDS: &[&str] = &[
    "as", "break", "const", "continue", "crate", "else", "enum", "extern", "false", "fn", "for",
    "if", "impl", "in", "let", "loop", "match", "mod", "move", "mut", "pub", "ref", "return",
    "self", "static", "struct", "super", "trait", "true", "type", "unsafe", "use", "where",
    "while", "async", "await", "dyn", "abstract", "become", "box", "do", "final", "macro",
    "override", "priv", "typeof", "unsized", "virtual", "yield", "try", "gen",
];

/// A snake_case Rust identifier for a column or table name: `UserID` -> `user_id`,
/// `Display Name` -> `display_name`, `1st` -> `c_1st`, `type` -> `type_`.
pub fn snake_ident(name: &str) -> String {
    let chars: Vec<char> = name.chars().collect();
    let mut out = String::new();
    for (i, &c) in chars.iter().enumerate() {
        if c.is_ascii_alphanumeric() {
            if c.is_ascii_uppercase() && i > 0 {
                let prev = chars[i - 1];
                let next_lower = chars.get(i + 1).is_some_and(|n| n.is_ascii_lowercase());
                if (prev.is_ascii_lowercase() || prev.is_ascii_digit())
                    || (prev.is_ascii_uppercase() && next_lower)
                {
                    out.push('_');
                }
            }
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('_') {
            out.push('_');
        }
    }
    let mut out = out.trim_matches('_').to_string();
    if out.is_empty() {
        out = "column".into();
    }
    if out.starts_with(|c: char| c.is_ascii_digit()) {
        out = format!("c_{out}");
    }
    if KEYWORDS.contains(&out.as_str()) {
        out.push('_');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_become_snake_case_identifiers() {
        assert_eq!(snake_ident("type"), "type_");
        assert_eq!(snake_ident("UserID"), "user_id");
        assert_eq!(snake_ident("Display Name"), "display_name");
        assert_eq!(snake_ident("1st"), "c_1st");
        assert_eq!(snake_ident("self"), "self_");
        assert_eq!(snake_ident("HTTPStatus"), "http_status");
        assert_eq!(quote_ident("a\"b"), "\"a\"\"b\"");
    }
}
