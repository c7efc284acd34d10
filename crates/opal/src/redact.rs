//! Making Opal's error text safe to show. Opal's `UnhandledException` answers carry the root
//! cause's message, which can quote the request (docs/OPAL-WIRE.md §3): a message is reduced to
//! Opal's `status` word and arguments, every known secret (in plain, JSON-escaped and Basic
//! forms) is cut out, and any argument that talks about passwords, credentials or authorization
//! is dropped whole, since a secret we do not know of could hide in it.

use serde_json::Value;

/// How much of Opal's text is kept.
const MAX_CHARS: usize = 400;

const REMOVED: &str = "[removed: may hold a secret]";

/// The secrets one client knows, in every form they could come back in.
#[derive(Default, Clone)]
pub(crate) struct Redactor {
    secrets: Vec<String>,
}

impl std::fmt::Debug for Redactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Redactor({} secrets)", self.secrets.len())
    }
}

impl Redactor {
    /// Adds `secret` and its JSON-escaped spelling.
    pub(crate) fn add(&mut self, secret: &str) {
        if secret.is_empty() {
            return;
        }
        self.secrets.push(secret.to_owned());
        if let Ok(quoted) = serde_json::to_string(secret) {
            let escaped = quoted[1..quoted.len() - 1].to_owned();
            if escaped != secret {
                self.secrets.push(escaped);
            }
        }
        // Longest first, so a secret containing another is removed whole.
        self.secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
    }

    /// A copy that also knows `secret`.
    pub(crate) fn with(&self, secret: &str) -> Redactor {
        let mut more = self.clone();
        more.add(secret);
        more
    }

    /// Opal's answer body as a short, safe message.
    pub(crate) fn describe(&self, body: &[u8]) -> String {
        let text = String::from_utf8_lossy(body);
        let text = text.trim();
        if text.is_empty() {
            return "no details given".to_owned();
        }
        let message = match serde_json::from_str::<Value>(text) {
            // A ClientErrorDto: {"code", "status", "arguments"}.
            Ok(Value::Object(dto)) if dto.contains_key("status") || dto.contains_key("code") => {
                let status = dto
                    .get("status")
                    .map(|s| s.as_str().map_or_else(|| s.to_string(), str::to_owned))
                    .unwrap_or_default();
                let arguments: Vec<String> = match dto.get("arguments") {
                    Some(Value::Array(items)) => items
                        .iter()
                        .map(|a| a.as_str().map_or_else(|| a.to_string(), str::to_owned))
                        .map(|a| self.argument(&a))
                        .collect(),
                    _ => Vec::new(),
                };
                // A one-word status (`PasswordTooWeak`) is Opal's descriptor, kept as is but for
                // known secrets; anything longer is treated as an argument.
                let status = if status.chars().all(|c| c.is_ascii_alphanumeric()) {
                    self.cut_secrets(&status)
                } else {
                    self.argument(&status)
                };
                if arguments.is_empty() {
                    status
                } else {
                    format!("{status}: {}", arguments.join("; "))
                }
            }
            _ => self.argument(text),
        };
        truncate(&message)
    }

    fn cut_secrets(&self, text: &str) -> String {
        let mut clean = text.to_owned();
        for secret in &self.secrets {
            clean = clean.replace(secret.as_str(), "[redacted]");
        }
        clean
    }

    fn argument(&self, text: &str) -> String {
        let clean = self.cut_secrets(text);
        let lower = clean.to_ascii_lowercase();
        if [
            "password",
            "credential",
            "authorization",
            "basic ",
            "secret",
            "token",
        ]
        .iter()
        .any(|word| lower.contains(word))
        {
            return REMOVED.to_owned();
        }
        clean
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect()
    }
}

fn truncate(text: &str) -> String {
    if text.chars().count() <= MAX_CHARS {
        return text.to_owned();
    }
    let mut cut: String = text.chars().take(MAX_CHARS).collect();
    cut.push('…');
    cut
}

#[cfg(test)]
mod tests {
    use super::*;

    fn redactor() -> Redactor {
        let mut r = Redactor::default();
        r.add("s3cr\"et!");
        r.add("QWxhZGRpbjpvcGVuIHNlc2FtZQ==");
        r
    }

    #[test]
    fn describes_client_error_dtos() {
        let r = redactor();
        let cases: &[(&str, &str)] = &[
            (
                r#"{"code":400,"status":"IllegalArgument","arguments":["Project already exists"]}"#,
                "IllegalArgument: Project already exists",
            ),
            (
                r#"{"code":400,"status":"ReservedResourceName"}"#,
                "ReservedResourceName",
            ),
            ("", "no details given"),
            ("Bad Gateway", "Bad Gateway"),
            // A secret in any form is cut; an argument about credentials is dropped whole.
            (
                r#"{"code":500,"status":"X","arguments":["got s3cr\"et!"]}"#,
                "X: got [redacted]",
            ),
            (
                r#"{"code":500,"status":"X","arguments":["{\"password\":\"unknown\"}","Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ=="]}"#,
                "X: [removed: may hold a secret]; [removed: may hold a secret]",
            ),
            ("line\nbreak", "line break"),
            (
                r#"{"code":400,"status":"PasswordTooWeak","arguments":["Password is too weak"]}"#,
                "PasswordTooWeak: [removed: may hold a secret]",
            ),
        ];
        for (body, want) in cases {
            assert_eq!(r.describe(body.as_bytes()), *want, "{body}");
        }
        assert_eq!(
            r.describe("x".repeat(1000).as_bytes()).chars().count(),
            MAX_CHARS + 1
        );
    }
}
