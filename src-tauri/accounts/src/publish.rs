//! Telling the UI how accounts stand: the `account.link` events of a sign-in and the
//! `account.status` events of a link (with a notice in plain words when the streamer has to
//! act), and the status changes that publish them.

use rusqlite::params;

use crate::{
    AccountError, AccountLink, AccountStatusEvent, Accounts, Flow, LINK_COLUMNS, LinkEvent,
    LinkEventState, LinkProgress, LinkStatus, Provider, row_to_link,
};

impl Accounts {
    /// Publishes `account.link`: how a sign-in stands (`pending` with the code to show,
    /// `linked` with the account, or `failed` with the error's stable code and message).
    pub(crate) fn publish_link(
        &self,
        provider: Provider,
        flow: Flow,
        progress: Result<LinkProgress, &AccountError>,
    ) {
        let state = match progress {
            Ok(progress) => LinkEventState::from(progress),
            Err(e) => LinkEventState::Failed {
                code: e.code().to_owned(),
                message: e.to_string(),
            },
        };
        let event = LinkEvent {
            provider,
            flow,
            state,
        };
        self.events().publish(
            "account.link",
            serde_json::to_value(event).unwrap_or_default(),
        );
    }

    /// Publishes `account.status` with the link as the UI shows it, and a notice in plain words
    /// when the streamer has to act.
    pub(crate) fn publish_status(&self, link: &AccountLink, notice: Option<&str>) {
        let event = AccountStatusEvent::Link {
            link: Box::new(link.clone()),
            notice: notice.map(str::to_owned),
        };
        self.events().publish(
            "account.status",
            serde_json::to_value(event).unwrap_or_default(),
        );
    }

    /// Sets a link's status and publishes it (with a notice for `needs_relogin`).
    pub(crate) async fn set_status(
        &self,
        provider: Provider,
        status: LinkStatus,
        reason: Option<String>,
    ) -> Result<(), AccountError> {
        let link = self
            .store()
            .call(move |conn| {
                conn.execute(
                    "UPDATE account_links SET status = ?2, status_reason = ?3 WHERE provider = ?1",
                    params![provider.as_str(), status.as_str(), reason],
                )?;
                Ok(conn
                    .query_row(
                        &format!("SELECT {LINK_COLUMNS} FROM account_links WHERE provider = ?1"),
                        [provider.as_str()],
                        row_to_link,
                    )
                    .ok())
            })
            .await?;
        if let Some(link) = link {
            let notice = (status == LinkStatus::NeedsRelogin).then(|| {
                format!(
                    "Your {} account {} needs you to sign in again: {}",
                    provider.title(),
                    link.account_name,
                    link.status_reason
                        .as_deref()
                        .unwrap_or("the link stopped working")
                )
            });
            self.publish_status(&link, notice.as_deref());
        }
        Ok(())
    }
}
