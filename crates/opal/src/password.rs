//! The password of the placeholder user `dsuser_default`: random, never stored or logged, and
//! always within Opal's password rule (docs/OPAL-WIRE.md §7). The reference draws 20 characters
//! from letters, digits and `!@#$%^&*()-_=+` and is refused about one time in seven, since
//! Opal wants a digit, both cases and one of `@#$%^&+=!`, and `*()-_` do not count.

use rand::seq::{IndexedRandom as _, SliceRandom as _};
use secrecy::SecretString;

/// Length of a generated password (Opal allows 8 to 64).
const LENGTH: usize = 32;

const LOWER: &[u8] = b"abcdefghijklmnopqrstuvwxyz";
const UPPER: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ";
const DIGITS: &[u8] = b"0123456789";
/// The characters Opal's rule counts as special.
const SPECIALS: &[u8] = b"@#$%^&+=!";

/// A new random password that satisfies Opal's rule: one character of each required class at
/// a random place, the rest drawn from all of them, from the thread's CSPRNG.
pub fn generate_password() -> SecretString {
    let mut rng = rand::rng();
    let all: Vec<u8> = [LOWER, UPPER, DIGITS, SPECIALS].concat();
    let mut chars: Vec<u8> = Vec::with_capacity(LENGTH);
    for class in [LOWER, UPPER, DIGITS, SPECIALS] {
        chars.extend(class.choose(&mut rng));
    }
    while chars.len() < LENGTH {
        chars.extend(all.choose(&mut rng));
    }
    chars.shuffle(&mut rng);
    SecretString::from(String::from_utf8_lossy(&chars).into_owned())
}

/// Opal's password rule (`SubjectCredentialsServiceImpl`): 8 to 64 characters, no white space
/// or line break, at least one ASCII digit, lower-case and upper-case letter, and one of
/// `@#$%^&+=!`.
pub fn meets_opal_password_rule(password: &str) -> bool {
    let units = password.encode_utf16().count();
    (8..=64).contains(&units)
        && (8..=64).contains(&password.chars().count())
        && !password.chars().any(|c| {
            matches!(
                c,
                ' ' | '\t' | '\n' | '\u{0B}' | '\u{0C}' | '\r' | '\u{85}' | '\u{2028}' | '\u{2029}'
            )
        })
        && password.chars().any(|c| c.is_ascii_digit())
        && password.chars().any(|c| c.is_ascii_lowercase())
        && password.chars().any(|c| c.is_ascii_uppercase())
        && password.bytes().any(|b| SPECIALS.contains(&b))
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use secrecy::ExposeSecret as _;

    use super::*;

    #[test]
    fn ten_thousand_generated_passwords_meet_the_rule() {
        let mut seen = HashSet::new();
        for _ in 0..10_000 {
            let password = generate_password();
            let password = password.expose_secret();
            assert_eq!(password.len(), LENGTH);
            assert!(meets_opal_password_rule(password), "{password}");
            seen.insert(password.to_owned());
        }
        assert_eq!(seen.len(), 10_000, "passwords repeat");
    }

    #[test]
    fn the_rule() {
        let cases: &[(&str, bool)] = &[
            ("Abcdef1!", true),
            ("Abcde1!", false),
            ("abcdef1!", false),
            ("ABCDEF1!", false),
            ("Abcdefg!", false),
            ("Abcdefg1", false),
            ("Abcdef1*()-_", false),
            ("Abc def1!", false),
            ("Abcdef1!\n", false),
        ];
        for (password, want) in cases {
            assert_eq!(meets_opal_password_rule(password), *want, "{password:?}");
        }
        assert!(meets_opal_password_rule(&"Ab1!".repeat(16)));
        assert!(!meets_opal_password_rule(&"Ab1!".repeat(17)));
    }
}
