// The Webhooks page: reveal the TradingView URL token and secrets (an audited call), copy them,
// rotate one (the new value is shown once), custom endpoints, and the recent deliveries.
'use strict';

(() => {
  const S = window.Stagehand;
  const { $ } = S;
  const HIDDEN = '••••••••••••';
  const WORDS = { token: 'URL token', hmac: 'HMAC secret', passphrase: 'passphrase' };
  const FIELDS = { token: 'secret-token', hmac: 'secret-hmac', passphrase: 'secret-passphrase' };
  let revealed = false;

  function setField(id, value, hidden) {
    const field = $(id);
    if (!field) return;
    field.value = value;
    field.dataset.hidden = hidden ? '1' : '0';
    const copy = document.querySelector(`[data-copy-from="${id}"]`);
    if (copy) copy.disabled = hidden || value === '';
  }

  function urlField(id, token) {
    const field = $(id);
    if (!field) return;
    setField(id, `${field.dataset.base}?token=${token === null ? HIDDEN : encodeURIComponent(token)}`, token === null);
  }

  function hide() {
    revealed = false;
    urlField('tv-url', null);
    urlField('tv-relay-url', null);
    for (const id of Object.values(FIELDS)) {
      const field = $(id);
      if (field) setField(id, field.value === '' ? '' : HIDDEN, true);
    }
    const reveal = $('reveal');
    reveal.textContent = 'Reveal secrets';
    reveal.setAttribute('aria-pressed', 'false');
  }

  async function reveal(button) {
    await S.busy(button, 'Revealing…', async () => {
      const secrets = await S.api('GET', '/api/webhooks/tradingview/secrets');
      revealed = true;
      urlField('tv-url', secrets.token);
      urlField('tv-relay-url', secrets.token);
      setField(FIELDS.token, secrets.token || '', false);
      setField(FIELDS.hmac, secrets.hmacSecret || '', false);
      setField(FIELDS.passphrase, secrets.passphrase || '', false);
      button.textContent = 'Hide secrets';
      button.setAttribute('aria-pressed', 'true');
      S.say('Secrets revealed. Hide them again before sharing your screen.');
    });
  }

  function showOnce(areaId, valueId, whatId, what, value) {
    $(whatId).textContent = what;
    $(valueId).value = value;
    $(areaId).hidden = false;
    $(valueId).focus();
    $(valueId).select();
  }

  async function rotate(which, button) {
    const what = WORDS[which];
    const warning = which === 'token'
      ? 'Replace the URL token? Every TradingView alert using the old URL is refused from now on; paste the new URL into each.'
      : `Make a new ${what}? Senders using the old one are refused from now on.`;
    if (!(await S.confirm(warning, `New ${what}`))) { S.say('Nothing changed.'); return; }
    await S.busy(button, `Making a new ${what}…`, async () => {
      const made = await S.api('POST', '/api/webhooks/tradingview/rotate', { which });
      await S.refresh(['credentials']);
      hide();
      showOnce('rotated', 'rotated-value', 'rotated-what', what, made.value);
      S.say(`New ${what} made. Copy it now: it is shown only this once.`);
    });
  }

  async function clear(which, button) {
    const what = WORDS[which];
    if (!(await S.confirm(`Remove the ${what}? Senders no longer need (or can use) it.`, 'Remove'))) return;
    await S.busy(button, `Removing the ${what}…`, async () => {
      await S.api('DELETE', `/api/webhooks/tradingview/secrets/${which}`);
      await S.refresh(['credentials']);
      hide();
      S.say(`The ${what} is removed.`);
    });
  }

  // ---- custom endpoints ----

  const custom = $('custom-create');
  custom.addEventListener('submit', (event) => {
    event.preventDefault();
    const body = {
      name: $('custom-name').value.trim(),
      title: $('custom-title').value.trim(),
      message: $('custom-message').value.trim(),
    };
    S.busy(custom.querySelector('button[type="submit"]'), 'Creating the webhook…', async () => {
      const made = await S.api('POST', '/api/webhooks/custom', body);
      custom.reset();
      await S.refresh(['custom']);
      showOnce('custom-secret', 'custom-secret-value', 'custom-secret-for', `“${made.name}”`, made.secret);
      S.say(`Webhook “${made.name}” made. Copy its signing secret now: it is shown only this once.`);
    });
  });

  async function customAction(row, button) {
    const name = row.dataset.name;
    if (button.dataset.action === 'delete-custom') {
      if (!(await S.confirm(`Delete the webhook “${name}”? Anything posting to it is refused from now on.`, 'Delete webhook'))) return;
      await S.busy(button, `Deleting “${name}”…`, async () => {
        await S.api('DELETE', `/api/webhooks/custom/${encodeURIComponent(name)}`);
        await S.refresh(['custom']);
        S.say(`Deleted “${name}”.`);
      });
    } else {
      if (!(await S.confirm(`Make a new signing secret for “${name}”? The sender must use the new one from now on.`, 'New secret'))) return;
      await S.busy(button, 'Making a new secret…', async () => {
        const made = await S.api('POST', `/api/webhooks/custom/${encodeURIComponent(name)}/rotate`);
        showOnce('custom-secret', 'custom-secret-value', 'custom-secret-for', `“${name}”`, made.secret);
        S.say(`New signing secret for “${name}”. Copy it now: it is shown only this once.`);
      });
    }
  }

  document.addEventListener('click', (event) => {
    const button = event.target.closest('[data-action]');
    if (!button) return;
    switch (button.dataset.action) {
      case 'reveal': if (revealed) { hide(); S.say('Secrets hidden.'); } else reveal(button); break;
      case 'rotate': rotate(button.dataset.which, button); break;
      case 'clear': clear(button.dataset.which, button); break;
      case 'delete-custom':
      case 'rotate-custom': customAction(button.closest('.custom-row'), button); break;
      default: break;
    }
  });

  // New deliveries are announced (`webhook.deliveries`, one event per commit); only that part
  // is fetched again, so revealed secrets stay as they are. A fetch when the event socket
  // opens and a slow poll cover events missed while it was closed.
  S.events((event) => {
    if (event.type === 'webhook.deliveries') S.refresh(['deliveries']);
  }, (open) => { if (open) S.refresh(['deliveries']); });
  setInterval(() => S.refresh(['deliveries']), 60 * 1000);
})();
