//! Small text rules shared by the validators.

/// A plausible e-mail address: one `@`, a dotted domain, no spaces. Full RFC
/// 5322 parsing would accept addresses no mail server of a Comune delivers to.
pub fn is_plausible_email(s: &str) -> bool {
    let Some((local, domain)) = s.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !s.chars().any(|c| c.is_whitespace() || c.is_control())
        && !domain.contains('@')
}

/// An identifier that a management application or an operator chooses (an
/// iupd, a service code, an office code): safe in a URL path segment and in
/// a file name.
pub fn is_safe_identifier(s: &str, max: usize) -> bool {
    !s.is_empty()
        && s.len() <= max
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails() {
        assert!(is_plausible_email("mario.rossi@comune.example.it"));
        assert!(!is_plausible_email("mario.rossi"));
        assert!(!is_plausible_email("a@b"));
        assert!(!is_plausible_email("a b@c.it"));
        assert!(!is_plausible_email("a@@c.it"));
    }

    #[test]
    fn identifiers() {
        assert!(is_safe_identifier("77777777777-2026_000001", 64));
        assert!(!is_safe_identifier("a/b", 64));
        assert!(!is_safe_identifier("", 64));
        assert!(!is_safe_identifier("ab", 1));
    }
}
