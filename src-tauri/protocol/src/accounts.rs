//! What the accounts capability answers and announces: linked accounts, sign-in progress,
//! stream destinations and the Discord webhook (always masked), and the `account.link` and
//! `account.status` events. The JSON shapes are the ones the panel and the tests read; the
//! engine builds them here and nowhere else, so there is one shape per message.

use serde::{Deserialize, Serialize};

/// A platform an account can be linked on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Provider {
    /// Twitch.
    Twitch,
    /// YouTube, through a Google account.
    #[serde(rename = "youtube")]
    YouTube,
    /// Discord.
    Discord,
}

impl Provider {
    /// Every provider.
    pub const ALL: [Provider; 3] = [Provider::Twitch, Provider::YouTube, Provider::Discord];

    /// The wire name (`twitch`, `youtube`, `discord`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Twitch => "twitch",
            Self::YouTube => "youtube",
            Self::Discord => "discord",
        }
    }

    /// Parses a wire name.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.as_str() == name)
    }

    /// The name people know it by.
    pub fn title(self) -> &'static str {
        match self {
            Self::Twitch => "Twitch",
            Self::YouTube => "YouTube",
            Self::Discord => "Discord",
        }
    }

    /// The environment variable that sets the client id.
    pub fn client_id_var(self) -> &'static str {
        match self {
            Self::Twitch => "STAGEHAND_TWITCH_CLIENT_ID",
            Self::YouTube => "STAGEHAND_GOOGLE_CLIENT_ID",
            Self::Discord => "STAGEHAND_DISCORD_CLIENT_ID",
        }
    }
}

/// How an account is linked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Flow {
    /// Device Code Grant: the streamer types a code on the provider's site (Twitch).
    Device,
    /// Authorization Code: the provider redirects the browser back to this server.
    Code,
}

impl Flow {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Device => "device",
            Self::Code => "code",
        }
    }

    /// Parses a wire name.
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "device" => Some(Self::Device),
            "code" => Some(Self::Code),
            _ => None,
        }
    }
}

/// Where a link stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LinkStatus {
    /// The token works (as far as Stagehand knows).
    Ok,
    /// A renewal is under way, or being retried after the provider could not be reached.
    Refreshing,
    /// The provider refused the refresh token: the streamer has to link again.
    NeedsRelogin,
}

impl LinkStatus {
    /// The wire name (`ok`, `refreshing`, `needs_relogin`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Refreshing => "refreshing",
            Self::NeedsRelogin => "needs_relogin",
        }
    }

    /// Parses a wire name; anything unknown needs the streamer (the safe reading).
    pub fn parse(text: &str) -> Self {
        match text {
            "ok" => Self::Ok,
            "refreshing" => Self::Refreshing,
            _ => Self::NeedsRelogin,
        }
    }
}

/// A linked account as the streamer sees it: never a token.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AccountLink {
    /// Which platform.
    pub provider: Provider,
    /// The platform's id of the account (Twitch user id, YouTube channel id, Discord user id).
    pub account_id: String,
    /// Its name (display name, channel title).
    pub account_name: String,
    /// Scopes granted.
    pub scopes: Vec<String>,
    /// How it was linked.
    pub flow: Flow,
    /// Where it stands.
    pub status: LinkStatus,
    /// Why, in plain words, when not `ok`.
    pub status_reason: Option<String>,
    /// When the access token expires (RFC 3339), if the provider said.
    pub expires_at: Option<String>,
    /// When it was linked (RFC 3339).
    pub linked_at: String,
    /// When the token was last renewed (RFC 3339).
    pub refreshed_at: Option<String>,
    /// When the token expires (Unix ms); the refresher's schedule, not sent.
    #[serde(skip)]
    pub expires_ms: Option<i64>,
    /// When the current access token was obtained (Unix ms); not sent.
    #[serde(skip)]
    pub token_ms: i64,
}

/// What `GET /api/accounts/{provider}/start` answers. Field names are the OAuth ones (RFC 8628 for the
/// device flow), snake_case.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "flow", rename_all = "snake_case")]
pub enum FlowStart {
    /// Show `user_code` and open `verification_uri`; Stagehand polls meanwhile.
    Device {
        /// Which provider.
        provider: Provider,
        /// Where the streamer enters the code.
        verification_uri: String,
        /// The code to show.
        user_code: String,
        /// Seconds until the code expires.
        expires_in: u64,
        /// Seconds between polls.
        interval: u64,
    },
    /// Open `authorization_url` in the system browser (never a webview); the provider sends
    /// the browser back to `/auth/{provider}/callback`.
    Code {
        /// Which provider.
        provider: Provider,
        /// The URL to open.
        authorization_url: String,
        /// Seconds the sign-in may take before its callback is refused.
        expires_in: u64,
    },
}

/// Where a sign-in stands: `GET /api/accounts/{provider}/device` for Twitch's device flow, and
/// the `account.link` events of every flow. A failed one is an error instead.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum LinkProgress {
    /// Waiting for the streamer to enter the code.
    Pending {
        /// Which provider.
        provider: Provider,
        /// Where the streamer enters the code.
        verification_uri: String,
        /// The code to show.
        user_code: String,
        /// Seconds until the code expires.
        expires_in: u64,
        /// Seconds between polls now (raised by `slow_down`).
        interval: u64,
    },
    /// Linked.
    Linked {
        /// The link.
        account: AccountLink,
    },
}

/// One provider as the accounts page shows it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ProviderInfo {
    /// Which provider.
    pub provider: Provider,
    /// Whether a client id is configured.
    pub configured: bool,
    /// The flows `GET /api/accounts/{provider}/start?flow=` offers now.
    pub flows: Vec<Flow>,
    /// The variable that sets the client id.
    pub client_id_var: &'static str,
}

/// The Discord channel webhook, masked.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DiscordWebhook {
    /// `https://discord.com/api/webhooks/{id}/****`.
    pub url: String,
    /// When it was saved (RFC 3339).
    pub set_at: String,
}

/// `GET /api/accounts`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AccountsOverview {
    /// Linked accounts.
    pub accounts: Vec<AccountLink>,
    /// What can be linked.
    pub providers: Vec<ProviderInfo>,
    /// The Discord channel webhook, if one is saved.
    pub discord_webhook: Option<DiscordWebhook>,
}

/// What unlinking did.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Unlinked {
    /// Which provider.
    pub provider: Provider,
    /// Whether the provider confirmed the revocation (or said the token was dead already).
    pub revoked: bool,
    /// Why not, when it could not be reached. The link is removed here either way; revoke it
    /// on the provider's site too in that case.
    pub revoke_error: Option<String>,
}

/// A custom RTMP destination as listed: the key masked.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Destination {
    /// `dst_…`.
    pub id: String,
    /// The streamer's name for it.
    pub name: String,
    /// The server URL without the key (`rtmp://host/app`).
    pub server_url: String,
    /// The full URL with the key masked: `rtmp://host/app/****`.
    pub masked_url: String,
    /// When it was added (RFC 3339).
    pub created_at: String,
}

/// The `account.link` event: how a sign-in stands, for the page that started it.
#[derive(Debug, Clone, Serialize)]
pub struct LinkEvent {
    /// Which provider.
    pub provider: Provider,
    /// Which flow.
    pub flow: Flow,
    /// Where it stands (`state`: `pending`, `linked` or `failed`).
    #[serde(flatten)]
    pub state: LinkEventState,
}

/// Where a sign-in stands, as [`LinkEvent`] tells it.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum LinkEventState {
    /// Waiting for the streamer to enter the code.
    Pending {
        /// Where the streamer enters the code.
        verification_uri: String,
        /// The code to show.
        user_code: String,
        /// Seconds until the code expires.
        expires_in: u64,
        /// Seconds between polls now.
        interval: u64,
    },
    /// Linked.
    Linked {
        /// The link.
        account: AccountLink,
    },
    /// Failed, with the error's stable code and its message.
    Failed {
        /// The stable machine-readable code.
        code: String,
        /// The message in plain words.
        message: String,
    },
}

impl From<LinkProgress> for LinkEventState {
    fn from(progress: LinkProgress) -> Self {
        match progress {
            LinkProgress::Pending {
                verification_uri,
                user_code,
                expires_in,
                interval,
                ..
            } => Self::Pending {
                verification_uri,
                user_code,
                expires_in,
                interval,
            },
            LinkProgress::Linked { account } => Self::Linked { account },
        }
    }
}

/// The `account.status` event: a link as the UI shows it, or that it is gone.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum AccountStatusEvent {
    /// The link as it stands now.
    Link {
        /// The link.
        #[serde(flatten)]
        link: Box<AccountLink>,
        /// What the streamer has to do, in plain words, when they have to act.
        #[serde(skip_serializing_if = "Option::is_none")]
        notice: Option<String>,
    },
    /// The link was removed.
    Unlinked {
        /// Which provider.
        provider: Provider,
        /// Always `unlinked`.
        status: UnlinkedStatus,
    },
}

/// The `status` of an [`AccountStatusEvent::Unlinked`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum UnlinkedStatus {
    /// The link is gone.
    Unlinked,
}

/// The query of `GET /api/accounts/{provider}/start`: `flow=device|code`, or the provider's
/// default flow.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StartQuery {
    /// `device` or `code`.
    pub flow: Option<String>,
}

/// What the callback answers a client that is not a browser: the account now linked.
#[derive(Debug, Clone, Serialize)]
pub struct Linked {
    /// The link.
    pub account: AccountLink,
}

/// The body of `PUT /api/accounts/{provider}/client-secret`. No `Debug`: it holds the secret.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientSecretBody {
    /// The provider application's client secret.
    pub secret: String,
}

/// The body of `PUT /api/accounts/discord/webhook`. No `Debug`: the URL is a credential.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DiscordWebhookBody {
    /// The channel webhook URL Discord gave.
    pub url: String,
}

/// `GET /api/destinations`: the custom RTMP destinations, keys masked.
#[derive(Debug, Clone, Serialize)]
pub struct Destinations {
    /// The destinations, in the order they were added.
    pub destinations: Vec<Destination>,
}

/// The body of `POST /api/destinations`. No `Debug`: it holds the stream key.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct NewDestination {
    /// The streamer's name for it.
    pub name: String,
    /// The server URL without the key (`rtmp://host/app`).
    pub server_url: String,
    /// The stream key.
    pub stream_key: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link() -> AccountLink {
        AccountLink {
            provider: Provider::Twitch,
            account_id: "1".into(),
            account_name: "ada".into(),
            scopes: vec!["chat:read".into()],
            flow: Flow::Device,
            status: LinkStatus::NeedsRelogin,
            status_reason: Some("revoked".into()),
            expires_at: None,
            linked_at: "2024-01-01T00:00:00Z".into(),
            refreshed_at: None,
            expires_ms: Some(5),
            token_ms: 1,
        }
    }

    #[test]
    fn events_keep_the_shapes_the_panel_reads() {
        let status = serde_json::to_value(AccountStatusEvent::Link {
            link: Box::new(link()),
            notice: Some("sign in again".into()),
        })
        .expect("serialises");
        assert_eq!(status["provider"], "twitch");
        assert_eq!(status["status"], "needs_relogin");
        assert_eq!(status["accountName"], "ada");
        assert_eq!(status["notice"], "sign in again");
        assert!(status.get("tokenMs").is_none(), "the schedule is not sent");
        let gone = serde_json::to_value(AccountStatusEvent::Unlinked {
            provider: Provider::YouTube,
            status: UnlinkedStatus::Unlinked,
        })
        .expect("serialises");
        assert_eq!(
            gone,
            serde_json::json!({ "provider": "youtube", "status": "unlinked" })
        );
        let failed = serde_json::to_value(LinkEvent {
            provider: Provider::Discord,
            flow: Flow::Code,
            state: LinkEventState::Failed {
                code: "account_access_denied".into(),
                message: "declined".into(),
            },
        })
        .expect("serialises");
        assert_eq!(
            failed,
            serde_json::json!({
                "provider": "discord", "flow": "code", "state": "failed",
                "code": "account_access_denied", "message": "declined",
            })
        );
        let pending = serde_json::to_value(LinkEvent {
            provider: Provider::Twitch,
            flow: Flow::Device,
            state: LinkProgress::Pending {
                provider: Provider::Twitch,
                verification_uri: "https://example.test/activate".into(),
                user_code: "ABCD".into(),
                expires_in: 1800,
                interval: 5,
            }
            .into(),
        })
        .expect("serialises");
        assert_eq!(
            pending,
            serde_json::json!({
                "provider": "twitch", "flow": "device", "state": "pending",
                "verification_uri": "https://example.test/activate", "user_code": "ABCD",
                "expires_in": 1800, "interval": 5,
            })
        );
    }
}
