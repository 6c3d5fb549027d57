//! Notices: the few things that need the streamer even when Stagehand's window is closed.
//!
//! The engine already announces everything on its event bus; most of it is for the panel to
//! show and nobody else. Three situations need the streamer to act, so the desktop shell turns
//! them into OS notifications and the panel shows them too:
//!
//! * OBS was connected and has been lost for more than a minute (a crash, a dead machine).
//!   OBS announcing that it is quitting (`obs.exiting`) means the streamer closed it, so that
//!   loss is not a notice.
//! * A linked account needs the streamer to sign in again (`account.status` turning
//!   `needs_relogin`), once per account until it recovers.
//! * The relay dropped webhooks because its buffer was full (`relay.evicted`): at most one
//!   notice a minute, the count of anything dropped in between carried into the next.
//!
//! [`NoticeRules`] decides, from events and the time they were published, with no I/O and no
//! clock of its own, so the rules are tested by feeding it events. `Engine::notices_start`
//! runs it over the bus with the engine's clock and publishes each notice as a `notice` event,
//! which `/ws/events` carries to the panel and the desktop shell shows.

use std::collections::BTreeSet;
use std::sync::Arc;

use serde::Serialize;
use stagehand_protocol::EventEnvelope;
use tokio::sync::broadcast::Receiver;
use tokio::sync::broadcast::error::RecvError;

use crate::Engine;
use crate::clock::Clock;
use crate::events::EventBus;

/// The event kind notices are published under.
pub const EVENT: &str = "notice";
/// How long OBS may stay lost before the streamer is told.
pub const OBS_LOST_AFTER_MS: i64 = 60_000;
/// The least time between two relay notices.
pub const RELAY_NOTICE_EVERY_MS: i64 = 60_000;

/// What a notice is about; the panel and the shell match on this, never on the words.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NoticeKind {
    /// OBS has been unreachable for more than a minute.
    ObsLost,
    /// An account has to be linked again.
    AccountNeedsRelogin,
    /// The relay dropped webhooks before they reached this machine.
    RelayEvicted,
}

/// One notice, in plain words.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Notice {
    /// What it is about.
    pub kind: NoticeKind,
    /// A short headline (the notification's title).
    pub title: String,
    /// What happened and what to do.
    pub message: String,
    /// The provider, for account notices.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
}

/// Where the OBS connection stands, as far as notices care.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Obs {
    /// Never identified since start: OBS not being there is not news.
    NeverConnected,
    Connected {
        /// OBS said it is quitting: the next loss is the streamer's doing.
        exiting: bool,
    },
    /// Lost at this time; a notice is due a minute later.
    LostSince(i64),
    /// Lost and already told, or lost because the streamer closed OBS.
    LostQuiet,
}

/// The decisions, fed with events and the time they were published.
#[derive(Debug)]
pub struct NoticeRules {
    obs: Obs,
    relogin: BTreeSet<String>,
    relay_last_ms: Option<i64>,
    relay_pending: u64,
}

impl Default for NoticeRules {
    fn default() -> Self {
        Self {
            obs: Obs::NeverConnected,
            relogin: BTreeSet::new(),
            relay_last_ms: None,
            relay_pending: 0,
        }
    }
}

impl NoticeRules {
    /// Takes in an event published at `at_ms`; answers the notices due at once.
    pub fn observe(&mut self, kind: &str, data: &serde_json::Value, at_ms: i64) -> Vec<Notice> {
        let field = |name: &str| data.get(name).and_then(serde_json::Value::as_str);
        match kind {
            "obs.status" => {
                self.obs = match (self.obs, field("state")) {
                    (Obs::Connected { exiting }, Some("identified")) => Obs::Connected { exiting },
                    (_, Some("identified")) => Obs::Connected { exiting: false },
                    (_, Some("disabled")) => Obs::NeverConnected,
                    // Connecting or lost, from connected: the connection just went.
                    (Obs::Connected { exiting: true }, Some(_)) => Obs::LostQuiet,
                    (Obs::Connected { exiting: false }, Some(_)) => Obs::LostSince(at_ms),
                    // Still lost: the minute counts from the first loss.
                    (other, _) => other,
                };
                Vec::new()
            }
            "obs.exiting" => {
                if let Obs::Connected { .. } = self.obs {
                    self.obs = Obs::Connected { exiting: true };
                }
                Vec::new()
            }
            "account.status" => {
                let Some(provider) = field("provider") else {
                    return Vec::new();
                };
                if field("status") != Some("needs_relogin") {
                    self.relogin.remove(provider);
                    return Vec::new();
                }
                if !self.relogin.insert(provider.to_owned()) {
                    return Vec::new();
                }
                let title = format!("{} needs you to sign in again", provider_title(provider));
                let message = field("notice").map_or_else(
                    || {
                        format!(
                            "Stagehand can no longer use your {} account. Link it again in Accounts.",
                            provider_title(provider)
                        )
                    },
                    str::to_owned,
                );
                vec![Notice {
                    kind: NoticeKind::AccountNeedsRelogin,
                    title,
                    message,
                    provider: Some(provider.to_owned()),
                }]
            }
            "relay.evicted" => {
                let count = data
                    .get("count")
                    .and_then(serde_json::Value::as_u64)
                    .unwrap_or(0);
                if count == 0 {
                    return Vec::new();
                }
                self.relay_pending = self.relay_pending.saturating_add(count);
                let quiet = self
                    .relay_last_ms
                    .is_some_and(|last| at_ms < last + RELAY_NOTICE_EVERY_MS);
                if quiet {
                    return Vec::new();
                }
                self.relay_notice(at_ms).into_iter().collect()
            }
            _ => Vec::new(),
        }
    }

    /// When [`NoticeRules::due`] next has something to say, if ever.
    pub fn next_due_ms(&self) -> Option<i64> {
        let obs = match self.obs {
            Obs::LostSince(since) => Some(since + OBS_LOST_AFTER_MS),
            _ => None,
        };
        let relay = match self.relay_last_ms {
            Some(last) if self.relay_pending > 0 => Some(last + RELAY_NOTICE_EVERY_MS),
            _ => None,
        };
        obs.into_iter().chain(relay).min()
    }

    /// The notices whose time has come by `now_ms`.
    pub fn due(&mut self, now_ms: i64) -> Vec<Notice> {
        let mut due = Vec::new();
        if let Obs::LostSince(since) = self.obs
            && now_ms >= since + OBS_LOST_AFTER_MS
        {
            self.obs = Obs::LostQuiet;
            due.push(Notice {
                kind: NoticeKind::ObsLost,
                title: "OBS is not connected".into(),
                message: format!(
                    "Stagehand lost OBS {} ago and cannot reach it. Is OBS still running? \
                     Overlays keep working; scene switching and stream controls wait for OBS.",
                    minutes(now_ms - since)
                ),
                provider: None,
            });
        }
        if let Some(last) = self.relay_last_ms
            && self.relay_pending > 0
            && now_ms >= last + RELAY_NOTICE_EVERY_MS
        {
            due.extend(self.relay_notice(now_ms));
        }
        due
    }

    fn relay_notice(&mut self, now_ms: i64) -> Option<Notice> {
        let count = std::mem::take(&mut self.relay_pending);
        if count == 0 {
            return None;
        }
        self.relay_last_ms = Some(now_ms);
        let what = if count == 1 {
            "1 webhook".to_owned()
        } else {
            format!("{count} webhooks")
        };
        Some(Notice {
            kind: NoticeKind::RelayEvicted,
            title: "The relay dropped webhooks".into(),
            message: format!(
                "The relay's buffer was full, so {what} never reached Stagehand. \
                 Recent deliveries are listed under Webhooks."
            ),
            provider: None,
        })
    }
}

fn provider_title(provider: &str) -> &str {
    match provider {
        "twitch" => "Twitch",
        "youtube" => "YouTube",
        "discord" => "Discord",
        other => other,
    }
}

fn minutes(ms: i64) -> String {
    let minutes = (ms / 60_000).max(1);
    if minutes == 1 {
        "a minute".into()
    } else {
        format!("{minutes} minutes")
    }
}

/// When the event was published, by the bus's clock; `fallback_ms` if it cannot be read.
fn published_ms(event: &EventEnvelope, fallback_ms: i64) -> i64 {
    humantime::parse_rfc3339(&event.ts)
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .and_then(|d| i64::try_from(d.as_millis()).ok())
        .unwrap_or(fallback_ms)
}

/// Applies the rules to what `rx` receives from `events` until the runtime stops.
async fn run(events: EventBus, mut rx: Receiver<EventEnvelope>, clock: Arc<dyn Clock>) {
    let mut rules = NoticeRules::default();
    loop {
        let deadline = rules.next_due_ms();
        let wake = async {
            match deadline {
                Some(at) => clock.sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        let notices = tokio::select! {
            event = rx.recv() => match event {
                Ok(event) => {
                    let now = clock.now_ms();
                    let mut notices =
                        rules.observe(&event.kind, &event.data, published_ms(&event, now));
                    notices.extend(rules.due(now));
                    notices
                }
                Err(RecvError::Lagged(missed)) => {
                    tracing::warn!(missed, "notices missed events; the bus was too busy");
                    Vec::new()
                }
                Err(RecvError::Closed) => return,
            },
            () = wake => rules.due(clock.now_ms()),
        };
        for notice in notices {
            tracing::info!(kind = ?notice.kind, title = %notice.title, "notice");
            events.publish(EVENT, serde_json::to_value(&notice).unwrap_or_default());
        }
    }
}

impl Engine {
    /// Starts turning bus events into `notice` events (called once, by [`Engine::open`]).
    pub(crate) fn notices_start(&self) {
        // Subscribed here, not in the task, so nothing published after this call is missed.
        // The task holds the bus and the clock, not the engine, so the engine can be dropped.
        let events = self.events().clone();
        let rx = events.subscribe();
        tokio::spawn(run(events, rx, Arc::clone(&self.inner.core.clock)));
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use serde_json::json;

    use super::*;
    use crate::clock::ManualClock;

    const T0: i64 = 1_700_000_000_000;

    fn obs(rules: &mut NoticeRules, state: &str, at: i64) -> Vec<Notice> {
        rules.observe("obs.status", &json!({ "state": state }), at)
    }

    #[test]
    fn obs_lost_for_a_minute_is_a_notice_once() {
        let mut rules = NoticeRules::default();
        obs(&mut rules, "identified", T0);
        assert!(obs(&mut rules, "lost", T0 + 1_000).is_empty());
        assert!(
            obs(&mut rules, "lost", T0 + 30_000).is_empty(),
            "every failed attempt repeats `lost`; the minute counts from the first"
        );
        assert_eq!(rules.next_due_ms(), Some(T0 + 61_000));
        assert!(
            rules.due(T0 + 60_999).is_empty(),
            "59.999 s lost is not yet a minute"
        );
        let due = rules.due(T0 + 61_000);
        assert_eq!(due.len(), 1);
        assert_eq!(due[0].kind, NoticeKind::ObsLost);
        assert!(rules.due(T0 + 600_000).is_empty(), "told once per loss");
        assert_eq!(rules.next_due_ms(), None);
    }

    #[test]
    fn obs_back_within_the_minute_is_no_notice() {
        let mut rules = NoticeRules::default();
        obs(&mut rules, "identified", T0);
        obs(&mut rules, "lost", T0 + 1_000);
        obs(&mut rules, "identified", T0 + 50_000);
        assert_eq!(rules.next_due_ms(), None);
        assert!(rules.due(T0 + 120_000).is_empty(), "OBS came back in time");
        obs(&mut rules, "lost", T0 + 200_000);
        assert_eq!(
            rules.due(T0 + 260_000).len(),
            1,
            "a second loss after a recovery is a new loss"
        );
    }

    #[test]
    fn obs_never_connected_is_no_notice() {
        let mut rules = NoticeRules::default();
        obs(&mut rules, "connecting", T0);
        obs(&mut rules, "lost", T0 + 1_000);
        assert!(
            rules.due(T0 + 3_600_000).is_empty(),
            "OBS not started yet is not a loss the streamer needs telling about"
        );
    }

    #[test]
    fn obs_closed_by_the_streamer_is_no_notice() {
        let mut rules = NoticeRules::default();
        obs(&mut rules, "identified", T0);
        rules.observe("obs.exiting", &json!({}), T0 + 1_000);
        obs(&mut rules, "lost", T0 + 1_100);
        assert!(
            rules.due(T0 + 3_600_000).is_empty(),
            "OBS said it was quitting: the streamer closed it"
        );
        obs(&mut rules, "identified", T0 + 4_000_000);
        obs(&mut rules, "lost", T0 + 4_000_100);
        assert_eq!(
            rules.due(T0 + 4_060_100).len(),
            1,
            "the quit only excuses the loss that followed it"
        );
    }

    #[test]
    fn account_relogin_is_told_once_until_it_recovers() {
        let mut rules = NoticeRules::default();
        let needs = json!({
            "provider": "twitch",
            "status": "needs_relogin",
            "notice": "Your Twitch account streamer needs you to sign in again: revoked",
        });
        let first = rules.observe("account.status", &needs, T0);
        assert_eq!(first.len(), 1);
        assert_eq!(first[0].kind, NoticeKind::AccountNeedsRelogin);
        assert_eq!(first[0].provider.as_deref(), Some("twitch"));
        assert_eq!(
            first[0].message, "Your Twitch account streamer needs you to sign in again: revoked",
            "the engine's own words are kept"
        );
        assert!(rules.observe("account.status", &needs, T0 + 1).is_empty());
        rules.observe(
            "account.status",
            &json!({ "provider": "twitch", "status": "ok" }),
            T0 + 2,
        );
        assert_eq!(rules.observe("account.status", &needs, T0 + 3).len(), 1);
        assert!(
            rules
                .observe(
                    "account.status",
                    &json!({ "provider": "youtube", "status": "refreshing" }),
                    T0 + 4
                )
                .is_empty()
        );
    }

    #[test]
    fn relay_evictions_are_told_at_most_once_a_minute_with_nothing_lost() {
        let mut rules = NoticeRules::default();
        let evicted = |n: u64| json!({ "count": n, "firstSeq": 1, "lastSeq": n });
        let first = rules.observe("relay.evicted", &evicted(3), T0);
        assert_eq!(first.len(), 1);
        assert!(first[0].message.contains("3 webhooks"), "{first:?}");
        assert!(
            rules
                .observe("relay.evicted", &evicted(2), T0 + 1_000)
                .is_empty()
        );
        assert!(
            rules
                .observe("relay.evicted", &evicted(1), T0 + 2_000)
                .is_empty()
        );
        assert_eq!(rules.next_due_ms(), Some(T0 + 60_000));
        assert!(rules.due(T0 + 59_999).is_empty());
        let later = rules.due(T0 + 60_000);
        assert_eq!(later.len(), 1);
        assert!(
            later[0].message.contains("3 webhooks"),
            "the two held back are summed: {later:?}"
        );
        assert_eq!(rules.next_due_ms(), None);
        let single = rules.observe("relay.evicted", &evicted(1), T0 + 200_000);
        assert!(single[0].message.contains("1 webhook never"), "{single:?}");
    }

    #[tokio::test]
    async fn the_bus_carries_a_notice_when_the_engine_clock_passes_the_minute() {
        let clock = ManualClock::new(T0);
        let bus = EventBus::new(64, Arc::new(clock.clone()));
        let mut seen = bus.subscribe();
        tokio::spawn(run(bus.clone(), bus.subscribe(), Arc::new(clock.clone())));
        bus.publish("obs.status", json!({ "state": "identified" }));
        bus.publish("obs.status", json!({ "state": "lost" }));
        clock.advance(Duration::from_secs(59));
        clock.advance(Duration::from_secs(2));
        let notice = tokio::time::timeout(Duration::from_secs(5), async {
            loop {
                match seen.recv().await {
                    Ok(event) if event.kind == EVENT => return event,
                    Ok(_) => {}
                    Err(e) => panic!("the bus closed: {e}"),
                }
            }
        })
        .await
        .expect("61 s after OBS was lost, by the engine clock, a notice is published");
        assert_eq!(notice.data["kind"], "obs_lost");
        assert_eq!(notice.data["title"], "OBS is not connected");
    }
}
