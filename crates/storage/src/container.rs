//! A destination's two containers, named once: the bottom of the crate, used by every layer
//! and by callers (the workflow names the full volume with it).

use std::fmt;

/// A destination's two containers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Container {
    /// `<mount>/staging`: where package writes.
    Staging,
    /// `<mount>/production`: where publish writes.
    Production,
}

impl Container {
    /// The folder's name under the mount: `staging` or `production`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Staging => "staging",
            Self::Production => "production",
        }
    }
}

impl fmt::Display for Container {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
