// The Overlays page: create, rename, delete, Add to OBS, the live preview, and the shared scene
// editor (scene-editor.js) saving through PUT /api/overlays/{id}/scene. Everything goes through
// the JSON API; lists come back from the server (Stagehand.refresh).
'use strict';

(() => {
  const S = window.Stagehand;
  const { $ } = S;
  const status = { versions: {}, pendingSaves: 0, lastSave: null };
  window.__stagehandOverlays = status;

  const path = (id) => `/api/overlays/${encodeURIComponent(id)}/scene`;

  function rows() {
    return [...document.querySelectorAll('.overlay-row')];
  }

  function rowOf(id) {
    return rows().find((r) => r.dataset.overlayId === id) || null;
  }

  // ---- the editor ----

  const editor = window.StagehandSceneEditor.create({
    root: $('editor'),
    status,
    announce: S.say,
    isOpen: () => true,
    save(ref, overlayId, version, layers) {
      S.api('PUT', path(overlayId), { version, scene: { layers } }).then((saved) => {
        status.lastSave = { ok: true, version: saved.version };
        editor.result(overlayId, { ref, ok: true, version: saved.version });
        editor.receiveScene({ overlayId, version: saved.version, scene: saved.scene });
      }, (error) => {
        status.lastSave = { ok: false, code: error.code };
        const currentVersion = error.details && error.details.currentVersion;
        editor.result(overlayId, {
          ref, ok: false, error: { code: error.code, message: error.message }, currentVersion,
        });
        if (error.code === 'version_conflict') loadScene(overlayId);
        else if (error.status === 0) S.problem(error);
      });
    },
  });

  async function loadScene(overlayId) {
    try {
      const scene = await S.api('GET', path(overlayId));
      editor.receiveScene({ overlayId, version: scene.version, scene: scene.scene });
    } catch (error) {
      if (error.status !== 404) S.problem(error);
    }
  }

  // The editor follows the list the server rendered; scenes it has not seen are loaded.
  function syncEditor() {
    const list = rows().map((r) => ({
      overlayId: r.dataset.overlayId, name: r.dataset.name,
      width: Number(r.dataset.width), height: Number(r.dataset.height),
    }));
    editor.setOverlays(list);
    for (const o of list) if (editor.version(o.overlayId) === null) loadScene(o.overlayId);
    const add = $('add-text');
    if (add) add.hidden = list.length === 0;
  }

  // A new text layer on the overlay in the editor, saved at once (the editor then edits it).
  let textSeq = 0;
  const addText = $('add-text');
  if (addText) {
    addText.addEventListener('click', () => {
      const id = editor.current();
      if (!id) return;
      S.busy(addText, 'Adding a text layer…', async () => {
        const scene = await S.api('GET', path(id));
        const layers = Array.isArray(scene.scene.layers) ? scene.scene.layers : [];
        let layerId;
        do { textSeq += 1; layerId = `text-${textSeq}`; } while (layers.some((l) => l.id === layerId));
        const top = layers.reduce((z, l) => Math.max(z, Number(l.z) || 0), 0);
        layers.push({
          id: layerId, kind: 'text', x: 80, y: 80, w: 640, h: 120, z: top + 1, visible: true,
          style: { color: '#ffffff', fontSize: 48, fontWeight: '700' }, props: { text: 'New text' },
        });
        const saved = await S.api('PUT', path(id), { version: scene.version, scene: { layers } });
        editor.receiveScene({ overlayId: id, version: saved.version, scene: saved.scene });
        S.say(`Added text layer “${layerId}”. Type its words in the Layers list.`);
      });
    });
  }

  // ---- create ----

  const create = $('overlay-create');
  create.addEventListener('submit', (event) => {
    event.preventDefault();
    const name = $('new-name').value.trim();
    if (!name) { S.problem({ code: 'invalid_fields', message: 'Give the overlay a name first' }); return; }
    const [width, height] = $('new-size').value.split('x').map(Number);
    const button = create.querySelector('button[type="submit"]');
    S.busy(button, 'Creating the overlay…', async () => {
      const made = await S.api('POST', '/api/overlays', { name, width, height });
      $('new-name').value = '';
      await S.refresh();
      S.say(`Created “${made.name}”. Copy its link, or add it to OBS.`);
      const row = rowOf(made.overlayId);
      if (row) row.querySelector('[data-action="copy"]').focus();
      editor.show(made.overlayId);
    });
  });

  // ---- per overlay ----

  async function addToObs(row, button, where) {
    const id = row.dataset.overlayId;
    // Which OBS scene: asked when there is more than one, the one on air chosen first.
    const scenes = await S.busy(button, 'Asking OBS for its scenes…',
      () => S.api('GET', '/api/obs/scenes'), where);
    if (!scenes) return;
    const current = typeof scenes.current === 'string' ? scenes.current : null;
    const names = Array.isArray(scenes.scenes) ? scenes.scenes.filter((n) => typeof n === 'string') : [];
    const scene = names.length > 1
      ? await S.choose(`Add “${row.dataset.name}” to which OBS scene?`, names, current, 'Add to OBS')
      : (names[0] || current);
    if (!scene) return;
    await S.busy(button, 'Adding to OBS…', async () => {
      const made = await S.api('POST', '/api/obs/sources', { scene, overlayId: id });
      const text = made.created
        ? `Added to the OBS scene “${scene}” as “${made.name}”.`
        : `Updated “${made.name}” in the OBS scene “${scene}”.`;
      where.textContent = text;
      S.say(text);
    }, where);
  }

  async function rename(row, button) {
    const name = await S.ask('New name for the overlay', row.dataset.name, 'Rename');
    if (!name || name === row.dataset.name) return;
    await S.busy(button, 'Renaming…', async () => {
      await S.api('PATCH', `/api/overlays/${encodeURIComponent(row.dataset.overlayId)}`, { name });
      await S.refresh();
      S.say(`Renamed to “${name}”.`);
    });
  }

  async function remove(row, button) {
    const name = row.dataset.name;
    const ok = await S.confirm(
      `Delete “${name}”? OBS sources showing it go blank, and its link stops working. This cannot be undone.`,
      'Delete overlay',
    );
    if (!ok) { S.say('Nothing deleted.'); return; }
    await S.busy(button, `Deleting “${name}”…`, async () => {
      await S.api('DELETE', `/api/overlays/${encodeURIComponent(row.dataset.overlayId)}`);
      if (preview.dataset.overlayId === row.dataset.overlayId) closePreview();
      await S.refresh();
      S.say(`Deleted “${name}”.`);
      $('new-name').focus();
    });
  }

  // ---- preview ----

  const preview = $('preview');
  const previewCard = $('preview-card');

  function layoutPreview() {
    const w = Number(preview.dataset.width) || 1920;
    const h = Number(preview.dataset.height) || 1080;
    const room = $('preview-wrap').clientWidth || w;
    const scale = Math.min(1, room / w);
    preview.style.width = `${w}px`;
    preview.style.height = `${h}px`;
    preview.style.transform = `scale(${scale})`;
    $('preview-wrap').style.height = `${Math.round(h * scale)}px`;
  }

  function openPreview(row) {
    const link = row.querySelector('input.mono');
    preview.dataset.overlayId = row.dataset.overlayId;
    preview.dataset.width = row.dataset.width;
    preview.dataset.height = row.dataset.height;
    $('preview-name').textContent = row.dataset.name;
    previewCard.hidden = false;
    layoutPreview();
    preview.src = link.value;
    previewCard.scrollIntoView({ block: 'nearest' });
    $('preview-close').focus();
  }

  function closePreview() {
    preview.src = 'about:blank';
    delete preview.dataset.overlayId;
    previewCard.hidden = true;
  }

  $('preview-close').addEventListener('click', closePreview);
  window.addEventListener('resize', () => { if (!previewCard.hidden) layoutPreview(); });

  document.addEventListener('click', (event) => {
    const button = event.target.closest('.overlay-row [data-action]');
    if (!button) return;
    const row = button.closest('.overlay-row');
    const where = row.querySelector('.row-status');
    switch (button.dataset.action) {
      case 'add-to-obs': addToObs(row, button, where); break;
      case 'rename': rename(row, button); break;
      case 'delete': remove(row, button); break;
      case 'preview': openPreview(row); break;
      case 'edit':
        editor.show(row.dataset.overlayId);
        $('editor').scrollIntoView({ block: 'start' });
        $('editor-h').setAttribute('tabindex', '-1');
        $('editor-h').focus();
        break;
      default: break;
    }
  });

  // ---- live figures ----

  function pagesText(n) {
    if (n === 0) return 'not open anywhere';
    return n === 1 ? 'open in 1 place' : `open in ${n} places`;
  }

  function showPages(overlayId, n) {
    const row = rowOf(overlayId);
    const badge = row && row.querySelector('[data-pages]');
    if (badge && badge.dataset.pages !== String(n)) {
      badge.dataset.pages = String(n);
      badge.textContent = pagesText(n);
      badge.className = n > 0 ? 'badge ok' : 'badge';
    }
  }

  async function updatePages() {
    let figures;
    try { figures = await S.api('GET', '/api/metrics/realtime'); } catch { return; }
    for (const row of rows()) {
      const list = figures && figures.overlays && figures.overlays[row.dataset.overlayId];
      showPages(row.dataset.overlayId, Array.isArray(list) ? list.length : 0);
    }
  }
  // Pages come and go as `overlay.pages` events; the slow poll (and a fetch whenever the
  // event socket opens) covers events missed while it was closed.
  setInterval(updatePages, 60 * 1000);

  // Someone else saved (a moderator, another window, the API): load the newer scene.
  S.events((event) => {
    if (event.type === 'overlay.pages' && event.data) {
      showPages(event.data.overlayId, Number(event.data.pages) || 0);
      return;
    }
    if (event.type !== 'scene.updated' || !event.data) return;
    const { overlayId, version } = event.data;
    const known = editor.version(overlayId);
    if (editor.known(overlayId) && (known === null || version > known)) loadScene(overlayId);
  }, (open) => { if (open) updatePages(); });

  document.addEventListener('stagehand:refreshed', syncEditor);
  syncEditor();
})();
