//! What can go wrong in the accounts capability: [`AccountError`] for the streamer and the
//! HTTP edge (each variant has a stable code), and [`Failure`] for how one provider request
//! failed (for good, or worth retrying), which the flows and the refresher turn into an
//! [`AccountError`].

use std::sync::Arc;

use stagehand_core::random::RandomError;
use stagehand_core::secrets::SecretError;
use stagehand_core::store::StoreError;

use crate::Provider;

/// Errors of account operations. Messages are plain and never hold a token.
#[derive(Debug, Clone, thiserror::Error)]
pub enum AccountError {
    /// No such provider.
    #[error("there is no account provider called `{0}` (twitch, youtube, discord)")]
    UnknownProvider(String),
    /// The provider has no client id configured.
    #[error(
        "{title} linking is not set up: register your own application and set its client id \
         in {var} (see the README, \"Platform accounts\")"
    )]
    NotConfigured {
        /// The provider's name.
        title: &'static str,
        /// The variable to set.
        var: &'static str,
    },
    /// The provider does not offer that flow (or not without a client secret).
    #[error("{0}")]
    FlowUnavailable(String),
    /// The callback's `state` is unknown, used, expired or for another provider.
    #[error(
        "this sign-in response does not match a sign-in Stagehand started, or it was already \
         used or has expired; start linking again"
    )]
    StateInvalid,
    /// The provider refused the authorization code (used before, expired, or not issued for
    /// this redirect and verifier).
    #[error(
        "{title} refused the sign-in code (it may have been used already); start linking again"
    )]
    CodeRejected {
        /// The provider's name.
        title: &'static str,
    },
    /// The streamer declined on the provider's page.
    #[error("{title} sign-in was declined; nothing was linked")]
    AccessDenied {
        /// The provider's name.
        title: &'static str,
    },
    /// The device code timed out before the streamer entered it.
    #[error("the Twitch code expired before it was entered; start linking again for a new code")]
    DeviceCodeExpired,
    /// No device flow was started (or the engine restarted since).
    #[error("no {title} device sign-in is under way; start linking {title} again")]
    NoDeviceFlow {
        /// The provider's name.
        title: &'static str,
        /// Its wire name.
        name: &'static str,
    },
    /// The provider could not be reached or answered something unusable.
    #[error("{title} could not be reached or gave an unusable answer: {detail}")]
    Provider {
        /// The provider's name.
        title: &'static str,
        /// What went wrong (never a token).
        detail: String,
    },
    /// No account is linked for that provider.
    #[error("no {title} account is linked")]
    NotLinked {
        /// The provider's name.
        title: &'static str,
    },
    /// The link needs the streamer to sign in again; nothing is retried until then.
    #[error("the {title} link needs you to sign in again: {reason}")]
    NeedsRelogin {
        /// The provider's name.
        title: &'static str,
        /// Why.
        reason: String,
    },
    /// A field is missing or malformed.
    #[error("{0}")]
    Invalid(String),
    /// No destination with that id.
    #[error("no stream destination with that id")]
    DestinationNotFound,
    /// A destination with that name exists already.
    #[error("a stream destination with that name exists already")]
    DestinationExists,
    /// Stagehand itself failed part-way (the store or the secret store), in a place where the
    /// error is shared with other waiters or reported later; the log has the details.
    #[error(
        "Stagehand could not finish this because its database or secret store failed; its log \
         has the details"
    )]
    Interrupted,
    /// The store failed; the log has the details.
    #[error(transparent)]
    Store(Arc<StoreError>),
    /// The secret store failed.
    #[error(transparent)]
    Secret(Arc<SecretError>),
    /// Something inside Stagehand failed (randomness, encoding, the HTTP client).
    #[error("{0}")]
    Internal(String),
}

impl AccountError {
    /// The stable machine-readable code clients match on (HTTP errors and events carry it).
    pub fn code(&self) -> &'static str {
        match self {
            Self::UnknownProvider(_) => "account_provider_unknown",
            Self::NotConfigured { .. } => "account_provider_not_configured",
            Self::FlowUnavailable(_) => "account_flow_unavailable",
            Self::StateInvalid => "account_state_invalid",
            Self::CodeRejected { .. } => "account_code_rejected",
            Self::AccessDenied { .. } => "account_access_denied",
            Self::DeviceCodeExpired => "account_device_code_expired",
            Self::NoDeviceFlow { .. } => "account_device_flow_not_found",
            Self::Provider { .. } => "account_provider_error",
            Self::NotLinked { .. } => "account_not_linked",
            Self::NeedsRelogin { .. } => "account_needs_relogin",
            Self::Invalid(_) => "invalid_fields",
            Self::DestinationNotFound => "destination_not_found",
            Self::DestinationExists => "destination_exists",
            Self::Interrupted => "account_interrupted",
            Self::Store(_) => "store_error",
            Self::Secret(_) | Self::Internal(_) => "internal_error",
        }
    }

    /// Whether this is Stagehand failing inside (store, secret store, ...) rather than an
    /// answer about the account.
    pub fn is_internal(&self) -> bool {
        matches!(self, Self::Store(_) | Self::Secret(_) | Self::Internal(_))
    }

    /// The error as other waiters and later readers are told it: an internal failure is
    /// logged here and shared as [`AccountError::Interrupted`].
    pub(crate) fn shared(&self, what: &str) -> Self {
        if self.is_internal() {
            tracing::error!(error = %self, "{what} failed inside Stagehand");
            Self::Interrupted
        } else {
            self.clone()
        }
    }

    pub(crate) fn not_linked(provider: Provider) -> Self {
        Self::NotLinked {
            title: provider.title(),
        }
    }

    pub(crate) fn provider(provider: Provider, detail: impl Into<String>) -> Self {
        Self::Provider {
            title: provider.title(),
            detail: detail.into(),
        }
    }
}

/// How a provider request failed: for good, or worth retrying.
#[derive(Debug, Clone)]
pub(crate) enum Failure {
    /// The provider refused (invalid grant, invalid token, bad client); retrying will not help.
    Rejected(String),
    /// Network trouble, a timeout, a 5xx or 429, or an answer that did not parse.
    Transient(String),
}

impl Failure {
    /// What went wrong, either way.
    pub(crate) fn detail(&self) -> &str {
        match self {
            Self::Rejected(d) | Self::Transient(d) => d,
        }
    }
}

impl From<StoreError> for AccountError {
    fn from(e: StoreError) -> Self {
        Self::Store(Arc::new(e))
    }
}

impl From<SecretError> for AccountError {
    fn from(e: SecretError) -> Self {
        Self::Secret(Arc::new(e))
    }
}

impl From<RandomError> for AccountError {
    fn from(e: RandomError) -> Self {
        Self::Internal(e.to_string())
    }
}
