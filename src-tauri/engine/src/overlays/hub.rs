//! Live overlay pages: who is connected to which overlay, and fan-out to them.
//!
//! Each connected page has its own bounded queue of pre-serialised messages, so one slow or
//! stalled page never delays the others: when its queue is full the message is dropped for that
//! page only and the page is marked to resync from a full scene as soon as it drains. Messages
//! are serialised once and shared (`Arc<str>`) across pages.

pub use stagehand_protocol::overlay::PageFigures;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::{mpsc, oneshot};

/// A message queued for a page.
#[derive(Debug, Clone)]
pub struct Queued {
    /// The text sent.
    pub text: Arc<str>,
    /// What it is, so a page's socket can skip what a full scene it sent already covers.
    pub kind: QueuedKind,
}

/// What a queued message is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueuedKind {
    /// An alert, chat line, chart update or speech: always sent.
    Event,
    /// `scene.full` at this version (an overlay rename sends one at the same version again).
    Full(i64),
    /// `scene.patch` to this version.
    Patch(i64),
}

impl Queued {
    /// Whether a page whose socket last sent the scene at version `shown` still needs this;
    /// moves `shown` on when it does. A full scene sent on resync or connect makes older
    /// queued scene messages stale, but never an event.
    pub fn still_news(&self, shown: &mut i64) -> bool {
        let (news, version) = match self.kind {
            QueuedKind::Event => return true,
            QueuedKind::Full(v) => (v >= *shown, v),
            QueuedKind::Patch(v) => (v > *shown, v),
        };
        if news {
            *shown = version;
        }
        news
    }
}

/// Why the server closed a page's socket (WebSocket close code and reason).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloseReason {
    /// 4403 for a refused link, 1001 for shutdown.
    pub code: u16,
    /// Shown in the overlay's debug box.
    pub reason: &'static str,
}

struct PageHandle {
    id: u64,
    tx: mpsc::Sender<Queued>,
    close: Option<oneshot::Sender<CloseReason>>,
    state: Arc<PageState>,
}

/// What the server knows about one connected page (shared with its socket task).
#[derive(Debug, Default)]
pub struct PageState {
    /// Set when a message was dropped; the socket task sends a full scene and clears it.
    pub needs_resync: AtomicBool,
    /// Last version the page reported applied (0: none yet).
    pub applied_version: AtomicI64,
    /// Messages dropped for this page.
    pub dropped: AtomicU64,
}

/// The socket task's end of a page connection.
#[derive(Debug)]
pub struct PageConnection {
    /// Page id (unique in this process).
    pub id: u64,
    /// The overlay it shows.
    pub overlay_id: String,
    /// Messages to send, in order.
    pub rx: mpsc::Receiver<Queued>,
    /// Completes when the server closes this page (overlay deleted, key rotated).
    pub closed: oneshot::Receiver<CloseReason>,
    /// Shared state.
    pub state: Arc<PageState>,
}

/// Registry of connected overlay pages.
pub struct OverlayHub {
    queue: usize,
    pages: Mutex<HashMap<String, Vec<PageHandle>>>,
    next_id: AtomicU64,
    sent: AtomicU64,
    dropped: AtomicU64,
}

impl std::fmt::Debug for OverlayHub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OverlayHub").finish_non_exhaustive()
    }
}

impl OverlayHub {
    /// A hub whose pages each queue at most `queue` messages.
    pub fn new(queue: usize) -> Self {
        Self {
            queue: queue.max(1),
            pages: Mutex::default(),
            next_id: AtomicU64::default(),
            sent: AtomicU64::default(),
            dropped: AtomicU64::default(),
        }
    }

    fn pages(&self) -> std::sync::MutexGuard<'_, HashMap<String, Vec<PageHandle>>> {
        self.pages.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Registers a page for `overlay_id`.
    pub fn connect(&self, overlay_id: &str) -> PageConnection {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed) + 1;
        let (tx, rx) = mpsc::channel(self.queue);
        let (close_tx, close_rx) = oneshot::channel();
        let state = Arc::new(PageState::default());
        self.pages()
            .entry(overlay_id.to_owned())
            .or_default()
            .push(PageHandle {
                id,
                tx,
                close: Some(close_tx),
                state: Arc::clone(&state),
            });
        PageConnection {
            id,
            overlay_id: overlay_id.to_owned(),
            rx,
            closed: close_rx,
            state,
        }
    }

    /// How many pages of `overlay_id` are connected.
    pub fn pages_of(&self, overlay_id: &str) -> usize {
        self.pages().get(overlay_id).map_or(0, Vec::len)
    }

    /// Forgets a page (its socket ended).
    pub fn disconnect(&self, overlay_id: &str, page_id: u64) {
        let mut pages = self.pages();
        if let Some(list) = pages.get_mut(overlay_id) {
            list.retain(|p| p.id != page_id);
            if list.is_empty() {
                pages.remove(overlay_id);
            }
        }
    }

    /// Queues `message` for every page of `overlay_id`; returns how many pages got it.
    pub fn send(&self, overlay_id: &str, message: &Arc<str>) -> usize {
        let pages = self.pages();
        let Some(list) = pages.get(overlay_id) else {
            return 0;
        };
        self.fan_out(list.iter(), message, QueuedKind::Event)
    }

    /// Queues the scene message `message` (`kind` says which) for every page of `overlay_id`.
    pub fn send_scene(&self, overlay_id: &str, message: &Arc<str>, kind: QueuedKind) -> usize {
        let pages = self.pages();
        let Some(list) = pages.get(overlay_id) else {
            return 0;
        };
        self.fan_out(list.iter(), message, kind)
    }

    /// Queues `message` for every connected page of every overlay.
    pub fn send_all(&self, message: &Arc<str>) -> usize {
        let pages = self.pages();
        self.fan_out(pages.values().flatten(), message, QueuedKind::Event)
    }

    fn fan_out<'a>(
        &self,
        pages: impl Iterator<Item = &'a PageHandle>,
        message: &Arc<str>,
        kind: QueuedKind,
    ) -> usize {
        let mut delivered = 0;
        for page in pages {
            let queued = Queued {
                text: Arc::clone(message),
                kind,
            };
            match page.tx.try_send(queued) {
                Ok(()) => {
                    delivered += 1;
                    self.sent.fetch_add(1, Ordering::Relaxed);
                }
                Err(mpsc::error::TrySendError::Full(_)) => {
                    page.state.needs_resync.store(true, Ordering::Release);
                    page.state.dropped.fetch_add(1, Ordering::Relaxed);
                    self.dropped.fetch_add(1, Ordering::Relaxed);
                }
                Err(mpsc::error::TrySendError::Closed(_)) => {}
            }
        }
        delivered
    }

    /// Closes every page of `overlay_id` with `reason`.
    pub fn close_overlay(&self, overlay_id: &str, reason: CloseReason) {
        let removed = self.pages().remove(overlay_id);
        for mut page in removed.into_iter().flatten() {
            if let Some(close) = page.close.take() {
                let _ = close.send(reason.clone());
            }
        }
    }

    /// Closes every page of every overlay.
    pub fn close_all(&self, reason: CloseReason) {
        let all: Vec<PageHandle> = self.pages().drain().flat_map(|(_, v)| v).collect();
        for mut page in all {
            if let Some(close) = page.close.take() {
                let _ = close.send(reason.clone());
            }
        }
    }

    /// Connected pages per overlay.
    pub fn figures(&self) -> HashMap<String, Vec<PageFigures>> {
        self.pages()
            .iter()
            .map(|(overlay, list)| {
                let figures = list
                    .iter()
                    .map(|p| PageFigures {
                        page_id: p.id,
                        applied_version: p.state.applied_version.load(Ordering::Relaxed),
                        dropped: p.state.dropped.load(Ordering::Relaxed),
                    })
                    .collect();
                (overlay.clone(), figures)
            })
            .collect()
    }

    /// Messages queued and dropped since start.
    pub fn totals(&self) -> (u64, u64) {
        (
            self.sent.load(Ordering::Relaxed),
            self.dropped.load(Ordering::Relaxed),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_full_queue_drops_for_that_page_only_and_asks_for_resync() {
        let hub = OverlayHub::new(8);
        let mut healthy = hub.connect("ov");
        let stalled = hub.connect("ov");
        let msg: Arc<str> = Arc::from("m");
        for _ in 0..8 {
            assert_eq!(hub.send("ov", &msg), 2);
            healthy.rx.recv().await.expect("healthy page reads");
        }
        assert_eq!(hub.send("ov", &msg), 1, "the stalled page's queue is full");
        assert!(healthy.rx.recv().await.is_some());
        assert!(stalled.state.needs_resync.load(Ordering::Acquire));
        assert!(!healthy.state.needs_resync.load(Ordering::Acquire));
        assert_eq!(hub.totals().1, 1);
    }

    #[test]
    fn a_full_scene_sent_makes_older_scene_messages_stale_but_not_events() {
        let queued = |kind| Queued {
            text: Arc::from("m"),
            kind,
        };
        // The socket sent version 5 whole (on connect or resync).
        let mut shown = 5;
        assert!(queued(QueuedKind::Event).still_news(&mut shown));
        assert!(!queued(QueuedKind::Patch(5)).still_news(&mut shown));
        assert!(!queued(QueuedKind::Full(4)).still_news(&mut shown));
        assert!(
            queued(QueuedKind::Full(5)).still_news(&mut shown),
            "a rename resends the same version"
        );
        assert!(queued(QueuedKind::Patch(6)).still_news(&mut shown));
        assert_eq!(shown, 6);
        assert!(!queued(QueuedKind::Full(5)).still_news(&mut shown));
    }

    #[tokio::test]
    async fn closing_an_overlay_closes_its_pages_only() {
        let hub = OverlayHub::new(8);
        let a = hub.connect("a");
        let mut b = hub.connect("b");
        hub.close_overlay(
            "a",
            CloseReason {
                code: 4403,
                reason: "overlay deleted",
            },
        );
        assert_eq!(a.closed.await.expect("closed").code, 4403);
        assert!(b.closed.try_recv().is_err(), "other overlays stay open");
        assert_eq!(hub.send("a", &Arc::from("x")), 0);
    }
}
