//! Where configuration comes from and how its layers combine: the embedded defaults, then the
//! config file, then `STAGEHAND_*` variables (and their short aliases), then `--port`. Every
//! key of a layer must exist in the defaults, and a value must have the default's type, so a
//! typo is reported rather than ignored.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::{Config, ConfigError, DEFAULTS_TOML};

/// Environment variables read by the engine that are not config keys.
const KNOWN_EXTRA_ENV: &[&str] = &[
    "STAGEHAND_DATA_DIR",
    "STAGEHAND_CONFIG",
    "STAGEHAND_SECRETS_KEY",
    "STAGEHAND_OBS_PASSWORD",
    "STAGEHAND_TRADINGVIEW_HMAC_SECRET",
    "STAGEHAND_RELAY_SECRET",
    "STAGEHAND_TWITCH_CLIENT_SECRET",
    "STAGEHAND_GOOGLE_CLIENT_SECRET",
    "STAGEHAND_LOG",
    // Read by `scripts/run` (run headless even with a display), passed on to the engine.
    "STAGEHAND_HEADLESS",
];

/// Short names accepted for the keys people set most (some come from the documents Stagehand
/// was designed from, hence the unprefixed ones).
const ENV_ALIASES: &[(&str, &str)] = &[
    ("STAGEHAND_PORT", "server.port"),
    ("STAGEHAND_LAN_ACCESS", "server.lan_access"),
    ("STAGEHAND_SECRETS", "secrets.backend"),
    ("STAGEHAND_RELAY_URL", "relay.url"),
    ("STAGEHAND_RELAY_TUNNEL_ID", "relay.tunnel_id"),
    ("STAGEHAND_ENABLE_STRICT_ORIGIN", "security.strict_origin"),
    ("ENABLE_STRICT_ORIGIN", "security.strict_origin"),
    ("STAGEHAND_ALLOWED_ORIGINS", "security.allowed_origins"),
    ("ALLOWED_ORIGINS", "security.allowed_origins"),
    ("MODERATOR_KEY_TTL_SECONDS", "moderators.key_ttl_seconds"),
    (
        "MODERATOR_SESSION_TTL_SECONDS",
        "moderators.session_ttl_seconds",
    ),
];

/// Where configuration comes from. Built by the binary from its arguments and the process
/// environment; built by tests from whatever they like. `Debug` shows variable names only: the
/// environment holds keys (`STAGEHAND_SECRETS_KEY`).
#[derive(Clone, Default)]
pub struct ConfigSources {
    /// `--data-dir`; when given, `<data dir>/config.toml` is the config file (portable mode).
    pub data_dir: Option<PathBuf>,
    /// `--config`: an explicit config file, which must exist.
    pub config_file: Option<PathBuf>,
    /// `--port`, which beats every other source.
    pub port: Option<u16>,
    /// Environment variables (name, value).
    pub env: Vec<(String, String)>,
}

impl std::fmt::Debug for ConfigSources {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConfigSources")
            .field("data_dir", &self.data_dir)
            .field("config_file", &self.config_file)
            .field("port", &self.port)
            .field(
                "env",
                &self.env.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl ConfigSources {
    /// Sources with the current process environment.
    pub fn from_process_env() -> Self {
        Self {
            env: std::env::vars().collect(),
            ..Self::default()
        }
    }

    fn env_var(&self, name: &str) -> Option<&str> {
        self.env
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

impl Config {
    /// Loads configuration from the given sources.
    pub fn load(sources: &ConfigSources) -> Result<Self, ConfigError> {
        let defaults: toml::Table = toml::from_str(DEFAULTS_TOML)
            .map_err(|e| ConfigError::Invalid(format!("embedded defaults: {e}")))?;
        let mut merged = defaults.clone();
        let mut warnings = Vec::new();

        let data_dir = match (&sources.data_dir, sources.env_var("STAGEHAND_DATA_DIR")) {
            (Some(dir), _) => Some(dir.clone()),
            (None, Some(dir)) if !dir.is_empty() => Some(PathBuf::from(dir)),
            _ => None,
        };
        let explicit_file = sources.config_file.clone().or_else(|| {
            sources
                .env_var("STAGEHAND_CONFIG")
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        });
        let (config_file, must_exist) = match (&explicit_file, &data_dir) {
            (Some(file), _) => (Some(file.clone()), true),
            (None, Some(dir)) => (Some(dir.join("config.toml")), false),
            (None, None) => (os_dirs().map(|d| d.config_dir().join("config.toml")), false),
        };
        let mut file_read = None;
        if let Some(path) = &config_file {
            match std::fs::read_to_string(path) {
                Ok(text) => {
                    let table: toml::Table =
                        toml::from_str(&text).map_err(|e| ConfigError::Parse {
                            path: path.clone(),
                            message: e.to_string(),
                        })?;
                    merge_known(&mut merged, &defaults, table, "", &mut warnings, path);
                    file_read = Some(path.clone());
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound && !must_exist => {}
                Err(source) => {
                    return Err(ConfigError::Read {
                        path: path.clone(),
                        source,
                    });
                }
            }
        }

        apply_env(&mut merged, &defaults, sources, &mut warnings)?;
        if let Some(port) = sources.port {
            set_path(
                &mut merged,
                "server.port",
                toml::Value::Integer(i64::from(port)),
            );
        }

        let mut config: Config = toml::Value::Table(merged)
            .try_into()
            .map_err(|e: toml::de::Error| ConfigError::Invalid(e.message().to_owned()))?;
        config.data_dir = match data_dir {
            Some(dir) => dir,
            None => os_dirs()
                .map(|d| d.data_dir().to_path_buf())
                .ok_or(ConfigError::NoDataDir)?,
        };
        config.config_file = file_read;
        config.warnings = warnings;
        config.secrets_key = sources
            .env_var("STAGEHAND_SECRETS_KEY")
            .filter(|v| !v.is_empty())
            .map(crate::Secret::new);
        config.obs_password = sources
            .env_var("STAGEHAND_OBS_PASSWORD")
            .filter(|v| !v.is_empty())
            .map(crate::Secret::new);
        config.tradingview_hmac_secret = sources
            .env_var("STAGEHAND_TRADINGVIEW_HMAC_SECRET")
            .filter(|v| !v.is_empty())
            .map(crate::Secret::new);
        config.relay_secret = sources
            .env_var("STAGEHAND_RELAY_SECRET")
            .filter(|v| !v.is_empty())
            .map(crate::Secret::new);
        config.twitch_client_secret = sources
            .env_var("STAGEHAND_TWITCH_CLIENT_SECRET")
            .filter(|v| !v.is_empty())
            .map(crate::Secret::new);
        config.google_client_secret = sources
            .env_var("STAGEHAND_GOOGLE_CLIENT_SECRET")
            .filter(|v| !v.is_empty())
            .map(crate::Secret::new);
        config.validate()?;
        Ok(config)
    }
}

fn os_dirs() -> Option<directories::ProjectDirs> {
    directories::ProjectDirs::from("dev", "Stagehand", "stagehand")
}

/// Copies the keys of `from` that exist in `defaults` into `into`; reports the rest.
fn merge_known(
    into: &mut toml::Table,
    defaults: &toml::Table,
    from: toml::Table,
    prefix: &str,
    warnings: &mut Vec<String>,
    file: &Path,
) {
    for (key, value) in from {
        let path = if prefix.is_empty() {
            key.clone()
        } else {
            format!("{prefix}.{key}")
        };
        match (defaults.get(&key), value) {
            (Some(toml::Value::Table(def)), toml::Value::Table(sub)) => {
                if let Some(toml::Value::Table(target)) = into.get_mut(&key) {
                    merge_known(target, def, sub, &path, warnings, file);
                }
            }
            (Some(_), value) => {
                into.insert(key, value);
            }
            (None, _) => warnings.push(format!(
                "unknown key `{path}` in {} (ignored)",
                file.display()
            )),
        }
    }
}

/// Leaf keys of the defaults, as dotted paths.
fn leaf_paths(table: &toml::Table, prefix: &str, out: &mut Vec<String>) {
    for (key, value) in table {
        let path = if prefix.is_empty() {
            key.clone()
        } else {
            format!("{prefix}.{key}")
        };
        match value {
            toml::Value::Table(sub) => leaf_paths(sub, &path, out),
            _ => out.push(path),
        }
    }
}

fn get_path<'a>(table: &'a toml::Table, path: &str) -> Option<&'a toml::Value> {
    let mut parts = path.split('.');
    let mut value = table.get(parts.next()?)?;
    for part in parts {
        value = value.as_table()?.get(part)?;
    }
    Some(value)
}

fn set_path(table: &mut toml::Table, path: &str, value: toml::Value) {
    let mut parts: Vec<&str> = path.split('.').collect();
    let Some(last) = parts.pop() else { return };
    let mut current = table;
    for part in parts {
        let entry = current
            .entry(part.to_owned())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        match entry {
            toml::Value::Table(t) => current = t,
            _ => return,
        }
    }
    current.insert(last.to_owned(), value);
}

/// `server.port` → `STAGEHAND_SERVER_PORT`.
fn env_name(path: &str) -> String {
    format!("STAGEHAND_{}", path.replace('.', "_").to_uppercase())
}

fn apply_env(
    merged: &mut toml::Table,
    defaults: &toml::Table,
    sources: &ConfigSources,
    warnings: &mut Vec<String>,
) -> Result<(), ConfigError> {
    let mut paths = Vec::new();
    leaf_paths(defaults, "", &mut paths);
    let mut by_var: BTreeMap<String, String> = paths
        .iter()
        .filter(|p| p.as_str() != "version")
        .map(|p| (env_name(p), p.clone()))
        .collect();
    for (var, path) in ENV_ALIASES {
        by_var.insert((*var).to_owned(), (*path).to_owned());
    }
    for (var, raw) in &sources.env {
        let Some(path) = by_var.get(var) else {
            if var.starts_with("STAGEHAND_") && !KNOWN_EXTRA_ENV.contains(&var.as_str()) {
                warnings.push(format!("unknown environment variable {var} (ignored)"));
            }
            continue;
        };
        let Some(default) = get_path(defaults, path) else {
            continue;
        };
        let value = parse_env_value(default, raw).ok_or_else(|| ConfigError::EnvValue {
            var: var.clone(),
            key: path.clone(),
            expected: kind_name(default),
        })?;
        set_path(merged, path, value);
    }
    Ok(())
}

fn kind_name(value: &toml::Value) -> &'static str {
    match value {
        toml::Value::Integer(_) => "a whole number",
        toml::Value::Boolean(_) => "true or false",
        toml::Value::Array(_) => "a comma-separated list",
        _ => "a string",
    }
}

fn parse_env_value(default: &toml::Value, raw: &str) -> Option<toml::Value> {
    let raw = raw.trim();
    Some(match default {
        toml::Value::Integer(_) => toml::Value::Integer(raw.parse().ok()?),
        toml::Value::Boolean(_) => toml::Value::Boolean(match raw.to_ascii_lowercase().as_str() {
            "1" | "true" | "yes" | "on" => true,
            "0" | "false" | "no" | "off" => false,
            _ => return None,
        }),
        toml::Value::Array(_) => toml::Value::Array(
            raw.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| toml::Value::String(s.to_owned()))
                .collect(),
        ),
        _ => toml::Value::String(raw.to_owned()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::SecretBackendKind;

    fn sources(dir: &Path, env: &[(&str, &str)]) -> ConfigSources {
        ConfigSources {
            data_dir: Some(dir.to_path_buf()),
            env: env
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            ..ConfigSources::default()
        }
    }

    #[test]
    fn defaults_load_without_any_file() {
        let dir = tempfile::tempdir().expect("temp dir");
        let config = Config::load(&sources(dir.path(), &[])).expect("defaults are valid");
        assert_eq!(config.server.port, 7420, "the documented default port");
        assert_eq!(config.secrets.backend, SecretBackendKind::Keychain);
        assert!(config.warnings.is_empty(), "{:?}", config.warnings);
    }

    #[test]
    fn file_then_env_then_flag_override_in_that_order() {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(
            dir.path().join("config.toml"),
            "[server]\nport = 8000\nallowed_hosts = [\"stream.lan\"]\n[security]\nstrict_origin = true\n",
        )
        .expect("write config");
        let mut src = sources(
            dir.path(),
            &[
                ("STAGEHAND_SERVER_PORT", "8100"),
                ("ALLOWED_ORIGINS", "http://a.test, http://b.test"),
                ("ENABLE_STRICT_ORIGIN", "false"),
            ],
        );
        let config = Config::load(&src).expect("valid");
        assert_eq!(config.server.port, 8100, "env beats the file");
        assert_eq!(config.server.allowed_hosts, vec!["stream.lan".to_owned()]);
        assert!(!config.security.strict_origin, "alias env beats the file");
        assert_eq!(
            config.security.allowed_origins,
            vec!["http://a.test".to_owned(), "http://b.test".to_owned()]
        );
        src.port = Some(9000);
        assert_eq!(Config::load(&src).expect("valid").server.port, 9000);
    }

    #[test]
    fn unknown_keys_and_variables_are_reported() {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(
            dir.path().join("config.toml"),
            "colour = \"red\"\n[server]\nprot = 1\n",
        )
        .expect("write config");
        let config = Config::load(&sources(
            dir.path(),
            &[("STAGEHAND_POTR", "1"), ("STAGEHAND_HEADLESS", "1")],
        ))
        .expect("unknown keys warn, they do not fail");
        let all = config.warnings.join("\n");
        assert!(
            !all.contains("STAGEHAND_HEADLESS"),
            "scripts/run's own switch is not an unknown setting: {all}"
        );
        assert!(all.contains("`colour`"), "{all}");
        assert!(all.contains("`server.prot`"), "{all}");
        assert!(all.contains("STAGEHAND_POTR"), "{all}");
        assert_eq!(config.server.port, 7420, "a misspelt key changes nothing");
    }

    #[test]
    fn wrong_types_are_errors_that_name_the_key() {
        let dir = tempfile::tempdir().expect("temp dir");
        let err = Config::load(&sources(dir.path(), &[("STAGEHAND_PORT", "lots")]))
            .expect_err("a port must be a number");
        assert!(err.to_string().contains("STAGEHAND_PORT"), "{err}");
        std::fs::write(dir.path().join("config.toml"), "[server]\nport = \"x\"\n")
            .expect("write config");
        let err = Config::load(&sources(dir.path(), &[])).expect_err("wrong type in file");
        assert!(matches!(err, ConfigError::Invalid(_)), "{err}");
        std::fs::write(dir.path().join("config.toml"), "[server\n").expect("write config");
        let err = Config::load(&sources(dir.path(), &[])).expect_err("broken TOML");
        assert!(matches!(err, ConfigError::Parse { .. }), "{err}");
    }

    #[test]
    fn provider_settings_layer_from_env_and_bad_urls_name_their_variable() {
        let dir = tempfile::tempdir().expect("temp dir");
        let config = Config::load(&sources(
            dir.path(),
            &[
                ("STAGEHAND_TWITCH_CLIENT_ID", "abc123"),
                ("STAGEHAND_TWITCH_ID_URL", "http://127.0.0.1:9/"),
                ("STAGEHAND_GOOGLE_TOKEN_URL", "http://127.0.0.1:9/token"),
                ("STAGEHAND_DISCORD_API_URL", "http://127.0.0.1:9/api"),
                ("STAGEHAND_TWITCH_SCOPES", "chat:read, bits:read"),
                ("STAGEHAND_TWITCH_CLIENT_SECRET", "shh"),
            ],
        ))
        .expect("valid");
        assert!(config.warnings.is_empty(), "{:?}", config.warnings);
        assert_eq!(config.twitch.client_id, "abc123");
        assert_eq!(config.twitch.id_url, "http://127.0.0.1:9/");
        assert_eq!(config.twitch.scopes, vec!["chat:read", "bits:read"]);
        assert_eq!(config.google.token_url, "http://127.0.0.1:9/token");
        assert_eq!(config.discord.api_url, "http://127.0.0.1:9/api");
        assert_eq!(
            config.twitch_client_secret.as_ref().map(|s| s.expose()),
            Some("shh")
        );
        let defaults = Config::load(&sources(dir.path(), &[])).expect("valid");
        assert_eq!(defaults.twitch.id_url, "https://id.twitch.tv");
        assert!(defaults.twitch.client_id.is_empty(), "no client id ships");
        let err = Config::load(&sources(
            dir.path(),
            &[("STAGEHAND_GOOGLE_AUTH_URL", "accounts.google.com")],
        ))
        .expect_err("not a URL");
        assert!(
            err.to_string().contains("STAGEHAND_GOOGLE_AUTH_URL"),
            "{err}"
        );
    }

    #[test]
    fn secrets_backend_is_chosen_by_env() {
        let dir = tempfile::tempdir().expect("temp dir");
        let config =
            Config::load(&sources(dir.path(), &[("STAGEHAND_SECRETS", "file")])).expect("valid");
        assert_eq!(config.secrets.backend, SecretBackendKind::File);
        let err = Config::load(&sources(dir.path(), &[("STAGEHAND_SECRETS", "plaintext")]))
            .expect_err("only keychain and file exist");
        assert!(err.to_string().contains("plaintext"), "{err}");
    }
}
