//! What the audit log records about account operations besides the action and its target:
//! small typed details, serialised once here (camelCase, the shapes the audit page shows).

use serde::Serialize;

use crate::{Flow, LinkStatus};

/// A detail as the audit log takes it.
pub(crate) fn audit_detail(detail: &impl Serialize) -> serde_json::Value {
    serde_json::to_value(detail).unwrap_or_default()
}

/// A sign-in that started: which flow.
#[derive(Serialize)]
pub(crate) struct StartedDetail {
    pub(crate) flow: Flow,
}

/// A link made: whose account (and by which flow, for the device flow's audit line).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct LinkedDetail<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) flow: Option<Flow>,
    pub(crate) account_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) account_name: Option<&'a str>,
}

/// A sign-in that failed, and why.
#[derive(Serialize)]
pub(crate) struct FailedDetail {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) flow: Option<Flow>,
    pub(crate) error: String,
}

/// A link that needs the streamer again.
#[derive(Serialize)]
pub(crate) struct ReloginDetail<'a> {
    pub(crate) status: LinkStatus,
    pub(crate) reason: &'a str,
}

/// An unlinked account, and whether the provider confirmed the revocation.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct UnlinkedDetail<'a> {
    pub(crate) account_id: &'a str,
    pub(crate) revoked: bool,
}

/// A destination added.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct DestinationDetail<'a> {
    pub(crate) name: &'a str,
    pub(crate) server_url: &'a str,
}
