//! Custom RTMP destinations: a server URL and a stream key, for platforms Stagehand does not
//! link with OAuth. The stream key is a credential (anyone holding it can stream as the
//! streamer), so it lives in the secret store (`rtmp-key-{id}`) and is only ever shown as
//! `rtmp://host/app/****`.

use rusqlite::{OptionalExtension, params};
use serde::Serialize;

use super::AccountError;
use crate::audit::{AuditEntry, Outcome};
use crate::clock::rfc3339;
use crate::random::token;
use crate::{Engine, EngineError, Secret};

/// Most destinations a streamer can keep.
const MAX_DESTINATIONS: i64 = 50;

/// A destination as listed: the key masked.
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

fn row_to_destination(r: &rusqlite::Row<'_>) -> rusqlite::Result<Destination> {
    let server_url: String = r.get(2)?;
    Ok(Destination {
        id: r.get(0)?,
        name: r.get(1)?,
        masked_url: masked(&server_url),
        server_url,
        created_at: rfc3339(r.get(3)?),
    })
}

fn masked(server_url: &str) -> String {
    format!("{}/****", server_url.trim_end_matches('/'))
}

fn key_secret(id: &str) -> String {
    format!("rtmp-key-{id}")
}

/// Checks a server URL (`rtmp://` or `rtmps://`, a host, no credentials, query or fragment)
/// and returns it without a trailing slash.
fn server_url(url: &str) -> Result<String, AccountError> {
    let invalid = |why: &str| {
        AccountError::Invalid(format!(
            "serverUrl {why}: give the RTMP server URL without the stream key, e.g. \
             rtmp://live.example.com/app"
        ))
    };
    let trimmed = url.trim().trim_end_matches('/');
    if trimmed.len() > 500 {
        return Err(invalid("is too long"));
    }
    let parsed = reqwest::Url::parse(trimmed).map_err(|_| invalid("is not a URL"))?;
    if !matches!(parsed.scheme(), "rtmp" | "rtmps") {
        return Err(invalid("must start with rtmp:// or rtmps://"));
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(invalid("has no host"));
    }
    if !parsed.username().is_empty()
        || parsed.password().is_some()
        || parsed.query().is_some()
        || parsed.fragment().is_some()
    {
        return Err(invalid("must not carry credentials, a query or a fragment"));
    }
    Ok(trimmed.to_owned())
}

impl Engine {
    /// Adds a destination: the key into the secret store, the rest into SQLite. Audited.
    pub async fn destination_add(
        &self,
        name: &str,
        url: &str,
        stream_key: Secret,
    ) -> Result<Destination, EngineError> {
        let name = name.trim().to_owned();
        if name.is_empty() || name.chars().count() > 64 {
            return Err(AccountError::Invalid("name must be 1-64 characters".into()).into());
        }
        let server_url = server_url(url)?;
        let key = stream_key.expose().trim();
        if key.is_empty()
            || key.len() > 512
            || key.chars().any(|c| c.is_whitespace() || c.is_control())
        {
            return Err(AccountError::Invalid(
                "streamKey must be 1-512 characters without spaces".into(),
            )
            .into());
        }
        let id = format!("dst_{}", token(9)?);
        let (n, u) = (name.clone(), server_url.clone());
        let taken = self
            .store()
            .call(move |conn| {
                let count: i64 =
                    conn.query_row("SELECT COUNT(*) FROM stream_destinations", [], |r| r.get(0))?;
                let exists: bool = conn.query_row(
                    "SELECT EXISTS (SELECT 1 FROM stream_destinations WHERE name = ?1)",
                    [&n],
                    |r| r.get(0),
                )?;
                Ok((count, exists))
            })
            .await?;
        if taken.1 {
            return Err(AccountError::DestinationExists.into());
        }
        if taken.0 >= MAX_DESTINATIONS {
            return Err(AccountError::Invalid(format!(
                "you already have {MAX_DESTINATIONS} destinations; delete one first"
            ))
            .into());
        }
        // The key first: a row without its key would list a destination that cannot stream.
        self.secrets()
            .set(&key_secret(&id), Secret::new(key))
            .await?;
        let now = self.now_ms();
        let (row_id, n) = (id.clone(), name.clone());
        let inserted = self
            .store()
            .call(move |conn| {
                Ok(conn.execute(
                    "INSERT INTO stream_destinations (id, name, server_url, created_ms)
                     VALUES (?1, ?2, ?3, ?4) ON CONFLICT (name) DO NOTHING",
                    params![row_id, n, u, now],
                )? == 1)
            })
            .await?;
        if !inserted {
            // Another request took the name in between.
            self.secrets().delete(&key_secret(&id)).await?;
            return Err(AccountError::DestinationExists.into());
        }
        self.audit()
            .record(
                AuditEntry::new("streamer", "destination.add", Outcome::Ok)
                    .target(id.clone())
                    .detail(serde_json::json!({ "name": name, "serverUrl": server_url })),
            )
            .await?;
        Ok(Destination {
            masked_url: masked(&server_url),
            id,
            name,
            server_url,
            created_at: rfc3339(now),
        })
    }

    /// Every destination, keys masked.
    pub async fn destinations_list(&self) -> Result<Vec<Destination>, EngineError> {
        Ok(self
            .store()
            .call(|conn| {
                let mut stmt = conn.prepare(
                    "SELECT id, name, server_url, created_ms FROM stream_destinations
                     ORDER BY created_ms, id",
                )?;
                let rows = stmt.query_map([], row_to_destination)?;
                Ok(rows.collect::<Result<Vec<_>, _>>()?)
            })
            .await?)
    }

    /// Deletes a destination and its key. Audited.
    pub async fn destination_delete(&self, id: &str) -> Result<(), EngineError> {
        let row_id = id.to_owned();
        let found = self
            .store()
            .call(move |conn| {
                Ok(conn
                    .query_row(
                        "SELECT id FROM stream_destinations WHERE id = ?1",
                        [&row_id],
                        |r| r.get::<_, String>(0),
                    )
                    .optional()?)
            })
            .await?
            .ok_or(AccountError::DestinationNotFound)?;
        self.secrets().delete(&key_secret(&found)).await?;
        let row_id = found.clone();
        self.store()
            .call(move |conn| {
                conn.execute("DELETE FROM stream_destinations WHERE id = ?1", [row_id])?;
                Ok(())
            })
            .await?;
        self.audit()
            .record(AuditEntry::new("streamer", "destination.delete", Outcome::Ok).target(found))
            .await?;
        Ok(())
    }

    /// A destination's stream key, for handing to OBS when streaming there.
    pub async fn destination_stream_key(&self, id: &str) -> Result<Secret, EngineError> {
        if !id.starts_with("dst_") || id.len() > 40 {
            return Err(AccountError::DestinationNotFound.into());
        }
        self.secrets()
            .get(&key_secret(id))
            .await?
            .ok_or_else(|| AccountError::DestinationNotFound.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_urls_are_rtmp_without_credentials_and_mask_the_key() {
        assert_eq!(
            server_url(" rtmp://live.example.com/app/ ").ok(),
            Some("rtmp://live.example.com/app".into())
        );
        assert!(server_url("rtmps://a.example:443/live2").is_ok());
        for bad in [
            "https://live.example.com/app",
            "rtmp://user:pw@live.example.com/app",
            "rtmp://live.example.com/app?key=x",
            "rtmp:///app",
            "live.example.com/app",
        ] {
            assert!(server_url(bad).is_err(), "{bad} must be refused");
        }
        assert_eq!(
            masked("rtmp://live.example.com/app"),
            "rtmp://live.example.com/app/****"
        );
    }
}
