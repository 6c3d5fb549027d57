// Drives headless Chromium for the Rust integration tests, so they can assert on what an overlay
// page really shows. The protocol is line based: one JSON command per line on stdin, one JSON
// result per line on stdout, and nothing else on stdout (diagnostics go to stderr). Every failure
// is an `{"ok":false,"error":...}` line; the driver itself never crashes on a bad command.
//
// Commands (`name` names a page opened by `open`; `timeout_ms` overrides the 10 s default):
//   open        {name, url, width?, height?}  -> {ok, name, version}   page connected and applied a scene
//   goto        {name, url}                    -> {ok, status, url}     any page (the panel), no overlay wait
//   eval        {name, js}                     -> {ok, value}           runs js (an expression) in the page
//   waitPath    {name, path}                   -> {ok}                  the page's location.pathname became path
//   waitText    {name, selector, text}         -> {ok}                  element's textContent contains text
//   waitAlert   {name, title}                  -> {ok, alertId}         a visible .alert whose title is exactly title
//   waitApplied {name, version}                -> {ok, applied}         page applied this version or a later one
//   waitState   {name, state}                  -> {ok, state}           page's connection state became this
//   waitTts     {name, id}                     -> {ok, started, audio}  speech id started playing (ttsStarted has it);
//                                                                       audio: the page's <audio> clips {src, paused, currentTime}
//   waitSelector {name, selector}              -> {ok}                  an element matching selector is attached
//   state       {name}                         -> {ok, state}           window.__stagehandOverlay
//   status      {url}                          -> {ok, status}          HTTP status of loading url in a fresh page
//   screenshot  {name, path, background?}      -> {ok}                  background paints the transparent page
//   close       {name}                         -> {ok}                  closes that page (its socket closes too)
//   waitEval    {name, js}                     -> {ok, value}           js (an expression) became truthy; its value
//   drag        {name, selector, dx, dy, handle?, steps?} -> {ok, from, to}  real mouse drag (pointer events) from the
//                                                                       element's centre, or from the inner element
//                                                                       matching `handle`, by dx, dy CSS pixels
//   resize      {name, width, height}          -> {ok}                  sets the page's viewport size
//   navigate    {name, url}                    -> {ok, status, url}     loads url in that page (keeps its cookies)
//   click       {name, selector}               -> {ok}                  a real click on the first visible match
//   fill        {name, selector, value}        -> {ok}                  types value into a field (replacing it)
//   check       {name, selector, checked?}     -> {ok}                  ticks (or clears) a checkbox
//   select      {name, selector, value}        -> {ok}                  picks an <option> by value
//   press       {name, selector, key}          -> {ok}                  presses a key in an element
//   clipboard   {name}                         -> {ok, text}            what the page copied to the clipboard
//   quit        {}                             -> {ok}                  closes the browser and exits 0
// End of stdin behaves like quit.

import { createInterface } from 'node:readline';
import { chromium } from 'playwright-core';

const DEFAULT_TIMEOUT_MS = 10_000;
const POLL_MS = 25;

let browserPromise = null;
const pages = new Map();

function log(...parts) {
  process.stderr.write(`[overlay-driver] ${parts.join(' ')}\n`);
}

function reply(result) {
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

// Launched on first use, so a driver that only answers `quit` never starts a browser. Never
// downloads one: the tests use the system Chromium (Debian's `chromium`) or $CHROMIUM.
function browser() {
  browserPromise ??= chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: [
      '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--disable-quic',
      '--autoplay-policy=no-user-gesture-required',
    ],
  });
  return browserPromise;
}

// Each page has its own context (its own cookies), like a separate browser profile; the clipboard
// permissions let a page's copy button write and the tests read what it wrote.
async function newPage(width = 1920, height = 1080) {
  const page = await (await browser()).newPage({
    viewport: { width, height }, permissions: ['clipboard-read', 'clipboard-write'],
  });
  page.on('console', (message) => log(`console.${message.type()}:`, message.text()));
  page.on('pageerror', (error) => log('pageerror:', error.message));
  return page;
}

function pageNamed(name) {
  const page = pages.get(name);
  if (!page) throw new Error(`no open page named ${JSON.stringify(name)}`);
  return page;
}

function required(command, ...keys) {
  for (const key of keys) {
    if (command[key] === undefined) throw new Error(`missing "${key}"`);
  }
}

// Polls on a timer rather than on animation frames so a page in the background still answers.
function waitFor(page, fn, arg, timeout) {
  return page.waitForFunction(fn, arg, { timeout, polling: POLL_MS });
}

const commands = {
  async open(command, timeout) {
    required(command, 'name', 'url');
    const old = pages.get(command.name);
    if (old) { pages.delete(command.name); await old.close().catch(() => {}); }
    const page = await newPage(command.width, command.height);
    pages.set(command.name, page);
    const response = await page.goto(command.url, { timeout, waitUntil: 'load' });
    const status = response ? response.status() : 0;
    if (status !== 200) throw new Error(`page answered HTTP ${status}`);
    try {
      await waitFor(page, () => {
        const s = window.__stagehandOverlay;
        return Boolean(s && s.state === 'open' && s.applied !== null);
      }, undefined, timeout);
    } catch (error) {
      const state = await page.evaluate(() => window.__stagehandOverlay).catch(() => null);
      throw new Error(`no scene applied within ${timeout} ms (state ${JSON.stringify(state)}): ${error.message}`);
    }
    const version = await page.evaluate(() => window.__stagehandOverlay.applied);
    return { name: command.name, version };
  },

  async goto(command, timeout) {
    required(command, 'name', 'url');
    const old = pages.get(command.name);
    if (old) { pages.delete(command.name); await old.close().catch(() => {}); }
    const page = await newPage(command.width, command.height);
    pages.set(command.name, page);
    const response = await page.goto(command.url, { timeout, waitUntil: 'load' });
    return { status: response ? response.status() : 0, url: page.url() };
  },

  async eval(command) {
    required(command, 'name', 'js');
    const value = await pageNamed(command.name).evaluate((js) => (0, eval)(js), command.js);
    return { value: value ?? null };
  },

  async waitPath(command, timeout) {
    required(command, 'name', 'path');
    await waitFor(pageNamed(command.name), (path) => location.pathname === path, command.path, timeout);
    return {};
  },

  async waitText(command, timeout) {
    required(command, 'name', 'selector', 'text');
    await waitFor(pageNamed(command.name), ({ selector, text }) => {
      const el = document.querySelector(selector);
      return Boolean(el && el.textContent.includes(text));
    }, { selector: command.selector, text: command.text }, timeout);
    return {};
  },

  async waitAlert(command, timeout) {
    required(command, 'name', 'title');
    const page = pageNamed(command.name);
    const alert = page.locator('.alert', {
      has: page.locator('.alert-title', { hasText: new RegExp(`^${escapeRegExp(command.title)}$`) }),
    }).first();
    await alert.waitFor({ state: 'visible', timeout });
    return { alertId: await alert.getAttribute('data-alert-id') };
  },

  async waitApplied(command, timeout) {
    required(command, 'name', 'version');
    const page = pageNamed(command.name);
    await waitFor(page, (version) => {
      const s = window.__stagehandOverlay;
      return Boolean(s && s.applied !== null && s.applied >= version);
    }, command.version, timeout);
    return { applied: await page.evaluate(() => window.__stagehandOverlay.applied) };
  },

  async waitState(command, timeout) {
    required(command, 'name', 'state');
    const page = pageNamed(command.name);
    await waitFor(page, (wanted) => window.__stagehandOverlay?.state === wanted, command.state, timeout);
    return { state: await page.evaluate(() => window.__stagehandOverlay) };
  },

  // The page records a speech id only once playback has really started (audio.play() resolved,
  // or SpeechSynthesis fired onstart), so this proves the clip plays, not just that it arrived.
  async waitTts(command, timeout) {
    required(command, 'name', 'id');
    const page = pageNamed(command.name);
    await waitFor(page, (id) => Boolean(window.__stagehandOverlay?.ttsStarted?.includes(id)), command.id, timeout);
    return page.evaluate(() => ({
      started: window.__stagehandOverlay.ttsStarted,
      audio: [...document.querySelectorAll('audio.tts-audio')].map((a) => ({
        src: a.getAttribute('src'), paused: a.paused, currentTime: a.currentTime,
      })),
    }));
  },

  async waitSelector(command, timeout) {
    required(command, 'name', 'selector');
    await pageNamed(command.name).waitForSelector(command.selector, { state: 'attached', timeout });
    return {};
  },

  async state(command) {
    required(command, 'name');
    return { state: await pageNamed(command.name).evaluate(() => window.__stagehandOverlay ?? null) };
  },

  // A throwaway page: a refused link has nothing to keep, and an accepted one must not linger
  // as an extra socket the test did not ask for.
  async status(command, timeout) {
    required(command, 'url');
    const page = await newPage();
    try {
      const response = await page.goto(command.url, { timeout, waitUntil: 'domcontentloaded' });
      return { status: response ? response.status() : 0 };
    } finally {
      await page.close().catch(() => {});
    }
  },

  async screenshot(command, timeout) {
    required(command, 'name', 'path');
    const page = pageNamed(command.name);
    if (command.background) {
      await page.evaluate((bg) => { document.documentElement.style.background = bg; }, command.background);
    }
    try {
      await page.screenshot({ path: command.path, timeout, omitBackground: !command.background });
    } finally {
      if (command.background) await page.evaluate(() => { document.documentElement.style.background = ''; });
    }
    return {};
  },

  async close(command) {
    required(command, 'name');
    const page = pageNamed(command.name);
    pages.delete(command.name);
    await page.close();
    return {};
  },

  // Polled from here, one evaluate per try: the panel's CSP forbids eval inside the page's own
  // timers (which is how waitForFunction polls), but not in a DevTools evaluate. A try that
  // lands on a navigation (the page changing under it) simply counts as not yet.
  async waitEval(command, timeout) {
    required(command, 'name', 'js');
    const page = pageNamed(command.name);
    const deadline = Date.now() + timeout;
    let last = null;
    for (;;) {
      try {
        const value = await page.evaluate((js) => (0, eval)(js), command.js);
        if (value) return { value };
        last = value;
      } catch (error) {
        last = error.message.split('\n')[0];
      }
      if (Date.now() >= deadline) throw new Error(`never true within ${timeout} ms: ${command.js} (last: ${JSON.stringify(last)})`);
      await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    }
  },

  // Real input events through the browser (mousedown, moves, mouseup), so the page sees the
  // same pointer events a person's mouse makes.
  async drag(command, timeout) {
    required(command, 'name', 'selector', 'dx', 'dy');
    const page = pageNamed(command.name);
    let target = page.locator(command.selector).first();
    if (command.handle) target = target.locator(command.handle).first();
    await target.scrollIntoViewIfNeeded({ timeout });
    const box = await target.boundingBox({ timeout });
    if (!box) throw new Error(`${command.selector} is not visible`);
    const from = { x: box.x + box.width / 2, y: box.y + box.height / 2 };
    const to = { x: from.x + command.dx, y: from.y + command.dy };
    await page.mouse.move(from.x, from.y);
    await page.mouse.down();
    await page.mouse.move(to.x, to.y, { steps: Number.isFinite(command.steps) ? command.steps : 8 });
    await page.mouse.up();
    return { from, to };
  },

  async navigate(command, timeout) {
    required(command, 'name', 'url');
    const page = pageNamed(command.name);
    const response = await page.goto(command.url, { timeout, waitUntil: 'load' });
    return { status: response ? response.status() : 0, url: page.url() };
  },

  async click(command, timeout) {
    required(command, 'name', 'selector');
    await pageNamed(command.name).locator(command.selector).first().click({ timeout });
    return {};
  },

  async fill(command, timeout) {
    required(command, 'name', 'selector', 'value');
    await pageNamed(command.name).locator(command.selector).first().fill(String(command.value), { timeout });
    return {};
  },

  async check(command, timeout) {
    required(command, 'name', 'selector');
    await pageNamed(command.name).locator(command.selector).first()
      .setChecked(command.checked !== false, { timeout });
    return {};
  },

  async select(command, timeout) {
    required(command, 'name', 'selector', 'value');
    await pageNamed(command.name).locator(command.selector).first().selectOption(String(command.value), { timeout });
    return {};
  },

  async press(command, timeout) {
    required(command, 'name', 'selector', 'key');
    await pageNamed(command.name).locator(command.selector).first().press(command.key, { timeout });
    return {};
  },

  async clipboard(command) {
    required(command, 'name');
    return { text: await pageNamed(command.name).evaluate(() => navigator.clipboard.readText()) };
  },

  async resize(command) {
    required(command, 'name', 'width', 'height');
    await pageNamed(command.name).setViewportSize({ width: command.width, height: command.height });
    return {};
  },
};

function escapeRegExp(text) {
  return String(text).replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

let shuttingDown = false;
async function shutdown(code) {
  if (shuttingDown) return;
  shuttingDown = true;
  if (browserPromise) {
    try { await (await browserPromise).close(); } catch (error) { log('closing browser:', error.message); }
  }
  // Exit only once the last result line has left, or the test could miss it.
  process.stdout.write('', () => process.exit(code));
}

async function run(line) {
  let command;
  try {
    command = JSON.parse(line);
  } catch (error) {
    return reply({ ok: false, error: `not JSON: ${error.message}` });
  }
  if (!command || typeof command !== 'object') return reply({ ok: false, error: 'a command is a JSON object' });
  if (command.cmd === 'quit') {
    if (browserPromise) await (await browserPromise.catch(() => null))?.close().catch(() => {});
    browserPromise = null;
    reply({ ok: true });
    return shutdown(0);
  }
  const handler = Object.hasOwn(commands, command.cmd) ? commands[command.cmd] : null;
  if (!handler) return reply({ ok: false, error: `unknown cmd ${JSON.stringify(command.cmd)}` });
  const timeout = Number.isFinite(command.timeout_ms) ? command.timeout_ms : DEFAULT_TIMEOUT_MS;
  try {
    reply({ ok: true, ...(await handler(command, timeout)) });
  } catch (error) {
    const message = error && error.message ? error.message.split('\n')[0] : String(error);
    log(`${command.cmd} failed:`, error && error.stack ? error.stack : message);
    reply({ ok: false, error: `${command.cmd}: ${message}` });
  }
  return undefined;
}

// A test that stops reading (it failed, or was killed) must not leave Chromium behind.
process.stdout.on('error', () => shutdown(1));

// Commands run one at a time, in order, so each result line answers the command before it.
const input = createInterface({ input: process.stdin, crlfDelay: Infinity });
let queue = Promise.resolve();
input.on('line', (line) => {
  if (!line.trim()) return;
  queue = queue.then(() => run(line));
});
input.on('close', () => { queue = queue.then(() => shutdown(0)); });
