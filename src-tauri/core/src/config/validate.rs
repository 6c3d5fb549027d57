//! The checks a loaded configuration must pass before anything uses it: the version, limits
//! and durations in range, the relay URL a web address, every provider URL well formed. Each
//! error names the key at fault.

use super::{Config, ConfigError};

impl Config {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if self.version != 1 {
            return Err(ConfigError::Invalid(format!(
                "config version {} is not supported (this build reads version 1)",
                self.version
            )));
        }
        if self.security.json_body_limit_bytes < 1024 {
            return Err(ConfigError::Invalid(
                "security.json_body_limit_bytes must be at least 1024".into(),
            ));
        }
        if !(1..=65_536).contains(&self.limits.overlay_page_queue) {
            return Err(ConfigError::Invalid(
                "limits.overlay_page_queue must be between 1 and 65536".into(),
            ));
        }
        if !(60..=31_536_000).contains(&self.security.session_ttl_seconds) {
            return Err(ConfigError::Invalid(
                "security.session_ttl_seconds must be between 60 and 31536000 (a year)".into(),
            ));
        }
        let relay_url = self.relay.url.trim();
        let web_url = relay_url.starts_with("http://") || relay_url.starts_with("https://");
        if !relay_url.is_empty() && !web_url {
            return Err(ConfigError::Invalid(
                "relay.url must start with http:// or https://".into(),
            ));
        }
        if !(100..=60_000).contains(&self.obs.health_interval_ms) {
            return Err(ConfigError::Invalid(
                "obs.health_interval_ms must be between 100 and 60000".into(),
            ));
        }
        if !(60..=604_800).contains(&self.moderators.key_ttl_seconds)
            || !(60..=2_592_000).contains(&self.moderators.session_ttl_seconds)
            || self.moderators.consume_attempts_per_minute == 0
        {
            return Err(ConfigError::Invalid(
                "moderators: key_ttl_seconds 60..=604800, session_ttl_seconds 60..=2592000, \
                 consume_attempts_per_minute at least 1"
                    .into(),
            ));
        }
        let m = &self.moderators;
        if [
            m.alerts_per_minute,
            m.tts_per_minute,
            m.obs_scenes_per_minute,
            m.scene_saves_per_minute,
        ]
        .contains(&0)
        {
            return Err(ConfigError::Invalid(
                "moderators: alerts_per_minute, tts_per_minute, obs_scenes_per_minute and \
                 scene_saves_per_minute must be at least 1"
                    .into(),
            ));
        }
        if self.security.login_attempts_per_minute == 0 {
            return Err(ConfigError::Invalid(
                "security.login_attempts_per_minute must be at least 1".into(),
            ));
        }
        if !(1024..=4 << 30).contains(&self.media.max_upload_bytes) {
            return Err(ConfigError::Invalid(
                "media.max_upload_bytes must be between 1024 and 4294967296 (4 GiB)".into(),
            ));
        }
        if !(1..=600_000).contains(&self.tts.render_timeout_ms) {
            return Err(ConfigError::Invalid(
                "tts.render_timeout_ms must be between 1 and 600000 (10 minutes)".into(),
            ));
        }
        if !(72..=8760).contains(&self.webhooks.idempotency_hours) {
            return Err(ConfigError::Invalid(
                "webhooks.idempotency_hours must be between 72 and 8760 (a year)".into(),
            ));
        }
        if self.webhooks.reannounce_window_seconds > 86_400 {
            return Err(ConfigError::Invalid(
                "webhooks.reannounce_window_seconds must be at most 86400 (a day)".into(),
            ));
        }
        if !(1..=36_500).contains(&self.logging.audit_retention_days) {
            return Err(ConfigError::Invalid(
                "logging.audit_retention_days must be between 1 and 36500".into(),
            ));
        }
        if self.tts.cache_max_files == 0 || self.tts.cache_max_bytes == 0 {
            return Err(ConfigError::Invalid(
                "tts.cache_max_files and tts.cache_max_bytes must be at least 1".into(),
            ));
        }
        if !(30..=86_400).contains(&self.accounts.refresh_lead_seconds) {
            return Err(ConfigError::Invalid(
                "accounts.refresh_lead_seconds must be between 30 and 86400 (a day)".into(),
            ));
        }
        for (key, url) in [
            ("twitch.id_url", &self.twitch.id_url),
            ("twitch.api_url", &self.twitch.api_url),
            ("google.auth_url", &self.google.auth_url),
            ("google.token_url", &self.google.token_url),
            ("google.revoke_url", &self.google.revoke_url),
            ("google.youtube_api_url", &self.google.youtube_api_url),
            ("discord.api_url", &self.discord.api_url),
        ] {
            let ok = url::Url::parse(url.trim())
                .is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.has_host());
            if !ok {
                return Err(ConfigError::Invalid(format!(
                    "{key} must be an http:// or https:// URL (STAGEHAND_{})",
                    key.replace('.', "_").to_uppercase()
                )));
            }
        }
        for (key, id) in [
            ("twitch.client_id", &self.twitch.client_id),
            ("google.client_id", &self.google.client_id),
            ("discord.client_id", &self.discord.client_id),
        ] {
            if id.len() > 200 || id.chars().any(|c| c.is_whitespace() || c.is_control()) {
                return Err(ConfigError::Invalid(format!(
                    "{key} must be the client id exactly as the developer console shows it"
                )));
            }
        }
        Ok(())
    }
}
