//! The access tokens the emulator issued, with their expiry: what the token endpoints hand out
//! and the authentication extractor (`auth`) checks.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Access tokens handed out, with their expiry.
#[derive(Debug, Default)]
pub(crate) struct Tokens {
    issued: Mutex<HashMap<String, Instant>>,
}

impl Tokens {
    pub(crate) fn issue(&self, ttl: Duration) -> String {
        let token = format!(
            "emu-{}{}",
            uuid::Uuid::new_v4().simple(),
            uuid::Uuid::new_v4().simple()
        );
        let now = Instant::now();
        let mut issued = self.lock();
        issued.retain(|_, expiry| *expiry > now);
        issued.insert(token.clone(), now + ttl);
        token
    }

    pub(crate) fn is_valid(&self, token: &str) -> bool {
        self.lock()
            .get(token)
            .is_some_and(|expiry| *expiry > Instant::now())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Instant>> {
        self.issued
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
