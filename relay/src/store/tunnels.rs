//! Tunnels and their allow lists as stored, and the config version whose every change
//! tells the relay to reload them.

use std::net::IpAddr;

use rusqlite::Connection;

use crate::RelayError;
use crate::tunnel::{SecretDigest, TunnelId};

/// A tunnel as stored.
#[derive(Debug, Clone)]
pub struct TunnelRow {
    /// Row key.
    pub key: i64,
    /// Public id.
    pub id: TunnelId,
    /// Secret digest.
    pub digest: SecretDigest,
    /// Allow lists: (path, addresses).
    pub allowlists: Vec<(String, Vec<IpAddr>)>,
}

pub(super) fn bump_config(c: &Connection) -> Result<(), RelayError> {
    c.execute(
        "UPDATE meta SET config_version = config_version + 1 WHERE id = 1",
        [],
    )?;
    Ok(())
}

/// The counter bumped by every tunnel or allow-list change.
pub fn config_version(c: &Connection) -> Result<i64, RelayError> {
    Ok(
        c.query_row("SELECT config_version FROM meta WHERE id = 1", [], |r| {
            r.get(0)
        })?,
    )
}

/// Every tunnel with its allow lists.
pub fn load_tunnels(c: &Connection) -> Result<Vec<TunnelRow>, RelayError> {
    let mut tunnels = Vec::new();
    let mut stmt = c.prepare("SELECT key, public_id, secret_sha256 FROM tunnels ORDER BY key")?;
    let mut rows = stmt.query([])?;
    while let Some(r) = rows.next()? {
        let key: i64 = r.get(0)?;
        let id: String = r.get(1)?;
        let digest: Vec<u8> = r.get(2)?;
        let (Some(id), Ok(digest)) = (TunnelId::parse(&id), <[u8; 32]>::try_from(digest)) else {
            tracing::warn!(key, "skipping a malformed tunnel row");
            continue;
        };
        tunnels.push(TunnelRow {
            key,
            id,
            digest: SecretDigest(digest),
            allowlists: Vec::new(),
        });
    }
    let mut stmt = c.prepare("SELECT tunnel, path, ip FROM allowlists ORDER BY tunnel, path")?;
    let mut rows = stmt.query([])?;
    while let Some(r) = rows.next()? {
        let key: i64 = r.get(0)?;
        let path: String = r.get(1)?;
        let ip: String = r.get(2)?;
        let (Ok(pos), Ok(ip)) = (
            tunnels.binary_search_by_key(&key, |t| t.key),
            ip.parse::<IpAddr>(),
        ) else {
            continue;
        };
        let lists = &mut tunnels[pos].allowlists;
        match lists.iter_mut().find(|(p, _)| *p == path) {
            Some((_, ips)) => ips.push(ip),
            None => lists.push((path, vec![ip])),
        }
    }
    Ok(tunnels)
}
