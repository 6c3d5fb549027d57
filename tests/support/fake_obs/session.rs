//! One client's conversation with the fake, as obs-websocket's `WebSocketServer_Protocol.cpp`
//! holds it: Hello, Identify (with the password check), Reidentify, requests and request
//! batches, and the close codes for every way a client can get the protocol wrong.

use serde_json::{Map, Value, json};

use super::handlers::{Done, Failure, SessionStats, not_ready, process};
use super::protocol::{RPC_VERSION, auth_string, close, identified_message, intent, op, status};
use super::server::Shared;

/// One connection's protocol state.
pub(super) struct Session {
    /// Present when the server has a password.
    pub(super) challenge: Option<String>,
    pub(super) identified: bool,
    pub(super) incoming: u64,
    pub(super) outgoing: u64,
}

pub(super) enum Reply {
    Send { message: Value, effects: Effects },
    Close(u16, String),
}

/// What happens after a reply went out: OBS answers a request before the events it causes.
#[derive(Default)]
pub(super) struct Effects {
    pub(super) identified_with: Option<u64>,
    pub(super) subscriptions: Option<u64>,
    pub(super) events: Vec<Value>,
    pub(super) recording_file: Option<String>,
}

impl Effects {
    pub(super) async fn apply(self, shared: &Shared, id: u64) {
        if let Some(mask) = self.subscriptions.or(self.identified_with)
            && let Some(session) = shared.inner().sessions.get_mut(&id)
        {
            session.subscriptions = Some(mask);
        }
        if self.identified_with.is_some() {
            shared.identified.send_modify(|count| *count += 1);
        }
        for event in &self.events {
            shared.broadcast(event);
        }
        if let Some(path) = self.recording_file {
            // Best effort: OBS opens the file when recording starts.
            let _ = tokio::fs::write(path, b"").await;
        }
    }
}

impl Session {
    pub(super) fn hello(&self, shared: &Shared) -> Value {
        let inner = shared.inner();
        let state = &inner.state;
        let mut hello = json!({
            "obsStudioVersion": state.obs_version,
            "obsWebSocketVersion": state.websocket_version,
            "rpcVersion": RPC_VERSION,
        });
        if let Some(challenge) = &self.challenge {
            hello["authentication"] = json!({ "challenge": challenge, "salt": shared.salt });
        }
        json!({ "op": op::HELLO, "d": hello })
    }

    /// Handles one text message the way `WebSocketServer::onMessage`/`ProcessMessage` do.
    pub(super) fn receive(&mut self, shared: &Shared, text: &str) -> Reply {
        let message: Value = match serde_json::from_str(text) {
            Ok(message) => message,
            Err(e) => {
                return closing(
                    close::MESSAGE_DECODE_ERROR,
                    format!("Unable to decode Json: {e}"),
                );
            }
        };
        let Some(message) = message.as_object() else {
            return closing(
                close::MESSAGE_DECODE_ERROR,
                "You sent a non-object payload.",
            );
        };
        if !self.identified && message.contains_key("request-type") {
            return closing(
                close::UNSUPPORTED_RPC_VERSION,
                "You appear to be attempting to connect with the pre-5.0.0 plugin protocol. \
                 Check to make sure your client is updated.",
            );
        }
        let Some(op) = message.get("op") else {
            return closing(close::UNKNOWN_OP_CODE, "Your request is missing an `op`.");
        };
        let Some(op) = op.as_u64() else {
            return closing(close::UNKNOWN_OP_CODE, format!("Unknown OpCode: {op}"));
        };
        let data = match message.get("d") {
            None | Some(Value::Null) => {
                return closing(
                    close::MISSING_DATA_FIELD,
                    "Your payload is missing data (`d`).",
                );
            }
            Some(Value::Object(data)) => data,
            Some(_) => {
                return closing(
                    close::INVALID_DATA_FIELD_TYPE,
                    "Your payload's data (`d`) is not an object.",
                );
            }
        };
        if !self.identified && op != op::IDENTIFY {
            return closing(
                close::NOT_IDENTIFIED,
                "You attempted to send a non-Identify message while not identified.",
            );
        }
        match op {
            op::IDENTIFY => self.identify(shared, data),
            op::REIDENTIFY => match subscriptions(data) {
                Ok(mask) => Reply::Send {
                    message: identified_message(),
                    effects: Effects {
                        subscriptions: Some(mask.unwrap_or(intent::ALL)),
                        ..Effects::default()
                    },
                },
                Err(reply) => reply,
            },
            op::REQUEST => self.request(shared, data),
            op::REQUEST_BATCH => self.request_batch(shared, data),
            other => closing(close::UNKNOWN_OP_CODE, format!("Unknown OpCode: {other}")),
        }
    }

    fn identify(&mut self, shared: &Shared, data: &Map<String, Value>) -> Reply {
        if self.identified {
            return closing(
                close::ALREADY_IDENTIFIED,
                "You are already Identified with the obs-websocket server.",
            );
        }
        if let (Some(password), Some(challenge)) = (&shared.password, &self.challenge) {
            let Some(offered) = data.get("authentication") else {
                return closing(
                    close::AUTHENTICATION_FAILED,
                    "Your payload's data is missing an `authentication` string, however \
                     authentication is required.",
                );
            };
            let Some(offered) = offered.as_str() else {
                return closing(
                    close::AUTHENTICATION_FAILED,
                    "Your `authentication` field is not a string.",
                );
            };
            if offered != auth_string(password, &shared.salt, challenge) {
                return closing(close::AUTHENTICATION_FAILED, "Authentication failed.");
            }
        }
        let Some(rpc_version) = data.get("rpcVersion") else {
            return closing(
                close::MISSING_DATA_FIELD,
                "Your payload's data is missing an `rpcVersion`.",
            );
        };
        let Some(rpc_version) = rpc_version.as_u64() else {
            return closing(
                close::INVALID_DATA_FIELD_TYPE,
                "Your `rpcVersion` is not an unsigned number.",
            );
        };
        if rpc_version != RPC_VERSION {
            return closing(
                close::UNSUPPORTED_RPC_VERSION,
                "Your requested RPC version is not supported by this server.",
            );
        }
        match subscriptions(data) {
            Ok(mask) => {
                self.identified = true;
                Reply::Send {
                    message: identified_message(),
                    effects: Effects {
                        identified_with: Some(mask.unwrap_or(intent::ALL)),
                        ..Effects::default()
                    },
                }
            }
            Err(reply) => reply,
        }
    }

    fn request(&mut self, shared: &Shared, data: &Map<String, Value>) -> Reply {
        let Some(request_id) = data.get("requestId") else {
            return closing(
                close::MISSING_DATA_FIELD,
                "Your payload data is missing a `requestId`.",
            );
        };
        let Some(request_type) = data.get("requestType") else {
            return closing(
                close::MISSING_DATA_FIELD,
                "Your payload's data is missing an `requestType`.",
            );
        };
        let Some(request_type) = request_type.as_str() else {
            return closing(
                close::INVALID_DATA_FIELD_TYPE,
                "Your `requestType` is not a string.",
            );
        };
        let request_data = data.get("requestData").unwrap_or(&Value::Null);
        let mut effects = Effects::default();
        let outcome = {
            let mut inner = shared.inner();
            inner.requests_seen.push(request_type.to_owned());
            if inner.not_ready > 0 {
                inner.not_ready -= 1;
                Err(not_ready())
            } else {
                let stats = SessionStats::of(self);
                process(&mut inner.state, &stats, request_type, request_data)
            }
        };
        let mut d = json!({
            "requestType": request_type,
            "requestId": request_id,
        });
        fill_result(&mut d, outcome, &mut effects);
        Reply::Send {
            message: json!({ "op": op::REQUEST_RESPONSE, "d": d }),
            effects,
        }
    }

    fn request_batch(&mut self, shared: &Shared, data: &Map<String, Value>) -> Reply {
        let Some(request_id) = data.get("requestId") else {
            return closing(
                close::MISSING_DATA_FIELD,
                "Your payload data is missing a `requestId`.",
            );
        };
        if let Some(execution_type) = data.get("executionType").filter(|v| !v.is_null()) {
            let Some(execution_type) = execution_type.as_u64() else {
                return closing(
                    close::INVALID_DATA_FIELD_TYPE,
                    "Your `executionType` is not a number.",
                );
            };
            if execution_type > 2 {
                return closing(
                    close::INVALID_DATA_FIELD_VALUE,
                    "Your `executionType` has an invalid value.",
                );
            }
        }
        let halt_on_failure = match data.get("haltOnFailure") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(halt)) => *halt,
            Some(_) => {
                return closing(
                    close::INVALID_DATA_FIELD_TYPE,
                    "Your `haltOnFailure` is not a boolean.",
                );
            }
        };
        let requests = match data.get("requests") {
            None => {
                return closing(
                    close::MISSING_DATA_FIELD,
                    "Your payload data is missing a `requests`.",
                );
            }
            Some(Value::Array(requests)) => requests,
            Some(_) => {
                return closing(
                    close::INVALID_DATA_FIELD_TYPE,
                    "Your `requests` is not an array.",
                );
            }
        };
        let mut effects = Effects::default();
        let mut results = Vec::new();
        {
            let mut inner = shared.inner();
            let ready = if inner.not_ready > 0 {
                inner.not_ready -= 1;
                false
            } else {
                true
            };
            let stats = SessionStats::of(self);
            for request in requests {
                let request_type = request["requestType"].as_str().unwrap_or("");
                inner.requests_seen.push(request_type.to_owned());
                let outcome = if ready {
                    process(
                        &mut inner.state,
                        &stats,
                        request_type,
                        &request["requestData"],
                    )
                } else {
                    Err(not_ready())
                };
                let failed = outcome.is_err();
                let mut result = json!({ "requestType": request_type });
                if let Some(id) = request.get("requestId").filter(|v| !v.is_null()) {
                    result["requestId"] = id.clone();
                }
                fill_result(&mut result, outcome, &mut effects);
                results.push(result);
                if failed && halt_on_failure {
                    break;
                }
            }
        }
        Reply::Send {
            message: json!({
                "op": op::REQUEST_BATCH_RESPONSE,
                "d": { "requestId": request_id, "results": results },
            }),
            effects,
        }
    }
}

pub(super) fn closing(code: u16, reason: impl Into<String>) -> Reply {
    Reply::Close(code, reason.into())
}

/// The `eventSubscriptions` of an Identify or Reidentify, if given.
fn subscriptions(data: &Map<String, Value>) -> Result<Option<u64>, Reply> {
    match data.get("eventSubscriptions") {
        None => Ok(None),
        Some(mask) => mask.as_u64().map(Some).ok_or_else(|| {
            closing(
                close::INVALID_DATA_FIELD_TYPE,
                "Your `eventSubscriptions` is not an unsigned number.",
            )
        }),
    }
}

/// Writes `requestStatus` (and `responseData` only when there is some) into a response.
fn fill_result(d: &mut Value, outcome: Result<Done, Failure>, effects: &mut Effects) {
    match outcome {
        Ok(done) => {
            d["requestStatus"] = json!({ "result": true, "code": status::SUCCESS });
            if let Some(data) = done.data {
                d["responseData"] = data;
            }
            effects.events.extend(done.events);
            if done.recording_file.is_some() {
                effects.recording_file = done.recording_file;
            }
        }
        Err(failure) => {
            d["requestStatus"] = json!({ "result": false, "code": failure.code });
            if let Some(comment) = failure.comment {
                d["requestStatus"]["comment"] = json!(comment);
            }
        }
    }
}
