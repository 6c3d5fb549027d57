// Helpers every control panel page loads first (window.Stagehand): calling the JSON API and
// saying what went wrong in words with what to do next, copying to the clipboard, asking for
// confirmation in an accessible dialog, fetching the page again to swap in its fresh parts
// (`data-part`: lists are rendered by the server only), engine events over /ws/events, and
// local times. Plain script, no build step; text only ever goes through textContent.
'use strict';

window.Stagehand = (() => {
  const $ = (id) => document.getElementById(id);

  // Read by the browser tests: how many refreshes finished, and the last problem shown.
  const state = { refreshes: 0, problem: null, notice: '', busy: 0 };
  window.__stagehandPanel = state;

  // ---- status line and problems ----

  function say(text) {
    state.notice = text;
    const notice = $('notice');
    if (notice) notice.textContent = text;
  }

  // What to do next, per stable error code; the server's message is shown as well.
  const NEXT = {
    auth_required: 'Your session has ended: sign in again.',
    obs_not_connected: 'Start OBS and turn on its WebSocket server (Tools → WebSocket Server Settings); Settings shows how Stagehand connects.',
    obs_no_browser_source: 'This OBS has no Browser Source plugin, so Stagehand cannot add the overlay. Install OBS from obsproject.com (it includes the plugin), or add a Browser Source by hand and paste the copied link.',
    obs_refused: 'OBS refused the request; check the scene still exists and try again.',
    overlay_limit_reached: 'Delete an overlay you no longer use (or raise limits.overlays in config.toml).',
    account_provider_not_configured: 'Set the client id shown below, then restart Stagehand.',
    account_provider_error: 'The platform could not be reached; check your internet connection and try again.',
    account_device_code_expired: 'The code expired before it was entered: start again.',
    account_access_denied: 'The sign-in was declined on the platform\'s page: start again to link.',
    rate_limited: 'Too many attempts: wait a minute and try again.',
    secrets_unavailable: 'The secret store cannot be reached; run `stagehand secrets doctor`.',
    payload_too_large: 'That is too large to send.',
    network: 'Stagehand did not answer. Is it still running?',
  };

  function describe(error) {
    const message = error && error.message ? String(error.message) : 'Something went wrong.';
    const next = error && NEXT[error.code];
    const env = error && error.details && typeof error.details.envVar === 'string' ? ` (${error.details.envVar})` : '';
    const sentence = /[.!?]$/.test(message) ? message : `${message}.`;
    return `${sentence.charAt(0).toUpperCase()}${sentence.slice(1)}${env}${next ? ` ${next}` : ''}`;
  }

  function problem(error, where) {
    state.problem = { code: error && error.code ? error.code : null, message: describe(error) };
    const box = $('problem');
    const text = $('problem-text');
    if (where) where.textContent = state.problem.message;
    if (box && text) {
      text.textContent = state.problem.message;
      box.hidden = false;
    }
    if (error && error.code === 'auth_required') {
      setTimeout(() => location.assign('/login'), 1500);
    }
  }

  function clearProblem() {
    const box = $('problem');
    if (box) box.hidden = true;
  }

  document.addEventListener('click', (event) => {
    if (event.target.closest('#problem-close')) clearProblem();
  });

  // ---- the JSON API ----

  class ApiError extends Error {
    constructor(status, code, message, details) {
      super(message);
      this.status = status;
      this.code = code;
      this.details = details || null;
    }
  }

  async function api(method, path, body) {
    const init = { method, credentials: 'same-origin', cache: 'no-store', headers: {} };
    if (body !== undefined) {
      init.headers['content-type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    let response;
    try {
      response = await fetch(path, init);
    } catch {
      throw new ApiError(0, 'network', 'Stagehand did not answer');
    }
    const text = await response.text();
    let json = null;
    try { json = text ? JSON.parse(text) : null; } catch { json = null; }
    if (!response.ok) {
      const e = json && json.error ? json.error : {};
      throw new ApiError(response.status, e.code || `http_${response.status}`,
        e.message || `Stagehand answered ${response.status}`, e.details);
    }
    return json;
  }

  // Runs `work` with the button disabled and marked busy; errors are shown, not thrown.
  async function busy(button, progress, work, where) {
    if (button) { button.disabled = true; button.setAttribute('aria-busy', 'true'); }
    state.busy += 1;
    if (progress && where) where.textContent = progress;
    else if (progress) say(progress);
    try {
      clearProblem();
      return await work();
    } catch (error) {
      problem(error, where);
      return undefined;
    } finally {
      state.busy -= 1;
      if (button && button.isConnected) { button.disabled = false; button.removeAttribute('aria-busy'); }
    }
  }

  // ---- copying ----

  async function copy(text, field) {
    if (field) { field.focus(); field.select(); }
    try {
      await navigator.clipboard.writeText(text);
      return true;
    } catch {
      // No clipboard permission (an embedded view, an old browser): the field is selected, so
      // the copy command or Ctrl+C takes it.
      try { return document.execCommand('copy'); } catch { return false; }
    }
  }

  document.addEventListener('click', async (event) => {
    const button = event.target.closest('[data-action="copy"]');
    if (!button) return;
    const field = $(button.dataset.copyFrom);
    if (!field || field.dataset.hidden === '1') return;
    const ok = await copy(field.value, field);
    say(ok ? 'Copied to the clipboard.' : 'Selected: press Ctrl+C (⌘C) to copy.');
  });

  // ---- dialogs ----

  function confirmAction(text, okLabel) {
    const dialog = $('confirm');
    if (!dialog || typeof dialog.showModal !== 'function') return Promise.resolve(window.confirm(text));
    $('confirm-text').textContent = text;
    $('confirm-ok').textContent = okLabel || 'Confirm';
    const opener = document.activeElement;
    dialog.returnValue = '';
    dialog.showModal();
    $('confirm-cancel').focus();
    return new Promise((resolve) => {
      dialog.addEventListener('close', () => {
        if (opener && opener.isConnected) opener.focus();
        resolve(dialog.returnValue === 'ok');
      }, { once: true });
    });
  }

  function ask(label, value, okLabel) {
    const dialog = $('ask');
    if (!dialog || typeof dialog.showModal !== 'function') return Promise.resolve(window.prompt(label, value));
    $('ask-label').textContent = label;
    $('ask-ok').textContent = okLabel || 'Save';
    const input = $('ask-input');
    input.value = value || '';
    const opener = document.activeElement;
    dialog.returnValue = '';
    dialog.showModal();
    input.focus();
    input.select();
    return new Promise((resolve) => {
      dialog.addEventListener('close', () => {
        if (opener && opener.isConnected) opener.focus();
        resolve(dialog.returnValue === 'ok' ? input.value.trim() : null);
      }, { once: true });
    });
  }

  // One of `options` (strings), `selected` first chosen; null when cancelled.
  function choose(label, options, selected, okLabel) {
    const dialog = $('choose');
    if (!dialog || typeof dialog.showModal !== 'function') return Promise.resolve(selected);
    $('choose-label').textContent = label;
    $('choose-ok').textContent = okLabel || 'OK';
    const select = $('choose-select');
    select.replaceChildren(...options.map((value) => {
      const option = document.createElement('option');
      option.value = value;
      option.textContent = value;
      option.selected = value === selected;
      return option;
    }));
    const opener = document.activeElement;
    dialog.returnValue = '';
    dialog.showModal();
    select.focus();
    return new Promise((resolve) => {
      dialog.addEventListener('close', () => {
        if (opener && opener.isConnected) opener.focus();
        resolve(dialog.returnValue === 'ok' ? select.value : null);
      }, { once: true });
    });
  }

  // ---- fresh parts of the page ----

  async function swapParts(names) {
    const response = await fetch(location.pathname, { credentials: 'same-origin', cache: 'no-store' });
    if (response.redirected && new URL(response.url).pathname === '/login') {
      location.assign('/login');
      return;
    }
    if (!response.ok) throw new ApiError(response.status, `http_${response.status}`, 'The page could not be reloaded');
    const doc = new DOMParser().parseFromString(await response.text(), 'text/html');
    for (const part of document.querySelectorAll('[data-part]')) {
      if (names && !names.includes(part.dataset.part)) continue;
      const fresh = doc.querySelector(`[data-part="${part.dataset.part}"]`);
      if (!fresh) continue;
      const focused = part.contains(document.activeElement) ? document.activeElement.id : '';
      part.replaceWith(document.adoptNode(fresh));
      if (focused && $(focused)) $(focused).focus();
    }
    localTimes();
    state.refreshes += 1;
    document.dispatchEvent(new CustomEvent('stagehand:refreshed'));
  }

  // One refresh at a time: requests made meanwhile are merged into one more round, and every
  // caller's promise settles once the parts it asked for are in.
  let queued = null; // null: nothing; 'all'; or a Set of part names
  let running = null;

  async function drain() {
    while (queued) {
      const names = queued === 'all' ? null : [...queued];
      queued = null;
      try { await swapParts(names); } catch (error) { problem(error); }
    }
    running = null;
  }

  function refresh(names) {
    queued = queued === 'all' || !names ? 'all' : new Set([...(queued || []), ...names]);
    if (!running) running = drain();
    return running;
  }

  // ---- engine events ----

  function events(onEvent, onState) {
    let delay = 500;
    function connect() {
      const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
      const ws = new WebSocket(`${scheme}//${location.host}/ws/events`);
      ws.onopen = () => { delay = 500; if (onState) onState(true); };
      ws.onmessage = (message) => {
        let event;
        try { event = JSON.parse(message.data); } catch { return; }
        if (event && typeof event === 'object' && event.type !== 'hello') onEvent(event);
      };
      ws.onclose = () => {
        if (onState) onState(false);
        setTimeout(connect, delay * (0.75 + Math.random() * 0.5));
        delay = Math.min(delay * 2, 5000);
      };
    }
    connect();
  }

  // ---- external links (OAuth pages): the desktop shell routes them to the system browser ----

  function openExternal(url) {
    if (typeof window.__stagehandOpenExternal === 'function') {
      window.__stagehandOpenExternal(url);
      return true;
    }
    return Boolean(window.open(url, '_blank', 'noopener,noreferrer'));
  }

  document.addEventListener('click', (event) => {
    const link = event.target.closest('a[data-external]');
    if (!link || typeof window.__stagehandOpenExternal !== 'function') return;
    event.preventDefault();
    window.__stagehandOpenExternal(link.href);
  });

  // ---- times ----

  function localTime(iso) {
    const at = Date.parse(iso);
    return Number.isFinite(at) ? new Date(at).toLocaleString([], { dateStyle: 'medium', timeStyle: 'short' }) : iso;
  }

  function localTimes() {
    for (const el of document.querySelectorAll('time.local-time[datetime]')) {
      el.textContent = localTime(el.getAttribute('datetime'));
    }
  }
  localTimes();

  return { $, say, problem, clearProblem, api, busy, copy, confirm: confirmAction, ask, choose, refresh, events, openExternal, localTime };
})();
