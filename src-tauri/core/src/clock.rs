//! Time, injected: the engine never calls `SystemTime::now()` directly, so tests can move
//! time forward to expire sessions and keys without sleeping.
//!
//! Waits that are about wall-clock time (renew a token before it expires, poll a device code
//! every five seconds) go through [`Clock::sleep_until`] too, so a test that moves a
//! [`ManualClock`] forward wakes them at once instead of waiting for real.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A future returned by [`Clock::sleep_until`].
pub type Sleep<'a> = Pin<Box<dyn Future<Output = ()> + Send + 'a>>;

/// A source of the current time, in milliseconds since the Unix epoch.
pub trait Clock: Send + Sync + 'static {
    /// Now, in Unix milliseconds.
    fn now_ms(&self) -> i64;

    /// Completes once this clock reads `deadline_ms` or later. The default waits in real time
    /// (tokio's timer) for the difference between the deadline and now.
    fn sleep_until(&self, deadline_ms: i64) -> Sleep<'_> {
        let wait = u64::try_from(deadline_ms.saturating_sub(self.now_ms())).unwrap_or(0);
        Box::pin(tokio::time::sleep(Duration::from_millis(wait)))
    }
}

/// The real clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
            .unwrap_or(0)
    }
}

/// A clock tests move by hand. Sleepers on it wake when [`ManualClock::advance`] moves it
/// past their deadline, and never on their own.
#[derive(Debug, Clone)]
pub struct ManualClock(Arc<Manual>);

#[derive(Debug)]
struct Manual {
    now: AtomicI64,
    moved: tokio::sync::Notify,
}

impl ManualClock {
    /// Starts at the given Unix milliseconds.
    pub fn new(start_ms: i64) -> Self {
        Self(Arc::new(Manual {
            now: AtomicI64::new(start_ms),
            moved: tokio::sync::Notify::new(),
        }))
    }

    /// Moves time forward.
    pub fn advance(&self, by: Duration) {
        let ms = i64::try_from(by.as_millis()).unwrap_or(i64::MAX);
        self.0.now.fetch_add(ms, Ordering::SeqCst);
        self.0.moved.notify_waiters();
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> i64 {
        self.0.now.load(Ordering::SeqCst)
    }

    fn sleep_until(&self, deadline_ms: i64) -> Sleep<'_> {
        Box::pin(async move {
            loop {
                // Registered before the time is read, so an advance in between is not missed.
                let moved = self.0.moved.notified();
                tokio::pin!(moved);
                moved.as_mut().enable();
                if self.now_ms() >= deadline_ms {
                    return;
                }
                moved.await;
            }
        })
    }
}

/// Formats Unix milliseconds as RFC 3339 UTC.
pub fn rfc3339(ms: i64) -> String {
    // humantime cannot format years past 9999 (its Display would fail), so clamp there.
    const MAX_MS: u64 = 253_402_300_799_999;
    let ms = u64::try_from(ms).unwrap_or(0).min(MAX_MS);
    humantime::format_rfc3339_millis(UNIX_EPOCH + Duration::from_millis(ms)).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_manual_sleeper_wakes_only_when_time_passes_its_deadline() {
        let clock = ManualClock::new(1_000);
        let sleeper = {
            let clock = clock.clone();
            tokio::spawn(async move { clock.sleep_until(6_000).await })
        };
        clock.advance(Duration::from_millis(4_000));
        tokio::task::yield_now().await;
        assert!(!sleeper.is_finished(), "5 000 is before the deadline");
        clock.advance(Duration::from_millis(1_000));
        tokio::time::timeout(Duration::from_secs(5), sleeper)
            .await
            .expect("the sleeper wakes once the clock reaches its deadline")
            .expect("no panic");
        clock.sleep_until(0).await;
    }

    #[test]
    fn formats_and_clamps() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            rfc3339(i64::MAX),
            "9999-12-31T23:59:59.999Z",
            "far futures do not panic"
        );
        assert_eq!(rfc3339(-5), "1970-01-01T00:00:00.000Z");
    }
}
