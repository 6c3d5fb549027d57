// Stagehand overlay page: renders an overlay's scene and plays its events inside OBS's browser
// source. No build step and no framework, so the engine can embed this file verbatim and the CSP
// can stay `script-src 'self'`. Every piece of text from the server goes through textContent:
// titles, chat lines and layer text come from viewers and must never become markup.
'use strict';

(() => {
  const MAX_CHAT_LINES = 50;
  const DEFAULT_ALERT_MS = 5000;
  const ALERT_EXIT_MS = 350; // matches .alert-leaving's animation in overlay.css
  const TTS_WATCHDOG_MS = 60 * 1000;
  const MAX_ALERT_IDS_KEPT = 200;
  const BACKOFF_FIRST_MS = 500;
  const BACKOFF_CAP_MS = 5000;
  // The server closes with these when the link can never work again (signature refused,
  // overlay deleted): retrying would only hammer it and keep a revoked scene on screen.
  const TERMINAL_CLOSE_CODES = new Set([4403, 4404]);
  // Only these style keys reach the DOM; numbers are pixels where a length is expected.
  const STYLE_KEYS = {
    color: null, fontSize: 'px', fontFamily: null, fontWeight: null, textAlign: null,
    background: null, opacity: null, borderRadius: 'px', textShadow: null,
  };

  // Kept exactly as it appears in the path (already URL-encoded), so the socket URL names the
  // same overlay the page was served for.
  const overlayId = location.pathname.split('/').filter(Boolean).pop() || '';
  const debug = new URLSearchParams(location.search).get('debug') === '1';
  const stage = document.getElementById('stage');
  const defaultAlerts = document.getElementById('alerts');
  const debugBox = document.getElementById('debug');

  // Read by the browser tests; kept current whether or not debug is on.
  const status = {
    state: 'connecting', reason: null, closeCode: null,
    version: null, applied: null, patches: 0, resyncs: 0, alertsShown: [], ttsStarted: [],
    chartsReady: 0, chartPoints: {},
  };
  window.__stagehandOverlay = status;

  let socket = null;
  let backoffMs = BACKOFF_FIRST_MS;
  let stopped = false;
  let scene = null; // the newest scene received: { version, overlay, layers }
  let pendingScene = null; // that scene, when not rendered yet
  let resyncAsked = false; // a gap in versions was seen and a full scene asked for
  let renderScheduled = false;
  let currentLayers = []; // layers of the last rendered scene, in scene order
  const layerViews = new Map(); // layer id -> { kind, el, ...kind-specific state }
  const chatLines = []; // last MAX_CHAT_LINES chat.message payloads
  const chartData = new Map(); // symbol -> points, so a chart layer added later starts full
  let lastChartSymbol = null; // what a chart layer without props.symbol shows
  let chartLibrary = null; // Promise of window.LightweightCharts, loaded on first chart layer
  const alertQueue = [];
  const alertIdsSeen = new Set();
  let alertShowing = false;
  let ttsChain = Promise.resolve();

  function updateDebug() {
    if (!debug) return;
    debugBox.hidden = false;
    const state = status.state === 'closed' ? `closed: ${status.reason || 'unknown'}` : status.state;
    debugBox.textContent =
      `${state}\nversion ${status.version ?? '-'}  applied ${status.applied ?? '-'}`;
  }

  function setState(state, reason = null, closeCode = null) {
    status.state = state;
    status.reason = reason;
    status.closeCode = closeCode;
    updateDebug();
  }

  function send(message) {
    if (socket && socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify(message));
  }

  // ---- connection ----

  function connect() {
    if (stopped) return;
    setState('connecting');
    const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
    // The query string is the credential (sig, exp); pass it through untouched.
    const url = `${scheme}//${location.host}/ws/overlay/${overlayId}${location.search}`;
    let opened = false;
    const ws = new WebSocket(url);
    socket = ws;
    ws.onopen = () => { opened = true; setState('open'); };
    ws.onmessage = (event) => {
      let message;
      try { message = JSON.parse(event.data); } catch { return; }
      if (message && typeof message === 'object') handleMessage(message);
    };
    ws.onclose = (event) => {
      if (socket !== ws) return;
      socket = null;
      if (TERMINAL_CLOSE_CODES.has(event.code)) return stop(event.reason || `code ${event.code}`, event.code);
      setState('closed', event.reason || `code ${event.code}`, event.code);
      // A handshake the server refused with an HTTP status shows up here as a bare 1006; ask
      // the page URL itself whether the link is still good before retrying forever.
      if (!opened) probeLink().then((gone) => (gone ? stop(gone, null) : scheduleReconnect()));
      else scheduleReconnect();
    };
  }

  async function probeLink() {
    try {
      const response = await fetch(location.href, { method: 'HEAD', cache: 'no-store' });
      if (response.status === 403 || response.status === 404) return `link refused (HTTP ${response.status})`;
    } catch { /* server down: keep retrying */ }
    return null;
  }

  function scheduleReconnect() {
    // Jitter keeps many pages (several OBS scenes, several PCs) from reconnecting in lockstep
    // after an engine restart.
    const delay = Math.min(BACKOFF_CAP_MS, backoffMs * (0.75 + Math.random() * 0.5));
    backoffMs = Math.min(backoffMs * 2, BACKOFF_CAP_MS);
    setTimeout(connect, delay);
  }

  // A revoked link must not leave the old scene on the stream, so everything is cleared.
  function stop(reason, closeCode) {
    stopped = true;
    pendingScene = null;
    scene = null;
    alertQueue.length = 0;
    stopMedia(document.body);
    if ('speechSynthesis' in window) speechSynthesis.cancel();
    layerViews.clear();
    currentLayers = [];
    stage.replaceChildren(defaultAlerts);
    defaultAlerts.replaceChildren();
    setState('closed', reason, closeCode);
  }

  function handleMessage(message) {
    switch (message.type) {
      case 'scene.full': return receiveScene(message);
      case 'scene.patch': return receivePatch(message);
      case 'alert.show': return enqueueAlert(message);
      case 'chat.message': return addChatLine(message);
      case 'chart.update': return receiveChart(message);
      case 'tts.speak': return speak(message);
      default: return undefined; // newer servers may send types this page does not know yet
    }
  }

  // ---- scene ----

  function receiveScene(message) {
    if (!Number.isFinite(message.version)) return;
    // Only a full scene means the server is reachable and happy: the backoff starts over.
    backoffMs = BACKOFF_FIRST_MS;
    resyncAsked = false;
    const layers = (message.scene && Array.isArray(message.scene.layers)) ? message.scene.layers : [];
    showScene({ version: message.version, overlay: message.overlay || {}, layers });
  }

  // A patch carries the new or changed layers and the order of every layer id. It applies only
  // to the version it was made from; one already covered by a newer full scene is ignored, and
  // a gap (a version never seen) asks the server for the whole scene.
  function receivePatch(message) {
    const { from_version: from, to_version: to } = message;
    if (!scene || !Number.isFinite(from) || !Number.isFinite(to) || to <= scene.version) return;
    const changed = new Map((Array.isArray(message.layers) ? message.layers : [])
      .filter((l) => l && typeof l.id === 'string').map((l) => [l.id, l]));
    const known = new Map(scene.layers.map((l) => [l.id, l]));
    const order = Array.isArray(message.order) ? message.order : [];
    const layers = order.map((id) => changed.get(id) || known.get(id));
    if (from !== scene.version || layers.some((l) => !l)) {
      if (!resyncAsked) { resyncAsked = true; status.resyncs += 1; send({ type: 'resync' }); }
      return;
    }
    status.patches += 1;
    const overlay = message.overlay && typeof message.overlay === 'object' ? message.overlay : scene.overlay;
    showScene({ version: to, overlay, layers });
  }

  function showScene(next) {
    scene = next;
    status.version = next.version;
    pendingScene = next;
    updateDebug();
    scheduleRender();
  }

  // Rapid edits (a drag in the panel) arrive faster than frames: keep only the newest scene
  // and render it at the next frame. The timeout covers hidden pages, where
  // requestAnimationFrame never fires but the server still waits for `applied`.
  function scheduleRender() {
    if (renderScheduled) return;
    renderScheduled = true;
    let timer = null;
    const frame = requestAnimationFrame(() => { clearTimeout(timer); renderPending(); });
    timer = setTimeout(() => { cancelAnimationFrame(frame); renderPending(); }, 250);
  }

  function renderPending() {
    renderScheduled = false;
    const next = pendingScene;
    pendingScene = null;
    if (!next || stopped) return;
    stage.style.width = `${positiveOr(next.overlay.width, 1920)}px`;
    stage.style.height = `${positiveOr(next.overlay.height, 1080)}px`;
    renderLayers(next.layers.filter((l) => l && typeof l.id === 'string' && RENDERERS[l.kind]));
    status.applied = next.version;
    updateDebug();
    send({ type: 'applied', version: next.version });
  }

  function renderLayers(layers) {
    const keep = new Set(layers.map((l) => l.id));
    for (const [id, view] of layerViews) {
      if (!keep.has(id)) { destroyView(view); layerViews.delete(id); }
    }
    for (const layer of layers) {
      let view = layerViews.get(layer.id);
      if (view && view.kind !== layer.kind) { destroyView(view); view = null; }
      if (!view) {
        const el = document.createElement('div');
        el.className = `layer layer-${layer.kind}`;
        el.dataset.layerId = layer.id;
        view = { kind: layer.kind, el };
        layerViews.set(layer.id, view);
        stage.insertBefore(el, defaultAlerts);
      }
      placeLayer(view.el, layer);
      RENDERERS[layer.kind](view, layer.props || {});
    }
    currentLayers = layers;
  }

  function destroyView(view) {
    stopMedia(view.el);
    if (view.chart) view.chart.remove();
    view.el.remove();
  }

  function placeLayer(el, layer) {
    el.style.left = `${num(layer.x, 0)}px`;
    el.style.top = `${num(layer.y, 0)}px`;
    el.style.width = `${num(layer.w, 0)}px`;
    el.style.height = `${num(layer.h, 0)}px`;
    el.style.zIndex = String(Math.trunc(num(layer.z, 0)));
    el.style.display = layer.visible === false ? 'none' : '';
    const style = layer.style || {};
    for (const [key, unit] of Object.entries(STYLE_KEYS)) {
      const value = style[key];
      // Unset keys are cleared so removing a style in the editor takes effect.
      if (typeof value === 'number') el.style[key] = unit ? `${value}${unit}` : String(value);
      else if (typeof value === 'string') el.style[key] = value;
      else el.style[key] = '';
    }
  }

  const RENDERERS = {
    text(view, props) {
      const text = typeof props.text === 'string' ? props.text : '';
      if (view.el.textContent !== text) view.el.textContent = text;
    },
    image(view, props) {
      if (!view.img) { view.img = document.createElement('img'); view.img.alt = ''; view.el.append(view.img); }
      setSrc(view.img, props.src);
    },
    media(view, props) {
      const tag = props.media_kind === 'audio' ? 'audio' : 'video';
      // Recreating (or even re-setting src on) a playing element restarts it from zero, so
      // it is only replaced when what it plays changes.
      if (!view.media || view.media.localName !== tag || view.src !== props.src) {
        if (view.media) { stopMedia(view.el); view.media.remove(); }
        const media = document.createElement(tag);
        media.autoplay = true;
        media.playsInline = true;
        view.media = media;
        view.src = props.src;
        setSrc(media, props.src);
        view.el.append(media);
        // Once only: a clip that ended without loop must stay ended across scene updates.
        if (media.getAttribute('src')) media.play().catch(() => {});
      }
      view.media.loop = props.loop === true;
      view.media.muted = props.muted === true;
      if (typeof props.volume === 'number') view.media.volume = clamp(props.volume, 0, 1);
    },
    alert_box() { /* alerts are put inside by showNextAlert */ },
    chat_box(view) {
      if (view.list) return;
      view.list = document.createElement('ul');
      view.list.className = 'chat-lines';
      view.list.append(...chatLines.map(chatLineElement));
      view.el.append(view.list);
    },
    chart(view, props) { renderChart(view, props); },
  };

  // ---- chart: TradingView Lightweight Charts (Apache-2.0, vendored in overlays/vendor) ----
  // The licence asks for TradingView's attribution on the page: the library's own
  // attributionLogo (a link to tradingview.com) stays on, and the layer carries the notice.

  const MAX_CHART_POINTS = 5000;

  function loadChartLibrary() {
    chartLibrary ??= new Promise((resolve, reject) => {
      const script = document.createElement('script');
      script.src = '/overlay-assets/lightweight-charts.js';
      script.onload = () => resolve(window.LightweightCharts);
      script.onerror = () => { chartLibrary = null; reject(new Error('chart library did not load')); };
      document.head.append(script);
    });
    return chartLibrary;
  }

  function chartPoint(point, kind) {
    if (kind === 'candles') {
      if (![point.open, point.high, point.low, point.close].every(Number.isFinite)) return null;
      return { time: point.time, open: point.open, high: point.high, low: point.low, close: point.close };
    }
    const value = Number.isFinite(point.value) ? point.value : point.close;
    return Number.isFinite(value) ? { time: point.time, value } : null;
  }

  function chartSeriesData(symbol, kind) {
    return (chartData.get(symbol) || []).map((p) => chartPoint(p, kind)).filter(Boolean);
  }

  function renderChart(view, props) {
    const symbol = typeof props.symbol === 'string' && props.symbol ? props.symbol : null;
    const kind = props.series === 'candles' ? 'candles' : 'line';
    const color = typeof props.color === 'string' ? props.color : '#2962ff';
    if (view.chartKey === `${symbol}|${kind}|${color}`) return; // autoSize follows the layer's size
    view.chartKey = `${symbol}|${kind}|${color}`;
    view.symbol = symbol;
    view.seriesKind = kind;
    if (view.chart) { view.chart.remove(); view.chart = null; view.series = null; }
    if (!view.host) {
      view.host = document.createElement('div');
      view.host.className = 'chart-host';
      const notice = document.createElement('div');
      notice.className = 'chart-attribution';
      notice.textContent = 'Charts by TradingView Lightweight Charts\u2122';
      view.el.append(view.host, notice);
    }
    const key = view.chartKey;
    loadChartLibrary().then((lib) => {
      if (view.chartKey !== key || !view.el.isConnected) return; // changed or removed meanwhile
      const chart = lib.createChart(view.host, {
        autoSize: true,
        layout: { background: { type: 'solid', color: 'transparent' }, textColor: '#e8e8e8', attributionLogo: true },
        grid: { vertLines: { visible: false }, horzLines: { color: 'rgba(255,255,255,0.08)' } },
        timeScale: { timeVisible: true, borderVisible: false },
        rightPriceScale: { borderVisible: false },
      });
      view.series = kind === 'candles'
        ? chart.addSeries(lib.CandlestickSeries, {})
        : chart.addSeries(lib.LineSeries, { color, lineWidth: 2 });
      view.chart = chart;
      view.shownSymbol = symbol ?? lastChartSymbol;
      view.series.setData(chartSeriesData(view.shownSymbol, kind));
      chart.timeScale().fitContent();
      status.chartsReady += 1;
    }, (error) => { view.chartKey = null; console.warn(error.message); });
  }

  function receiveChart(message) {
    const symbol = message.symbol;
    if (typeof symbol !== 'string' || !Array.isArray(message.points)) return;
    const data = message.replace ? [] : (chartData.get(symbol) || []);
    const fresh = [];
    for (const point of message.points) {
      if (!point || !Number.isFinite(point.time)) continue;
      const last = data[data.length - 1];
      if (last && last.time === point.time) data[data.length - 1] = point;
      else if (!last || point.time > last.time) data.push(point);
      else continue;
      fresh.push(point);
    }
    if (data.length > MAX_CHART_POINTS) data.splice(0, data.length - MAX_CHART_POINTS);
    chartData.set(symbol, data);
    lastChartSymbol = symbol;
    for (const view of layerViews.values()) {
      if (view.kind !== 'chart' || !view.series || (view.symbol ?? lastChartSymbol) !== symbol) continue;
      // A layer without its own symbol follows the latest one: a different symbol than it was
      // showing means new data, not an update of the old series.
      if (message.replace || view.shownSymbol !== symbol) {
        view.series.setData(chartSeriesData(symbol, view.seriesKind));
        view.chart.timeScale().fitContent();
        view.shownSymbol = symbol;
        continue;
      }
      try {
        for (const p of fresh) { const q = chartPoint(p, view.seriesKind); if (q) view.series.update(q); }
      } catch (error) {
        // Out-of-order points: redraw from the kept data instead of stopping.
        view.series.setData(chartSeriesData(symbol, view.seriesKind));
      }
    }
    status.chartPoints[symbol] = data.length;
  }

  // ---- chat ----

  function addChatLine(message) {
    chatLines.push(message);
    if (chatLines.length > MAX_CHAT_LINES) chatLines.splice(0, chatLines.length - MAX_CHAT_LINES);
    for (const view of layerViews.values()) {
      if (view.kind !== 'chat_box' || !view.list) continue;
      view.list.append(chatLineElement(message));
      while (view.list.childElementCount > MAX_CHAT_LINES) view.list.firstElementChild.remove();
    }
  }

  function chatLineElement(message) {
    const line = document.createElement('li');
    line.className = 'chat-line';
    if (typeof message.id === 'string') line.dataset.chatId = message.id;
    const user = document.createElement('span');
    user.className = 'chat-user';
    user.textContent = String(message.user ?? '');
    // Only a plain hex colour: anything else could smuggle other CSS values in.
    if (typeof message.color === 'string' && /^#[0-9a-f]{3,8}$/i.test(message.color)) user.style.color = message.color;
    const text = document.createElement('span');
    text.className = 'chat-text';
    text.textContent = String(message.text ?? '');
    line.append(user, text);
    return line;
  }

  // ---- alerts ----

  function enqueueAlert(message) {
    // A resent alert (after a reconnect, or a webhook alert announced again after a restart:
    // its id comes from the delivery) must not play twice.
    if (typeof message.id === 'string') {
      // Tell Stagehand the page has it, so a webhook's alert is not shown again after a restart.
      send({ type: 'alert.seen', id: message.id });
      if (alertIdsSeen.has(message.id)) return;
      alertIdsSeen.add(message.id);
      if (alertIdsSeen.size > MAX_ALERT_IDS_KEPT) alertIdsSeen.delete(alertIdsSeen.values().next().value);
    }
    alertQueue.push(message);
    if (!alertShowing) showNextAlert();
  }

  function alertContainer() {
    for (const layer of currentLayers) {
      if (layer.kind === 'alert_box' && layer.visible !== false) return layerViews.get(layer.id).el;
    }
    return defaultAlerts;
  }

  function showNextAlert() {
    const alert = alertQueue.shift();
    if (!alert || stopped) { alertShowing = false; return; }
    alertShowing = true;
    const el = document.createElement('div');
    el.className = `alert alert-${String(alert.kind || 'generic').replace(/[^a-z0-9_-]/gi, '')}`;
    if (typeof alert.id === 'string') el.dataset.alertId = alert.id;
    if (typeof alert.image === 'string' && alert.image) {
      const img = document.createElement('img');
      img.className = 'alert-image';
      img.alt = '';
      img.src = alert.image;
      el.append(img);
    }
    const title = document.createElement('div');
    title.className = 'alert-title';
    title.textContent = String(alert.title ?? '');
    const text = document.createElement('div');
    text.className = 'alert-message';
    text.textContent = String(alert.message ?? '');
    el.append(title, text);
    alertContainer().append(el);
    status.alertsShown.push(alert.id ?? null);
    if (status.alertsShown.length > MAX_ALERT_IDS_KEPT) status.alertsShown.shift();
    if (typeof alert.sound === 'string' && alert.sound) new Audio(alert.sound).play().catch(() => {});
    const duration = clamp(positiveOr(alert.duration_ms, DEFAULT_ALERT_MS), 500, 10 * 60 * 1000);
    setTimeout(() => {
      el.classList.add('alert-leaving');
      setTimeout(() => { el.remove(); showNextAlert(); }, ALERT_EXIT_MS);
    }, duration);
  }

  // ---- text to speech ----

  // Clips play one after another, like alerts, so two requests never talk over each other.
  // The watchdog keeps one stuck clip (no voices, a stalled download) from silencing the rest.
  function speak(message) {
    const play = () => (typeof message.audio_url === 'string' && message.audio_url
      ? playTtsAudio(message) : speakWithSynthesis(message));
    const watchdog = () => new Promise((resolve) => setTimeout(resolve, TTS_WATCHDOG_MS));
    ttsChain = ttsChain.then(() => Promise.race([play(), watchdog()])).catch(() => {});
  }

  // The engine's rendered audio is the normal path: OBS captures a media element's sound,
  // but not Web SpeechSynthesis.
  function playTtsAudio(message) {
    return new Promise((resolve) => {
      const audio = document.createElement('audio');
      audio.className = 'tts-audio';
      audio.src = message.audio_url;
      if (typeof message.volume === 'number') audio.volume = clamp(message.volume, 0, 1);
      const done = () => { audio.remove(); resolve(); };
      audio.onended = done;
      audio.onerror = done;
      document.body.append(audio);
      audio.play().then(() => status.ttsStarted.push(message.id ?? message.audio_url), done);
    });
  }

  function speakWithSynthesis(message) {
    if (!('speechSynthesis' in window) || typeof message.text !== 'string') return Promise.resolve();
    return new Promise((resolve) => {
      const utterance = new SpeechSynthesisUtterance(message.text);
      if (typeof message.lang === 'string') utterance.lang = message.lang;
      if (typeof message.rate === 'number') utterance.rate = message.rate;
      if (typeof message.pitch === 'number') utterance.pitch = message.pitch;
      if (typeof message.volume === 'number') utterance.volume = clamp(message.volume, 0, 1);
      const voice = speechSynthesis.getVoices().find((v) => v.name === message.voice);
      if (voice) utterance.voice = voice;
      utterance.onstart = () => status.ttsStarted.push(message.id ?? null);
      utterance.onend = resolve;
      utterance.onerror = resolve;
      speechSynthesis.speak(utterance);
    });
  }

  // ---- helpers ----

  function setSrc(el, src) {
    const value = typeof src === 'string' ? src : '';
    if (el.getAttribute('src') !== value) el.setAttribute('src', value);
  }

  function stopMedia(root) {
    for (const media of root.querySelectorAll('video, audio')) {
      media.pause();
      media.removeAttribute('src');
      media.load(); // releases the decoder and network stream at once
    }
  }

  function num(value, fallback) { return Number.isFinite(value) ? value : fallback; }
  function positiveOr(value, fallback) { return Number.isFinite(value) && value > 0 ? value : fallback; }
  function clamp(value, low, high) { return Math.min(high, Math.max(low, value)); }

  updateDebug();
  connect();
})();
