// The scene editor, shared by the streamer's Overlays page (saves with PUT
// /api/overlays/{id}/scene) and the moderator panel (saves over /ws/moderator). Plain script, no
// build step, so the server can embed it and the pages' CSP can stay `script-src 'self'`. Text
// from the server (layer ids, layer text, overlay names) only ever goes through textContent or
// attribute setters.
//
// The page's own script creates one editor with StagehandSceneEditor.create(options):
//   root       the #editor section (rendered by the server, ui/src/editor.rs)
//   status     an object the editor keeps current: versions {overlayId: version}, pendingSaves
//   announce   (text) => void, the page's aria-live status line
//   isOpen     () => boolean, whether a save can go out now
//   save       (ref, overlayId, version, layers) => void; the answer comes back through
//              editor.result(overlayId, {ref, ok, version?, error?, currentVersion?})
//   onOverlays (list) => void, called when the set of overlays changes (optional)
//
// Scene edits are kept per overlay as three layers of state:
//   layers/version  the last scene the server confirmed (a scene push, or our own accepted save);
//   inflight        the one save on the wire, with the edits it carries;
//   pending         edits made since, merged per layer id and field.
// The editor always shows layers + inflight + pending, so nothing jumps back while a save is
// out. A save carries the whole scene (every field this editor does not touch kept as
// received) against the version its edits were made on; on a version conflict the edits are
// laid again on top of the newer scene and saved once more.
'use strict';

window.StagehandSceneEditor = (() => {
  const SAVE_DEBOUNCE_MS = 150;
  const MIN_SIZE = 8; // smallest width or height a drag gives
  const MIN_ON_STAGE = 8; // a dragged layer keeps at least this much of itself on the stage
  const MAX_COORD = 100000; // the server refuses x, y, w, h beyond this
  const KIND_WORDS = {
    text: 'text', image: 'image', media: 'video or sound', alert_box: 'alert box',
    chat_box: 'chat box', chart: 'chart',
  };
  const EDITABLE = ['x', 'y', 'w', 'h', 'visible'];

  function create(options) {
    const { root, status } = options;
    const announce = options.announce || (() => {});
    const isOpen = options.isOpen || (() => true);
    const find = (id) => root.querySelector(`#${id}`);
    const els = {
      editor: root,
      overlayPick: find('overlay-pick'), overlaySelect: find('overlay'), overlayName: find('overlay-name'),
      noOverlays: find('no-overlays'), stageWrap: find('stage-wrap'), stage: find('stage'),
      layers: find('layers'), geometry: find('geometry'), geometryLayer: find('geometry-layer'),
    };
    status.versions = status.versions || {};
    status.pendingSaves = status.pendingSaves || 0;

    let ended = false;
    let refSeq = 0;
    const overlays = new Map(); // overlayId -> see newOverlay
    let currentId = null; // the overlay in the editor
    let selectedId = null; // the selected layer of that overlay
    let scale = 1; // stage pixels per overlay pixel
    let drag = null;
    const boxes = new Map(); // layer id -> { box, label, text }
    const rows = new Map(); // layer id -> { li, pick, visible, text }

    // ---- edits ----

    function newOverlay(id) {
      return {
        id, name: id, width: 1920, height: 1080,
        version: null, layers: [], stale: true,
        pending: new Map(), inflight: null, awaiting: null, retried: false, timer: null,
      };
    }

    function overlayFor(id) {
      let ov = overlays.get(id);
      if (!ov) { ov = newOverlay(id); overlays.set(id, ov); }
      return ov;
    }

    // Later edits win field by field: moving a layer keeps an earlier text change to it.
    function mergeEdits(target, source) {
      for (const [id, change] of source) target.set(id, { ...(target.get(id) || {}), ...change });
      return target;
    }

    function copyEdits(edits) {
      return mergeEdits(new Map(), edits);
    }

    // The layers with the edits on top; every other field stays exactly as received.
    function applyEdits(layers, edits) {
      const present = new Set();
      const out = layers.map((layer) => {
        present.add(layer.id);
        const change = edits.get(layer.id);
        if (!change) return layer;
        const next = { ...layer };
        for (const field of EDITABLE) if (field in change) next[field] = change[field];
        if ('text' in change) next.props = { ...(layer.props || {}), text: change.text };
        return next;
      });
      return { layers: out, missing: [...edits.keys()].filter((id) => !present.has(id)) };
    }

    function shownLayers(ov) {
      const edits = ov.inflight ? mergeEdits(copyEdits(ov.inflight.edits), ov.pending) : ov.pending;
      return applyEdits(ov.layers, edits).layers;
    }

    function countPending() {
      let n = 0;
      for (const ov of overlays.values()) n += (ov.pending.size > 0 ? 1 : 0) + (ov.inflight ? 1 : 0);
      status.pendingSaves = n;
    }

    function edit(ov, layerId, change) {
      if (ended || !ov.layers.some((l) => l.id === layerId)) return;
      ov.pending.set(layerId, { ...(ov.pending.get(layerId) || {}), ...change });
      // Debounced: a drag sends one save when it pauses, not one per pointer move.
      clearTimeout(ov.timer);
      ov.timer = setTimeout(() => { ov.timer = null; flush(ov); }, SAVE_DEBOUNCE_MS);
      countPending();
      if (ov.id === currentId) renderEditor();
    }

    function droppedText(ids) {
      const names = ids.map((id) => `“${id}”`).join(', ');
      return ids.length === 1
        ? `Layer ${names} was removed by someone else; your change to it was dropped.`
        : `Layers ${names} were removed by someone else; your changes to them were dropped.`;
    }

    // Sends every edit since the last save as one scene.save, when nothing else is on the wire.
    function flush(ov) {
      if (ended || ov.inflight || ov.timer || ov.awaiting !== null || ov.pending.size === 0) return;
      if (ov.stale || ov.version === null || !isOpen()) return; // the next scene.full calls again
      const { layers, missing } = applyEdits(ov.layers, ov.pending);
      // Kept for the "saved" line too, which would otherwise replace it before it is read.
      const note = missing.length ? droppedText(missing) : '';
      if (missing.length) {
        for (const id of missing) ov.pending.delete(id);
        announce(note);
      }
      if (ov.pending.size === 0) { countPending(); return; }
      refSeq += 1;
      const ref = `e${refSeq}`;
      ov.inflight = { ref, version: ov.version, edits: ov.pending, layers, note };
      ov.pending = new Map();
      countPending();
      options.save(ref, ov.id, ov.version, layers);
    }

    function errorText(error) {
      if (!error) return 'Stagehand refused.';
      if (error.code === 'scope_denied') return 'your access does not include this.';
      return typeof error.message === 'string' && error.message ? error.message : String(error.code);
    }

    function sceneResult(ov, message) {
      if (!ov || !ov.inflight || ov.inflight.ref !== message.ref) return;
      const sent = ov.inflight;
      ov.inflight = null;
      const code = message.error && message.error.code;
      if (message.ok === true) {
        ov.retried = false;
        // What we sent is now that version; its scene.full follows and says the same.
        if (Number.isFinite(message.version) && (ov.version === null || message.version > ov.version)) {
          ov.version = message.version;
          ov.layers = sent.layers;
          status.versions[ov.id] = ov.version;
        }
        announce(`Saved ${ov.name} (version ${message.version}).${sent.note ? ` ${sent.note}` : ''}`);
      } else if (code === 'version_conflict' && !ov.retried) {
        // Someone saved first. Their scene.full is on its way (or here already): the edits go
        // on top of it, ahead of anything typed since, and are saved once more.
        ov.retried = true;
        ov.pending = mergeEdits(copyEdits(sent.edits), ov.pending);
        ov.awaiting = Number.isFinite(message.currentVersion) ? message.currentVersion : sent.version + 1;
        if (ov.version !== null && ov.version >= ov.awaiting) ov.awaiting = null;
        announce(`${ov.name} was changed by someone else at the same time; applying your change on top…`);
      } else if (code === 'version_conflict') {
        ov.retried = false;
        announce(`${ov.name} keeps changing under you, so your last change was not saved. The latest version is shown.`);
      } else {
        ov.retried = false;
        announce(`Not saved: ${errorText(message.error)}`);
      }
      countPending();
      if (ov.id === currentId) renderEditor();
      flush(ov);
    }

    function receiveScene(message) {
      if (typeof message.overlayId !== 'string' || !Number.isFinite(message.version)) return;
      const ov = overlayFor(message.overlayId);
      if (ov.version !== null && message.version < ov.version) return; // we already know newer
      ov.version = message.version;
      ov.stale = false;
      const layers = message.scene && Array.isArray(message.scene.layers) ? message.scene.layers : [];
      ov.layers = layers.filter((l) => l && typeof l === 'object' && typeof l.id === 'string');
      status.versions[ov.id] = ov.version;
      if (ov.awaiting !== null && ov.version >= ov.awaiting) ov.awaiting = null;
      if (drag && drag.overlayId === ov.id && !ov.layers.some((l) => l.id === drag.layerId)) drag = null;
      if (!currentId) currentId = ov.id;
      flush(ov);
      renderOverlayChoices();
      if (ov.id === currentId) renderEditor();
    }
    // ---- overlay choices ----

    function fillSelect(select, items, keepFirst) {
      const value = select.value;
      while (select.options.length > keepFirst) select.remove(keepFirst);
      for (const ov of items) {
        const option = document.createElement('option');
        option.value = ov.id;
        option.textContent = ov.name;
        select.append(option);
      }
      if ([...select.options].some((o) => o.value === value)) select.value = value;
    }

    function renderOverlayChoices() {
      const list = [...overlays.values()];
      if (options.onOverlays) options.onOverlays(list.map(({ id, name }) => ({ id, name })));
      els.noOverlays.hidden = list.length > 0;
      els.overlayPick.hidden = list.length < 2;
      fillSelect(els.overlaySelect, list, 0);
      if (currentId) els.overlaySelect.value = currentId;
    }

    if (els.overlaySelect) {
      els.overlaySelect.addEventListener('change', () => {
        currentId = overlays.has(els.overlaySelect.value) ? els.overlaySelect.value : null;
        selectedId = null;
        drag = null;
        renderEditor();
      });
    }

    // ---- scene editor ----

    function positive(value, fallback) {
      return Number.isFinite(value) && value > 0 ? value : fallback;
    }

    function num(value, fallback = 0) {
      return Number.isFinite(value) ? value : fallback;
    }

    function clamp(value, lo, hi) {
      return Math.min(hi, Math.max(lo, value));
    }

    // Moved layers may hang off an edge (a streamer does that on purpose) but never vanish.
    function clampPosition(value, size, total) {
      return Math.round(clamp(value, Math.min(0, MIN_ON_STAGE - size), Math.max(0, total - MIN_ON_STAGE)));
    }

    function clampSize(value) {
      return Math.round(clamp(value, MIN_SIZE, MAX_COORD));
    }

    function layerText(layer) {
      return layer.props && typeof layer.props.text === 'string' ? layer.props.text : '';
    }

    function describe(layer) {
      const kind = KIND_WORDS[layer.kind] || layer.kind;
      const hidden = layer.visible === false ? ', hidden' : '';
      return `${layer.id}, ${kind}, at ${num(layer.x)}, ${num(layer.y)}, ${num(layer.w)} by ${num(layer.h)}${hidden}`;
    }

    function setIfChanged(el, prop, value) {
      if (el[prop] !== value) el[prop] = value;
    }

    // Moving a node that holds focus would drop the focus, so nodes move only when out of order.
    function keepOrder(parent, nodes) {
      const current = [...parent.children];
      if (current.length === nodes.length && current.every((n, i) => n === nodes[i])) return;
      parent.append(...nodes);
    }

    function renderEditor() {
      const ov = currentId ? overlays.get(currentId) : null;
      els.stageWrap.hidden = !ov;
      if (!ov) {
        els.overlayName.textContent = '';
        boxes.clear();
        rows.clear();
        els.stage.replaceChildren();
        els.layers.replaceChildren();
        els.geometry.hidden = true;
        return;
      }
      els.overlayName.textContent = `${ov.name} · ${ov.width} × ${ov.height}${ov.version === null ? ' · loading…' : ''}`;
      const layers = shownLayers(ov);
      if (selectedId && !layers.some((l) => l.id === selectedId)) selectedId = null;
      layoutStage(ov);
      renderBoxes(layers);
      renderRows(layers);
      renderGeometry(layers);
    }

    // As wide as the panel, but never taller than most of the window: the layers list below
    // should stay within reach on a short laptop screen.
    function layoutStage(ov) {
      const room = els.stageWrap.clientWidth || ov.width;
      const tallest = Math.max(160, window.innerHeight * 0.7);
      const width = Math.floor(Math.min(room, (tallest * ov.width) / ov.height));
      scale = width / ov.width;
      els.stage.style.width = `${width}px`;
      els.stage.style.height = `${Math.round(ov.height * scale)}px`;
    }

    function renderBoxes(layers) {
      const keep = new Set(layers.map((l) => l.id));
      for (const [id, view] of boxes) if (!keep.has(id)) { view.box.remove(); boxes.delete(id); }
      for (const layer of layers) {
        let view = boxes.get(layer.id);
        if (!view) {
          const box = document.createElement('div');
          box.className = 'box';
          box.dataset.layerId = layer.id;
          if (!ended) box.tabIndex = 0;
          const label = document.createElement('span');
          label.className = 'box-label';
          const text = document.createElement('span');
          text.className = 'box-text';
          const handle = document.createElement('span');
          handle.className = 'box-handle';
          handle.setAttribute('aria-hidden', 'true');
          box.append(label, text, handle);
          view = { box, label, text };
          boxes.set(layer.id, view);
        }
        const { box } = view;
        box.style.left = `${num(layer.x) * scale}px`;
        box.style.top = `${num(layer.y) * scale}px`;
        box.style.width = `${Math.max(1, num(layer.w) * scale)}px`;
        box.style.height = `${Math.max(1, num(layer.h) * scale)}px`;
        box.style.zIndex = String(Math.trunc(num(layer.z)));
        box.classList.toggle('is-hidden', layer.visible === false);
        box.classList.toggle('is-selected', layer.id === selectedId);
        box.classList.toggle('is-dragging', Boolean(drag && drag.layerId === layer.id));
        setIfChanged(view.label, 'textContent', `${layer.id} · ${KIND_WORDS[layer.kind] || layer.kind}`);
        setIfChanged(view.text, 'textContent', layer.kind === 'text' ? layerText(layer) : '');
        const label = describe(layer);
        if (box.getAttribute('aria-label') !== label) box.setAttribute('aria-label', label);
      }
      keepOrder(els.stage, layers.map((l) => boxes.get(l.id).box));
    }

    function renderRows(layers) {
      const keep = new Set(layers.map((l) => l.id));
      for (const [id, row] of rows) if (!keep.has(id)) { row.li.remove(); rows.delete(id); }
      for (const layer of layers) {
        let row = rows.get(layer.id);
        if (row && row.kind !== layer.kind) { row.li.remove(); rows.delete(layer.id); row = null; }
        if (!row) row = makeRow(layer);
        row.li.classList.toggle('is-selected', layer.id === selectedId);
        row.pick.setAttribute('aria-pressed', String(layer.id === selectedId));
        setIfChanged(row.visible, 'checked', layer.visible !== false);
        // Never overwrite what the moderator is typing.
        if (row.text && document.activeElement !== row.text) setIfChanged(row.text, 'value', layerText(layer));
      }
      keepOrder(els.layers, layers.map((l) => rows.get(l.id).li));
    }

    function makeRow(layer) {
      const li = document.createElement('li');
      li.className = 'layer-row';
      li.dataset.layerId = layer.id;
      const pick = document.createElement('button');
      pick.type = 'button';
      pick.className = 'layer-pick';
      pick.dataset.action = 'select';
      const name = document.createElement('span');
      name.textContent = layer.id;
      const kind = document.createElement('span');
      kind.className = 'muted';
      kind.textContent = ` · ${KIND_WORDS[layer.kind] || layer.kind}`;
      pick.append(name, kind);
      const check = document.createElement('label');
      check.className = 'layer-visible';
      const visible = document.createElement('input');
      visible.type = 'checkbox';
      visible.dataset.action = 'visible';
      visible.setAttribute('aria-label', `${layer.id} visible`);
      check.append(visible, document.createTextNode(' Visible'));
      li.append(pick, check);
      let text = null;
      if (layer.kind === 'text') {
        const field = document.createElement('label');
        field.className = 'layer-text';
        const caption = document.createElement('span');
        caption.textContent = 'Text';
        text = document.createElement('input');
        text.type = 'text';
        text.dataset.action = 'text';
        text.maxLength = 2000;
        text.setAttribute('aria-label', `Text of ${layer.id}`);
        field.append(caption, text);
        li.append(field);
      }
      if (ended) for (const el of li.querySelectorAll('input, button')) el.disabled = true;
      const row = { li, pick, visible, text, kind: layer.kind };
      rows.set(layer.id, row);
      return row;
    }

    function renderGeometry(layers) {
      const layer = layers.find((l) => l.id === selectedId);
      els.geometry.hidden = !layer;
      if (!layer) return;
      setIfChanged(els.geometryLayer, 'textContent', layer.id);
      for (const input of els.geometry.querySelectorAll('input[data-field]')) {
        if (document.activeElement === input) continue;
        setIfChanged(input, 'value', String(num(layer[input.dataset.field])));
      }
    }

    function select(layerId) {
      selectedId = layerId;
      renderEditor();
    }

    function currentLayer(layerId) {
      const ov = overlays.get(currentId);
      return ov ? shownLayers(ov).find((l) => l.id === layerId) : undefined;
    }

    if (els.layers) {
      els.layers.addEventListener('click', (event) => {
        const pick = event.target.closest('[data-action="select"]');
        if (!pick) return;
        const id = pick.closest('.layer-row').dataset.layerId;
        select(selectedId === id ? null : id);
      });
      els.layers.addEventListener('change', (event) => {
        if (event.target.dataset.action !== 'visible') return;
        const ov = overlays.get(currentId);
        if (ov) edit(ov, event.target.closest('.layer-row').dataset.layerId, { visible: event.target.checked });
      });
      els.layers.addEventListener('input', (event) => {
        if (event.target.dataset.action !== 'text') return;
        const ov = overlays.get(currentId);
        if (ov) edit(ov, event.target.closest('.layer-row').dataset.layerId, { text: event.target.value });
      });
    }

    if (els.geometry) {
      els.geometry.addEventListener('input', (event) => {
        const field = event.target.dataset.field;
        const value = Number(event.target.value);
        const ov = overlays.get(currentId);
        if (!field || !ov || !selectedId || event.target.value === '' || !Number.isFinite(value)) return;
        const limited = field === 'w' || field === 'h' ? clamp(value, MIN_SIZE, MAX_COORD) : clamp(value, -MAX_COORD, MAX_COORD);
        edit(ov, selectedId, { [field]: Math.round(limited) });
      });
    }

    // Pointer drags: move from anywhere on a box, resize from its corner handle. Screen pixels
    // become overlay pixels through the stage's scale, taken when the drag starts.
    if (els.stage) {
      els.stage.addEventListener('pointerdown', (event) => {
        const box = event.target.closest('.box');
        if (!box || ended || event.button !== 0) return;
        const layer = currentLayer(box.dataset.layerId);
        if (!layer) return;
        event.preventDefault();
        box.focus({ preventScroll: true });
        box.setPointerCapture(event.pointerId);
        drag = {
          overlayId: currentId, layerId: layer.id, pointerId: event.pointerId,
          mode: event.target.closest('.box-handle') ? 'resize' : 'move',
          startX: event.clientX, startY: event.clientY, scale,
          x: num(layer.x), y: num(layer.y), w: num(layer.w), h: num(layer.h),
        };
        select(layer.id);
      });
      els.stage.addEventListener('pointermove', (event) => {
        if (!drag || event.pointerId !== drag.pointerId) return;
        const ov = overlays.get(drag.overlayId);
        if (!ov) { drag = null; return; }
        const dx = (event.clientX - drag.startX) / drag.scale;
        const dy = (event.clientY - drag.startY) / drag.scale;
        const layer = currentLayer(drag.layerId);
        if (!layer) return;
        if (drag.mode === 'move') {
          const x = clampPosition(drag.x + dx, drag.w, ov.width);
          const y = clampPosition(drag.y + dy, drag.h, ov.height);
          if (x !== layer.x || y !== layer.y) edit(ov, drag.layerId, { x, y });
        } else {
          const w = clampSize(drag.w + dx);
          const h = clampSize(drag.h + dy);
          if (w !== layer.w || h !== layer.h) edit(ov, drag.layerId, { w, h });
        }
      });
      const endDrag = (event) => {
        if (!drag || event.pointerId !== drag.pointerId) return;
        drag = null;
        renderEditor();
      };
      els.stage.addEventListener('pointerup', endDrag);
      els.stage.addEventListener('pointercancel', endDrag);
      els.stage.addEventListener('lostpointercapture', endDrag);

      els.stage.addEventListener('focusin', (event) => {
        const box = event.target.closest('.box');
        if (box && box.dataset.layerId !== selectedId) select(box.dataset.layerId);
      });
      els.stage.addEventListener('keydown', (event) => {
        const box = event.target.closest('.box');
        const steps = { ArrowLeft: [-1, 0], ArrowRight: [1, 0], ArrowUp: [0, -1], ArrowDown: [0, 1] };
        if (!box || ended || !steps[event.key] || event.altKey || event.ctrlKey || event.metaKey) return;
        event.preventDefault();
        const ov = overlays.get(currentId);
        const layer = currentLayer(box.dataset.layerId);
        if (!ov || !layer) return;
        const step = event.shiftKey ? 10 : 1;
        const [sx, sy] = steps[event.key];
        edit(ov, layer.id, {
          x: clampPosition(num(layer.x) + sx * step, num(layer.w), ov.width),
          y: clampPosition(num(layer.y) + sy * step, num(layer.h), ov.height),
        });
      });
    }

    // The stage follows the panel's width (a phone turned sideways, a resized window).
    if (els.stageWrap) {
      let last = '';
      const relayout = () => {
        const size = `${els.stageWrap.clientWidth}x${window.innerHeight}`;
        if (size === last) return;
        last = size;
        renderEditor();
      };
      if ('ResizeObserver' in window) new ResizeObserver(relayout).observe(els.stageWrap);
      window.addEventListener('resize', relayout);
    }

    // ---- what the page's script calls ----

    // The overlays there are, as [{overlayId, name, width, height}]; others are forgotten.
    function setOverlays(list) {
      const seen = new Set();
      for (const o of Array.isArray(list) ? list : []) {
        if (!o || typeof o.overlayId !== 'string') continue;
        seen.add(o.overlayId);
        const ov = overlayFor(o.overlayId);
        ov.name = typeof o.name === 'string' && o.name ? o.name : o.overlayId;
        ov.width = positive(o.width, 1920);
        ov.height = positive(o.height, 1080);
      }
      for (const [id, ov] of overlays) {
        if (seen.has(id)) continue;
        clearTimeout(ov.timer);
        overlays.delete(id);
        delete status.versions[id];
      }
      if (!currentId || !overlays.has(currentId)) {
        currentId = overlays.size ? overlays.keys().next().value : null;
        selectedId = null;
      }
      countPending();
      renderOverlayChoices();
      renderEditor();
    }

    // A save whose answer never came may or may not have landed: its edits go back to pending
    // and are saved again (they are absolute positions, so saving twice is harmless) against the
    // scene the next connection brings.
    function connectionLost() {
      for (const ov of overlays.values()) {
        if (ov.inflight) ov.pending = mergeEdits(copyEdits(ov.inflight.edits), ov.pending);
        ov.inflight = null;
        ov.awaiting = null;
        ov.retried = false;
        ov.stale = true;
      }
      countPending();
    }

    // Access ended (the moderator's session): nothing is edited or saved any more.
    function end() {
      ended = true;
      drag = null;
      for (const ov of overlays.values()) clearTimeout(ov.timer);
      for (const { box } of boxes.values()) box.removeAttribute('tabindex');
    }

    // Puts an overlay in the editor (the streamer's "Edit scene" button).
    function show(overlayId) {
      if (!overlays.has(overlayId)) return false;
      if (currentId !== overlayId) { currentId = overlayId; selectedId = null; drag = null; }
      renderOverlayChoices();
      renderEditor();
      return true;
    }

    return {
      setOverlays,
      receiveScene,
      result: (overlayId, message) => sceneResult(overlays.get(overlayId), message),
      connectionLost,
      end,
      show,
      current: () => currentId,
    known: (overlayId) => overlays.has(overlayId),
      version: (overlayId) => (overlays.has(overlayId) ? overlays.get(overlayId).version : null),
    };
  }

  return { create };
})();
