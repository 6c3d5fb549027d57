// The Accounts page: link (Twitch's device code shown large; code flows open the platform's page
// in the system browser: the desktop shell routes window.__stagehandOpenExternal, a plain browser
// opens a tab), unlink, renew, and the Discord channel webhook. Progress arrives as account.link
// events; a link's status as account.status.
'use strict';

(() => {
  const S = window.Stagehand;
  const { $ } = S;
  const NAMES = { twitch: 'Twitch', youtube: 'YouTube', discord: 'Discord' };
  const status = { progress: {} };
  window.__stagehandAccounts = status;

  const card = (provider) => document.querySelector(`.account[data-provider="${provider}"]`);
  const said = (provider) => card(provider).querySelector('.row-status');

  function showDevice(provider, uri, code) {
    const box = card(provider).querySelector('.device');
    const link = box.querySelector('.device-url');
    link.href = uri;
    link.textContent = uri.replace(/^https?:\/\//, '');
    box.querySelector('.device-code').textContent = code;
    box.hidden = false;
  }

  async function link(provider, button) {
    const flow = card(provider).dataset.flow;
    const name = NAMES[provider] || provider;
    await S.busy(button, `Starting to link ${name}…`, async () => {
      const started = await S.api('GET', `/api/accounts/${provider}/start?flow=${encodeURIComponent(flow)}`);
      status.progress[provider] = 'pending';
      if (started.flow === 'device') {
        showDevice(provider, started.verification_uri, started.user_code);
        S.openExternal(started.verification_uri);
        said(provider).textContent = `Waiting for you to enter the code on ${name}…`;
      } else {
        const box = card(provider).querySelector('.external');
        box.querySelector('.external-url').href = started.authorization_url;
        box.hidden = false;
        S.openExternal(started.authorization_url);
        said(provider).textContent = `Waiting for you to approve Stagehand on ${name}…`;
      }
    }, said(provider));
  }

  async function unlink(provider, button) {
    const name = NAMES[provider] || provider;
    if (!(await S.confirm(`Unlink ${name}? Stagehand signs out of it there too.`, `Unlink ${name}`))) return;
    await S.busy(button, `Unlinking ${name}…`, async () => {
      const done = await S.api('DELETE', `/api/accounts/${provider}`);
      await S.refresh(['accounts']);
      S.say(done && done.revoked === false
        ? `Unlinked here, but ${name} could not be reached to revoke the sign-in (${done.revokeError || 'no answer'}): remove Stagehand in ${name}'s connected apps too.`
        : `${name} is unlinked.`);
    });
  }

  async function renew(provider, button) {
    const name = NAMES[provider] || provider;
    await S.busy(button, `Renewing the ${name} sign-in…`, async () => {
      await S.api('POST', `/api/accounts/${provider}/refresh`);
      await S.refresh(['accounts']);
      S.say(`${name} sign-in renewed.`);
    }, said(provider));
  }

  document.addEventListener('click', (event) => {
    const button = event.target.closest('.account [data-action]');
    if (!button) return;
    const provider = button.closest('.account').dataset.provider;
    switch (button.dataset.action) {
      case 'link': link(provider, button); break;
      case 'unlink': unlink(provider, button); break;
      case 'refresh': renew(provider, button); break;
      case 'copy-code': {
        const code = card(provider).querySelector('.device-code').textContent;
        S.copy(code).then((ok) => S.say(ok ? 'Code copied.' : 'Select the code and copy it.'));
        break;
      }
      default: break;
    }
  });

  // ---- Discord channel webhook ----

  const webhook = $('discord-webhook');
  webhook.addEventListener('submit', (event) => {
    event.preventDefault();
    const url = $('dw-url').value.trim();
    S.busy(webhook.querySelector('button[type="submit"]'), 'Saving the webhook…', async () => {
      await S.api('PUT', '/api/accounts/discord/webhook', { url });
      webhook.reset();
      await S.refresh(['discord-webhook']);
      S.say('Discord webhook saved.');
    });
  });
  document.addEventListener('click', async (event) => {
    const button = event.target.closest('[data-action="discord-webhook-delete"]');
    if (!button) return;
    if (!(await S.confirm('Remove the Discord channel webhook?', 'Remove'))) return;
    S.busy(button, 'Removing…', async () => {
      await S.api('DELETE', '/api/accounts/discord/webhook');
      await S.refresh(['discord-webhook']);
      S.say('Discord webhook removed.');
    });
  });

  // ---- progress ----

  S.events((event) => {
    const data = event.data || {};
    if (event.type === 'account.link' && card(data.provider)) {
      const name = NAMES[data.provider] || data.provider;
      status.progress[data.provider] = data.state;
      if (data.state === 'pending' && data.user_code) {
        showDevice(data.provider, data.verification_uri, data.user_code);
      } else if (data.state === 'linked') {
        S.refresh(['accounts']).then(() => S.say(`${name} is linked${data.account ? ` as ${data.account.accountName}` : ''}.`));
      } else if (data.state === 'failed') {
        S.refresh(['accounts']).then(() => S.problem({ code: data.code, message: data.message }, said(data.provider)));
      }
    } else if (event.type === 'account.status') {
      S.refresh(['accounts']).then(() => { if (data.notice) S.say(data.notice); });
    }
  });
})();
