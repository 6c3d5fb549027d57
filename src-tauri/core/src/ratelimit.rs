//! Rate limits: sign-in and moderator-link attempts per client address, moderator actions per
//! session.
//!
//! A token bucket per key, refilled continuously; time comes from the engine's clock. Idle
//! buckets are dropped so the map cannot grow without bound.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;

/// A token bucket limiter per key (a client address, a moderator session).
#[derive(Debug)]
pub struct RateLimiter<K> {
    per_minute: f64,
    buckets: Mutex<HashMap<K, (f64, i64)>>,
}

impl<K: Hash + Eq> RateLimiter<K> {
    /// Allows `per_minute` per key per minute, in bursts of up to that many.
    pub fn new(per_minute: u32) -> Self {
        Self {
            per_minute: f64::from(per_minute.max(1)),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one token for `key` at `now_ms`; `Err(seconds)` says when to retry.
    pub fn check(&self, key: K, now_ms: i64) -> Result<(), u64> {
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if buckets.len() > 10_000 {
            buckets.retain(|_, (_, last)| now_ms - *last < 60_000);
        }
        let per_ms = self.per_minute / 60_000.0;
        let (tokens, last) = buckets.entry(key).or_insert((self.per_minute, now_ms));
        let elapsed = (now_ms - *last).max(0) as f64;
        *tokens = (*tokens + elapsed * per_ms).min(self.per_minute);
        *last = now_ms;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            Ok(())
        } else {
            let wait_ms = (1.0 - *tokens) / per_ms;
            Err((wait_ms / 1000.0).ceil().max(1.0) as u64)
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;

    use super::*;

    #[test]
    fn bursts_then_refills() {
        let limiter = RateLimiter::new(3);
        let a: IpAddr = [127, 0, 0, 1].into();
        let b: IpAddr = [127, 0, 0, 2].into();
        for _ in 0..3 {
            assert!(limiter.check(a, 0).is_ok());
        }
        assert_eq!(limiter.check(a, 0), Err(20), "one token per 20 s at 3/min");
        assert!(
            limiter.check(b, 0).is_ok(),
            "addresses are limited separately"
        );
        assert!(limiter.check(a, 20_000).is_ok(), "refilled after 20 s");
    }
}
