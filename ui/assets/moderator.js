// Moderator panel: the live parts of /moderator, over WS /ws/moderator (the session cookie
// authenticates it). Plain script, no build step, so the server can embed it and the page's CSP
// can stay `script-src 'self'`. Text from the server (labels, names) only ever goes through
// textContent or attribute setters. The scene editor is the shared one (scene-editor.js, loaded
// first); this script carries its saves over the socket as `scene.save`.
'use strict';

(() => {
  const BACKOFF_FIRST_MS = 500;
  const BACKOFF_CAP_MS = 5000;
  const ACCESS_ENDED = 4401; // the server's close code for a revoked or expired session
  const OFFLINE = 1013; // the relay's close code when the streamer's app went offline
  // The panel is `${BASE}/moderator`: BASE is empty on the streamer's machine and the LAN, and
  // `/t/{tunnel}` through the relay; every request the panel makes stays under it.
  const BASE = location.pathname.replace(/\/moderator\/?$/, '');

  const root = document.getElementById('moderator');
  if (!root) return;
  const $ = (id) => document.getElementById(id);
  const els = {
    connection: $('connection'), status: $('status'), ended: $('ended'), label: $('label'),
    expires: $('expires'), expiresIn: $('expires-in'), editor: $('editor'),
    ttsForm: $('tts-form'), alertForm: $('alert-form'), alertOverlay: $('alert-overlay'),
  };

  // Read by the browser tests; kept current at every step. `versions`: the last scene version
  // known per overlay; `pendingSaves`: overlays with unsaved edits plus saves awaiting an answer.
  const status = { state: 'connecting', versions: {}, lastResult: null, pendingSaves: 0 };
  window.__stagehandModerator = status;

  let socket = null;
  let backoffMs = BACKOFF_FIRST_MS;
  let ended = false;
  let refSeq = 0;
  let expiresAt = null;
  const requests = new Map(); // ref -> { kind: 'scene' | 'tts' | 'alert', overlayId? }
  // The shared scene editor (scene-editor.js), present with the scene.edit scope. Its saves go
  // out as scene.save on the socket; their results come back to it by ref.
  const editor = els.editor && window.StagehandSceneEditor
    ? window.StagehandSceneEditor.create({
      root: els.editor,
      status,
      announce,
      isOpen: () => isOpen() && !ended,
      save(ref, overlayId, version, layers) {
        requests.set(ref, { kind: 'scene', overlayId });
        send({ type: 'scene.save', ref, overlayId, version, scene: { layers } });
      },
      onOverlays: fillAlertChoices,
    })
    : null;

  // ---- status line ----

  function announce(text) {
    if (els.status) els.status.textContent = text;
  }

  function setState(state) {
    const was = status.state;
    status.state = state;
    const words = {
      connecting: 'connecting…', open: 'connected', closed: 'reconnecting…', ended: 'access ended',
      offline: "the streamer's app is offline; waiting for it…",
    };
    if (els.connection) {
      els.connection.textContent = words[state] || state;
      els.connection.className = `badge ${state === 'open' ? 'ok' : state === 'connecting' ? '' : 'bad'}`;
    }
    if (state === 'closed' && was === 'open') announce('Connection to Stagehand lost; reconnecting…');
    syncForms();
  }

  // ---- other actions ----

  function nextRef() {
    refSeq += 1;
    return `r${refSeq}`;
  }

  function request(kind, message) {
    if (!isOpen()) { announce('Not connected to Stagehand yet; try again in a moment.'); return null; }
    const ref = nextRef();
    requests.set(ref, { kind });
    send({ ...message, ref });
    return ref;
  }

  function errorText(error) {
    if (!error) return 'Stagehand refused.';
    if (error.code === 'scope_denied') return 'your access does not include this.';
    return typeof error.message === 'string' && error.message ? error.message : String(error.code);
  }

  function pagesText(pages) {
    if (!Number.isFinite(pages)) return 'the overlays';
    return pages === 1 ? '1 overlay page' : `${pages} overlay pages`;
  }

  function receiveResult(message) {
    const asked = requests.get(message.ref);
    if (!asked) return;
    requests.delete(message.ref);
    status.lastResult = {
      ref: message.ref, kind: asked.kind, ok: message.ok === true,
      version: Number.isFinite(message.version) ? message.version : null,
      error: message.error || null,
    };
    if (asked.kind === 'scene') return editor ? editor.result(asked.overlayId, message) : undefined;
    const form = asked.kind === 'tts' ? els.ttsForm : els.alertForm;
    if (form) delete form.dataset.busy;
    if (message.ok === true && message.pages === 0) {
      announce(asked.kind === 'tts'
        ? 'Sent, but no overlay page is open to speak it right now.'
        : 'Sent, but no overlay page is open to show it right now.');
    } else if (message.ok === true) {
      announce(asked.kind === 'tts'
        ? `Sent to speech on ${pagesText(message.pages)}.`
        : `Test alert sent to ${pagesText(message.pages)}.`);
      const field = asked.kind === 'tts' ? $('tts-text') : null;
      if (field) field.value = '';
    } else {
      announce(`${asked.kind === 'tts' ? 'Not spoken' : 'Alert not sent'}: ${errorText(message.error)}`);
    }
    syncForms();
    return undefined;
  }

  function syncForms() {
    for (const form of [els.ttsForm, els.alertForm]) {
      if (!form) continue;
      const button = form.querySelector('button[type="submit"]');
      if (button) button.disabled = ended || !isOpen() || form.dataset.busy === '1';
    }
  }

  if (els.ttsForm) {
    els.ttsForm.addEventListener('submit', (event) => {
      event.preventDefault();
      const text = $('tts-text').value.trim();
      if (!text) { announce('Type what to say first.'); return; }
      const lang = $('tts-lang').value.trim();
      if (request('tts', { type: 'tts.speak', text, ...(lang ? { lang } : {}) })) {
        els.ttsForm.dataset.busy = '1';
        syncForms();
      }
    });
  }

  if (els.alertForm) {
    els.alertForm.addEventListener('submit', (event) => {
      event.preventDefault();
      const title = $('alert-title').value.trim();
      if (!title) { announce('Give the alert a title first.'); return; }
      const message = { type: 'alert.show', kind: 'test', title, message: $('alert-message').value.trim() };
      if (els.alertOverlay && els.alertOverlay.value) message.overlayId = els.alertOverlay.value;
      if (request('alert', message)) {
        els.alertForm.dataset.busy = '1';
        syncForms();
      }
    });
  }

  // ---- expiry ----

  function setExpiry(iso) {
    const at = Date.parse(iso);
    if (!Number.isFinite(at) || !els.expires) return;
    expiresAt = at;
    els.expires.dateTime = iso;
    els.expires.textContent = new Date(at).toLocaleString([], { dateStyle: 'medium', timeStyle: 'short' });
    tickExpiry();
  }

  function tickExpiry() {
    if (expiresAt === null || !els.expiresIn) return;
    const minutes = Math.floor((expiresAt - Date.now()) / 60000);
    let left = 'in under a minute';
    if (minutes >= 60) left = `in ${Math.floor(minutes / 60)} h ${String(minutes % 60).padStart(2, '0')} min`;
    else if (minutes >= 1) left = `in ${minutes} min`;
    els.expiresIn.textContent = ended ? '' : `(${left})`;
  }

  if (els.expires) setExpiry(els.expires.getAttribute('datetime') || '');
  setInterval(tickExpiry, 30 * 1000);

  // ---- connection ----

  function isOpen() {
    return Boolean(socket && socket.readyState === WebSocket.OPEN);
  }

  function send(message) {
    if (isOpen()) socket.send(JSON.stringify(message));
  }

  function connect() {
    if (ended) return;
    setState(status.state === 'offline' ? 'offline' : 'connecting');
    const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
    const ws = new WebSocket(`${scheme}//${location.host}${BASE}/ws/moderator`);
    socket = ws;
    let opened = false;
    ws.onopen = () => { opened = true; setState('open'); };
    ws.onmessage = (event) => {
      let message;
      try { message = JSON.parse(event.data); } catch { return; }
      if (message && typeof message === 'object') handleMessage(message);
    };
    ws.onclose = (event) => {
      if (socket !== ws) return;
      socket = null;
      connectionLost();
      if (event.code === ACCESS_ENDED) return endAccess();
      setState(event.code === OFFLINE || status.state === 'offline' ? 'offline' : 'closed');
      // A refused handshake shows up as a bare 1006: ask the panel page itself whether the
      // session still exists before retrying forever.
      if (!opened) sessionGone().then((gone) => (gone ? endAccess() : scheduleReconnect()));
      else scheduleReconnect();
      return undefined;
    };
  }

  async function sessionGone() {
    try {
      const response = await fetch(`${BASE}/moderator`, { method: 'HEAD', cache: 'no-store', credentials: 'same-origin' });
      // Through the relay, a streamer whose app is not running answers for the relay.
      if (response.headers.get('x-stagehand-offline')) setState('offline');
      return response.status === 401 || response.status === 410;
    } catch {
      return false; // Stagehand is down: keep trying
    }
  }

  function scheduleReconnect() {
    // Jitter keeps several moderators from reconnecting in lockstep after a restart.
    const delay = Math.min(BACKOFF_CAP_MS, backoffMs * (0.75 + Math.random() * 0.5));
    backoffMs = Math.min(backoffMs * 2, BACKOFF_CAP_MS);
    setTimeout(connect, delay);
  }

  // A save whose answer never came may or may not have landed: its edits go back to pending
  // and are saved again (they are absolute positions, so saving twice is harmless) against the
  // scene the next connection brings.
  function connectionLost() {
    if (editor) editor.connectionLost();
    let unanswered = false;
    for (const asked of requests.values()) if (asked.kind !== 'scene') unanswered = true;
    requests.clear();
    for (const form of [els.ttsForm, els.alertForm]) if (form) delete form.dataset.busy;
    if (unanswered) announce('The connection dropped before Stagehand answered; it may not have gone out.');
  }

  function endAccess() {
    ended = true;
    if (editor) editor.end();
    const unsaved = status.pendingSaves > 0;
    setState('ended');
    if (els.ended) els.ended.hidden = false;
    announce(unsaved ? 'Your access has ended; your last changes were not saved.' : 'Your access has ended.');
    root.classList.add('is-ended');
    for (const el of root.querySelectorAll('input, select, textarea, button')) el.disabled = true;
    tickExpiry();
  }

  function handleMessage(message) {
    switch (message.type) {
      case 'hello': return receiveHello(message);
      case 'scene.full': return editor ? editor.receiveScene(message) : undefined;
      case 'result': return receiveResult(message);
      default: return undefined; // a newer server may send more
    }
  }

  function receiveHello(message) {
    backoffMs = BACKOFF_FIRST_MS; // the server knows us and is well: start the backoff over
    const session = message.session || {};
    if (typeof session.label === 'string' && els.label) els.label.textContent = session.label;
    if (typeof session.expiresAt === 'string') setExpiry(session.expiresAt);
    const list = (Array.isArray(message.overlays) ? message.overlays : [])
      .filter((o) => o && typeof o.overlayId === 'string');
    announce(`Connected. ${editor ? 'Edits are saved as you make them.' : ''}`.trim());
    fillAlertChoices(list.map((o) => ({ id: o.overlayId, name: typeof o.name === 'string' && o.name ? o.name : o.overlayId })));
    if (editor) editor.setOverlays(list);
  }

  // The alert form's "Show on" choices, after "All overlays".
  function fillAlertChoices(list) {
    const select = els.alertOverlay;
    if (!select) return;
    const value = select.value;
    while (select.options.length > 1) select.remove(1);
    for (const ov of list) {
      const option = document.createElement('option');
      option.value = ov.id;
      option.textContent = ov.name;
      select.append(option);
    }
    if ([...select.options].some((o) => o.value === value)) select.value = value;
  }

  syncForms();
  connect();
})();
