//! What the fake providers remember between requests: device codes with their scripted
//! answers, authorization codes, access and refresh tokens (with the family they were issued
//! in, to revoke together), and counters the tests wait on.

use std::collections::hash_map::RandomState;
use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasher, Hasher};
use std::sync::{Arc, Mutex};

use stagehand_engine::clock::Clock;
use tokio::sync::Notify;

use super::{DevicePoll, RefreshMode};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) enum Provider {
    Twitch,
    Google,
    Discord,
}

pub(super) struct Device {
    pub(super) expires_ms: i64,
    pub(super) interval_s: i64,
    pub(super) last_poll_ms: Option<i64>,
    pub(super) script: VecDeque<DevicePoll>,
    pub(super) done: bool,
}

pub(super) struct AccessToken {
    pub(super) provider: Provider,
    pub(super) expires_ms: i64,
    pub(super) revoked: bool,
    /// The code or refresh token it came from (to revoke together).
    pub(super) family: String,
}

pub(super) struct RefreshToken {
    pub(super) provider: Provider,
    pub(super) used: bool,
    pub(super) revoked: bool,
    pub(super) family: String,
}

pub(super) struct Code {
    pub(super) provider: Provider,
    pub(super) client_id: String,
    pub(super) redirect_uri: String,
    pub(super) challenge: Option<String>,
    pub(super) used: bool,
}

pub(super) struct Inner {
    pub(super) device_script: Vec<DevicePoll>,
    pub(super) device_expires_in: i64,
    pub(super) device_interval: i64,
    pub(super) devices: HashMap<String, Device>,
    pub(super) access: HashMap<String, AccessToken>,
    pub(super) refresh: HashMap<String, RefreshToken>,
    pub(super) codes: HashMap<String, Code>,
    pub(super) refresh_mode: RefreshMode,
    pub(super) deny: bool,
    pub(super) ttl: HashMap<Provider, i64>,
    pub(super) counts: HashMap<&'static str, u32>,
    pub(super) poll_times: Vec<i64>,
    pub(super) issued: Vec<String>,
    pub(super) revoked: Vec<String>,
    pub(super) next: u64,
}

pub(super) struct Shared {
    pub(super) clock: Arc<dyn Clock>,
    pub(super) inner: Mutex<Inner>,
    pub(super) changed: Notify,
    pub(super) base: String,
}

impl Shared {
    /// Runs `f` on the state and wakes everyone waiting for a change.
    pub(super) fn with<T>(&self, f: impl FnOnce(&mut Inner) -> T) -> T {
        let out = self.read(f);
        self.changed.notify_waiters();
        out
    }

    /// Runs `f` on the state without announcing a change (for the test's own queries, which
    /// must not wake their own waits).
    pub(super) fn read<T>(&self, f: impl FnOnce(&mut Inner) -> T) -> T {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut inner)
    }

    pub(super) fn now(&self) -> i64 {
        self.clock.now_ms()
    }
}

impl Inner {
    pub(super) fn count(&mut self, key: &'static str) {
        *self.counts.entry(key).or_default() += 1;
    }

    pub(super) fn fresh(&mut self, prefix: &str) -> String {
        self.next += 1;
        let mut hasher = RandomState::new().build_hasher();
        hasher.write_u64(self.next);
        let value = format!("{prefix}{}x{:016x}", self.next, hasher.finish());
        self.issued.push(value.clone());
        value
    }

    /// Issues an access token (and a refresh token unless `keep_refresh`); answers the token
    /// response body.
    pub(super) fn issue(
        &mut self,
        provider: Provider,
        now: i64,
        family: String,
        with_refresh: bool,
    ) -> (String, Option<String>, i64) {
        let ttl = self.ttl.get(&provider).copied().unwrap_or(3600);
        let prefix = match provider {
            Provider::Twitch => "twat",
            Provider::Google => "ya29.fake",
            Provider::Discord => "dcat",
        };
        let access = self.fresh(prefix);
        self.access.insert(
            access.clone(),
            AccessToken {
                provider,
                expires_ms: now + ttl * 1000,
                revoked: false,
                family: family.clone(),
            },
        );
        let refresh = with_refresh.then(|| {
            let refresh = self.fresh(&format!("{prefix}-rt"));
            self.refresh.insert(
                refresh.clone(),
                RefreshToken {
                    provider,
                    used: false,
                    revoked: false,
                    family,
                },
            );
            refresh
        });
        (access, refresh, ttl)
    }

    pub(super) fn access_ok(&self, token: &str, provider: Provider, now: i64) -> Option<i64> {
        self.access
            .get(token)
            .filter(|a| a.provider == provider && !a.revoked && a.expires_ms > now)
            .map(|a| a.expires_ms)
    }

    pub(super) fn revoke_family(&mut self, family: &str) {
        for a in self.access.values_mut().filter(|a| a.family == family) {
            a.revoked = true;
        }
        for r in self.refresh.values_mut().filter(|r| r.family == family) {
            r.revoked = true;
        }
    }
}

/// The state the routes share.
pub(super) type AppState = Arc<Shared>;
