//! Opal's naming and password rules, written from its Java source (docs/OPAL-WIRE.md §5, §7).
//!
//! They are public so that tests elsewhere can hold their own copy of a rule against the one
//! the emulator enforces.

/// Why Opal refuses a password, in the order it checks (`SubjectCredentialsServiceImpl.validatePassword`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum PasswordProblem {
    /// Fewer than 8 UTF-16 units (`PasswordTooShortException`, status `PasswordLengthMin`).
    TooShort,
    /// More than 64 UTF-16 units (`PasswordTooLongException`, status `PasswordLengthMax`).
    TooLong,
    /// Fails the pattern (`PasswordTooWeakException`, status `PasswordTooWeak`).
    TooWeak,
}

impl PasswordProblem {
    /// The `status` word of Opal's `ClientErrorDto`.
    pub fn error_status(self) -> &'static str {
        match self {
            PasswordProblem::TooShort => "PasswordLengthMin",
            PasswordProblem::TooLong => "PasswordLengthMax",
            PasswordProblem::TooWeak => "PasswordTooWeak",
        }
    }

    /// The exception's message, Opal's `arguments[0]`.
    pub fn message(self) -> &'static str {
        match self {
            PasswordProblem::TooShort => "Password is shorter than the required 8 characters",
            PasswordProblem::TooLong => "Password is longer than 64 characters",
            PasswordProblem::TooWeak => {
                "Password is too weak: must contain at least one digit, one upper case alphabet, \
                 one lower case alphabet, one special character (which includes @#$%^&+=!) and \
                 no white space"
            }
        }
    }
}

/// The special characters Opal's password pattern counts (`[@#$%^&+=!]`).
pub const PASSWORD_SPECIALS: &str = "@#$%^&+=!";

/// Opal's password rule for users authenticated by password:
/// `^(?=.*[0-9])(?=.*[a-z])(?=.*[A-Z])(?=.*[@#$%^&+=!])(?=\S+$).{8,64}$`, matched against the whole
/// string, after a length check of 8 to 64 UTF-16 units. Java's `.` excludes line terminators
/// and its `\S` is "not one of space, `\t`, `\n`, `\x0B`, `\f`, `\r`".
pub fn check_password(password: &str) -> Result<(), PasswordProblem> {
    let utf16 = password.encode_utf16().count();
    if utf16 < 8 {
        return Err(PasswordProblem::TooShort);
    }
    if utf16 > 64 {
        return Err(PasswordProblem::TooLong);
    }
    let code_points = password.chars().count();
    let line_terminator = |c: char| matches!(c, '\n' | '\r' | '\u{85}' | '\u{2028}' | '\u{2029}');
    let java_space = |c: char| matches!(c, ' ' | '\t' | '\n' | '\u{0B}' | '\u{0C}' | '\r');
    let ok = (8..=64).contains(&code_points)
        && !password
            .chars()
            .any(|c| line_terminator(c) || java_space(c))
        && password.chars().any(|c| c.is_ascii_digit())
        && password.chars().any(|c| c.is_ascii_lowercase())
        && password.chars().any(|c| c.is_ascii_uppercase())
        && password.chars().any(|c| PASSWORD_SPECIALS.contains(c));
    if ok {
        Ok(())
    } else {
        Err(PasswordProblem::TooWeak)
    }
}

/// Opal's project name rule, `^[\w _-]+$` matched against the whole name, where Java's `\w` is
/// `[a-zA-Z_0-9]` (`ProjectsResource.createProject`).
pub fn project_name_ok(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | ' ' | '-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords() {
        let cases: &[(&str, Result<(), PasswordProblem>)] = &[
            ("Abcdef1!", Ok(())),
            ("Abcde1!", Err(PasswordProblem::TooShort)),
            ("abcdef1!", Err(PasswordProblem::TooWeak)),
            ("ABCDEF1!", Err(PasswordProblem::TooWeak)),
            ("Abcdefg!", Err(PasswordProblem::TooWeak)),
            ("Abcdefg1", Err(PasswordProblem::TooWeak)),
            // `*`, `(`, `)`, `-` and `_` are accepted in a password but are not "special".
            ("Abcdef1*()-_", Err(PasswordProblem::TooWeak)),
            ("Abc def1!", Err(PasswordProblem::TooWeak)),
            ("Abcdef1!\n", Err(PasswordProblem::TooWeak)),
            ("Abcdef1!\u{a0}", Ok(())),
            (
                "Ab1!Ab1!Ab1!Ab1!Ab1!Ab1!Ab1!Ab1!Ab1!Ab1!Ab1!Ab1!Ab1!Ab1!Ab1!Ab1!",
                Ok(()),
            ),
            (
                "Ab1!Ab1!Ab1!Ab1!Ab1!Ab1!Ab1!Ab1!Ab1!Ab1!Ab1!Ab1!Ab1!Ab1!Ab1!Ab1!x",
                Err(PasswordProblem::TooLong),
            ),
        ];
        for (password, want) in cases {
            assert_eq!(check_password(password), *want, "{password:?}");
        }
    }

    #[test]
    fn project_names() {
        for ok in ["Pr004", "my project", "a-b_c", "_", "0"] {
            assert!(project_name_ok(ok), "{ok}");
        }
        for bad in ["", "a.b", "é", "a/b", "a\n", "a\tb", "proj*"] {
            assert!(!project_name_ok(bad), "{bad:?}");
        }
    }
}
