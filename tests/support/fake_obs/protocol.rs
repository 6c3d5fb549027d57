//! The obs-websocket v5 framing: op codes, close codes, request statuses, event intents, the
//! authentication string, and the envelopes every message travels in (`{"op": …, "d": …}`).

use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// `WebSocketOpCode` values.
pub mod op {
    pub const HELLO: u64 = 0;
    pub const IDENTIFY: u64 = 1;
    pub const IDENTIFIED: u64 = 2;
    pub const REIDENTIFY: u64 = 3;
    pub const EVENT: u64 = 5;
    pub const REQUEST: u64 = 6;
    pub const REQUEST_RESPONSE: u64 = 7;
    pub const REQUEST_BATCH: u64 = 8;
    pub const REQUEST_BATCH_RESPONSE: u64 = 9;
}

/// `WebSocketCloseCode` values, plus the standard 1001 OBS sends when it quits.
pub mod close {
    pub const GOING_AWAY: u16 = 1001;
    pub const UNKNOWN_REASON: u16 = 4000;
    pub const MESSAGE_DECODE_ERROR: u16 = 4002;
    pub const MISSING_DATA_FIELD: u16 = 4003;
    pub const INVALID_DATA_FIELD_TYPE: u16 = 4004;
    pub const INVALID_DATA_FIELD_VALUE: u16 = 4005;
    pub const UNKNOWN_OP_CODE: u16 = 4006;
    pub const NOT_IDENTIFIED: u16 = 4007;
    pub const ALREADY_IDENTIFIED: u16 = 4008;
    pub const AUTHENTICATION_FAILED: u16 = 4009;
    pub const UNSUPPORTED_RPC_VERSION: u16 = 4010;
    pub const SESSION_INVALIDATED: u16 = 4011;
    pub const UNSUPPORTED_FEATURE: u16 = 4012;
}

/// `RequestStatus` values the fake answers with.
pub mod status {
    pub const SUCCESS: u16 = 100;
    pub const MISSING_REQUEST_TYPE: u16 = 203;
    pub const UNKNOWN_REQUEST_TYPE: u16 = 204;
    pub const GENERIC_ERROR: u16 = 205;
    pub const NOT_READY: u16 = 207;
    pub const MISSING_REQUEST_FIELD: u16 = 300;
    pub const MISSING_REQUEST_DATA: u16 = 301;
    pub const INVALID_REQUEST_FIELD: u16 = 400;
    pub const INVALID_REQUEST_FIELD_TYPE: u16 = 401;
    pub const REQUEST_FIELD_OUT_OF_RANGE: u16 = 402;
    pub const REQUEST_FIELD_EMPTY: u16 = 403;
    pub const OUTPUT_RUNNING: u16 = 500;
    pub const OUTPUT_NOT_RUNNING: u16 = 501;
    pub const RESOURCE_NOT_FOUND: u16 = 600;
    pub const RESOURCE_ALREADY_EXISTS: u16 = 601;
    pub const INVALID_RESOURCE_TYPE: u16 = 602;
    pub const INVALID_INPUT_KIND: u16 = 605;
}

/// `EventSubscription` bits: an event reaches a client when its intent is in the client's mask.
pub mod intent {
    pub const GENERAL: u64 = 1 << 0;
    pub const CONFIG: u64 = 1 << 1;
    pub const SCENES: u64 = 1 << 2;
    pub const INPUTS: u64 = 1 << 3;
    pub const TRANSITIONS: u64 = 1 << 4;
    pub const FILTERS: u64 = 1 << 5;
    pub const OUTPUTS: u64 = 1 << 6;
    pub const SCENE_ITEMS: u64 = 1 << 7;
    pub const MEDIA_INPUTS: u64 = 1 << 8;
    pub const VENDORS: u64 = 1 << 9;
    pub const UI: u64 = 1 << 10;
    /// Every non-high-volume category: what a client gets when Identify omits the mask.
    pub const ALL: u64 = (1 << 11) - 1;
    pub const INPUT_VOLUME_METERS: u64 = 1 << 16;
    pub const INPUT_ACTIVE_STATE_CHANGED: u64 = 1 << 17;
    pub const INPUT_SHOW_STATE_CHANGED: u64 = 1 << 18;
    pub const SCENE_ITEM_TRANSFORM_CHANGED: u64 = 1 << 19;
}

/// The RPC version obs-websocket 5.x speaks.
pub(super) const RPC_VERSION: u64 = 1;

/// The authentication string a client sends in Identify: `base64(sha256(secret + challenge))`
/// where `secret = base64(sha256(password + salt))` (protocol.md, "Creating an authentication
/// string").
pub fn auth_string(password: &str, salt: &str, challenge: &str) -> String {
    let secret = BASE64.encode(Sha256::digest(format!("{password}{salt}")));
    BASE64.encode(Sha256::digest(format!("{secret}{challenge}")))
}

/// The `Identified` answer to an `Identify` or `Reidentify`.
pub(super) fn identified_message() -> Value {
    json!({ "op": op::IDENTIFIED, "d": { "negotiatedRpcVersion": RPC_VERSION } })
}

/// An `Event` message; a `Null` `data` leaves `eventData` out.
pub(super) fn event_message(event_type: &str, intent: u64, data: &Value) -> Value {
    let mut d = json!({ "eventType": event_type, "eventIntent": intent });
    if data.is_object() {
        d["eventData"] = data.clone();
    }
    json!({ "op": op::EVENT, "d": d })
}

/// 32 unpredictable-enough bytes in base64, the shape of obs-websocket's salts and challenges.
pub(super) fn random_token() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut bytes = Vec::with_capacity(32);
    for _ in 0..4 {
        let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
        hasher.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
        bytes.extend_from_slice(&hasher.finish().to_le_bytes());
    }
    BASE64.encode(bytes)
}
