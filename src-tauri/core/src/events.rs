//! The engine's event bus: what happened, for whoever is listening (WebSocket clients, the
//! desktop tray, later the overlays). Slow listeners miss events rather than slow the engine.

use std::sync::Arc;

use stagehand_protocol::EventEnvelope;
use tokio::sync::broadcast;

use crate::clock::{Clock, rfc3339};

/// Broadcast channel of [`EventEnvelope`]s.
#[derive(Clone)]
pub struct EventBus {
    tx: broadcast::Sender<EventEnvelope>,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for EventBus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventBus")
            .field("receivers", &self.tx.receiver_count())
            .finish()
    }
}

impl EventBus {
    /// A bus that buffers `capacity` events per slow receiver.
    pub fn new(capacity: usize, clock: Arc<dyn Clock>) -> Self {
        let (tx, _) = broadcast::channel(capacity);
        Self { tx, clock }
    }

    /// Publishes an event; nobody listening is fine.
    pub fn publish(&self, kind: &str, data: serde_json::Value) {
        let _ = self.tx.send(EventEnvelope {
            kind: kind.to_owned(),
            ts: rfc3339(self.clock.now_ms()),
            data,
        });
    }

    /// A new receiver that sees events published from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<EventEnvelope> {
        self.tx.subscribe()
    }
}
