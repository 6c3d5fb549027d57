// The Moderators page: make a one-time link (shown once), list the sessions with access, revoke.
// The list follows the engine: a link being opened or a session revoked is an audit event.
'use strict';

(() => {
  const S = window.Stagehand;
  const { $ } = S;
  const form = $('invite');

  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const label = $('mod-label').value.trim();
    const scopes = [...form.querySelectorAll('input[name="scopes"]:checked')].map((c) => c.value);
    if (!label) { S.problem({ code: 'invalid_fields', message: 'Say who the link is for first' }); $('mod-label').focus(); return; }
    if (scopes.length === 0) {
      S.problem({ code: 'invalid_fields', message: 'Choose at least one thing they may do' });
      form.querySelector('input[name="scopes"]').focus();
      return;
    }
    const ttl = Number($('mod-ttl').value);
    const button = form.querySelector('button[type="submit"]');
    S.busy(button, 'Creating the link…', async () => {
      const made = await S.api('POST', '/api/moderator-keys/generate', { label, scopes, ttl_seconds: ttl });
      $('invite-for').textContent = label;
      $('invite-link').value = made.link;
      const expires = $('invite-expires');
      expires.dateTime = made.expires_at;
      expires.textContent = S.localTime(made.expires_at);
      $('invite-result').hidden = false;
      $('mod-label').value = '';
      $('invite-link').focus();
      $('invite-link').select();
      S.say(`Link for ${label} ready: copy it and send it to them. It is shown only now.`);
    });
  });

  document.addEventListener('click', async (event) => {
    const button = event.target.closest('.session-row [data-action="revoke"]');
    if (!button) return;
    const row = button.closest('.session-row');
    const who = row.querySelector('h3').textContent;
    const ok = await S.confirm(`Revoke ${who}'s access? Their panel closes at once.`, 'Revoke access');
    if (!ok) { S.say('Nothing changed.'); return; }
    S.busy(button, `Revoking ${who}'s access…`, async () => {
      await S.api('DELETE', `/api/moderator-sessions/${encodeURIComponent(row.dataset.sessionId)}`);
      await S.refresh();
      S.say(`${who} no longer has access.`);
      $('sessions-h').setAttribute('tabindex', '-1');
      $('sessions-h').focus();
    });
  });

  S.events((event) => {
    const action = event.type === 'audit.recorded' && event.data ? String(event.data.action || '') : '';
    if (action === 'moderator.key.consume' || action === 'moderator.session.revoke') S.refresh(['sessions']);
  }, (open) => { if (open) S.refresh(['sessions']); });
  // Sessions also end by running out of time, which no event announces.
  setInterval(() => S.refresh(['sessions']), 60 * 1000);
})();
