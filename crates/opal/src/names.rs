//! The names the publisher gives things in Opal, and Opal's own rule for project names.

/// The Opal user that carries every project group (Opal has no call that creates an empty group
/// in the versions the reference targets; a group exists once a user names it).
pub const DEFAULT_USER: &str = "dsuser_default";

/// Whether Opal accepts `name` as a project name: `^[\w _-]+$` with Java's ASCII `\w`, that is
/// one or more of `A-Z a-z 0-9 _`, space and `-` (docs/OPAL-WIRE.md §5). The service can refuse
/// a CR8TOR project name Opal would refuse before packaging anything.
pub fn opal_project_name_allowed(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | ' ' | '-'))
}

/// The group a project's researchers are put in: `<project>_group`.
pub fn group_name(project: &str) -> String {
    format!("{project}_group")
}

/// The resource of one PostgreSQL table: `tre_postgresql_<schema>_<table>`, as the reference
/// names it (so resources it created are found and kept).
pub fn resource_name(schema: &str, table: &str) -> String {
    format!("tre_postgresql_{schema}_{table}")
}

/// Percent-encodes one path segment, keeping only RFC 3986 unreserved bytes.
pub(crate) fn encode_segment(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for b in segment.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn project_names() {
        let cases: &[(&str, bool)] = &[
            ("Pr004", true),
            ("my project", true),
            ("a-b_c", true),
            ("0", true),
            ("", false),
            ("Pr.004", false),
            ("Prøject", false),
            ("a/b", false),
            ("a\tb", false),
            ("a\n", false),
        ];
        for (name, want) in cases {
            assert_eq!(opal_project_name_allowed(name), *want, "{name:?}");
        }
    }

    #[test]
    fn names() {
        assert_eq!(group_name("Pr004"), "Pr004_group");
        assert_eq!(
            resource_name("pr004_20250601_cohort", "person"),
            "tre_postgresql_pr004_20250601_cohort_person"
        );
        assert_eq!(encode_segment("my project/ü"), "my%20project%2F%C3%BC");
    }
}
