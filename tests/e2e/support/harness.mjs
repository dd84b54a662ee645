// What the browser tests stand on: the real daemon and the fake Ollama as child
// processes (port 0, learned from their "listening on" lines), Debian's Chromium
// driven by playwright-core, a TCP proxy whose connections a test can cut, condition
// waits, and screenshots saved as artifacts.
//
// Environment (set by tests/e2e/CMakeLists.txt; defaults fit a build in build/):
//   TICKETAID_TEST_E2E_BINARY       the ticketaid binary
//   TICKETAID_TEST_E2E_FAKE_OLLAMA  the fake_ollama binary
//   TICKETAID_TEST_E2E_MODULES      the directory whose node_modules holds playwright-core
//   TICKETAID_TEST_E2E_ARTIFACTS    where screenshots go
//   TICKETAID_TEST_E2E_CHROMIUM     the browser (/usr/bin/chromium)
import { spawn } from 'node:child_process';
import { after, before } from 'node:test';
import { existsSync, mkdtempSync, mkdirSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const source = resolve(here, '../../..');
const env = process.env;
export const paths = {
  binary: env.TICKETAID_TEST_E2E_BINARY ?? join(source, 'build/src/ticketaid'),
  fakeOllama: env.TICKETAID_TEST_E2E_FAKE_OLLAMA ?? join(source, 'build/tests/fake_ollama'),
  modules: env.TICKETAID_TEST_E2E_MODULES ?? resolve(here, '..'),
  artifacts: env.TICKETAID_TEST_E2E_ARTIFACTS ?? join(source, 'build/tests/e2e/artifacts'),
  chromium: env.TICKETAID_TEST_E2E_CHROMIUM ?? '/usr/bin/chromium',
};

const require = createRequire(join(paths.modules, 'package.json'));
const { chromium } = require('playwright-core');

// --- processes ---

const children = new Set();
process.on('exit', () => {
  for (const child of children) child.kill('SIGKILL');
});

// Starts a program and resolves once a line of its standard output matches `ready`.
function launch(command, args, { ready, env: extraEnv = {}, stdin = 'ignore', timeoutMs = 15000 }) {
  const child = spawn(command, args, {
    stdio: [stdin, 'pipe', 'pipe'],
    env: { PATH: env.PATH, HOME: env.HOME ?? tmpdir(), ...extraEnv },
  });
  children.add(child);
  const stderr = [];
  child.stderr.on('data', (d) => stderr.push(d));
  const lines = [];
  const waiters = [];
  let buffer = '';
  child.stdout.on('data', (d) => {
    buffer += d;
    let nl;
    while ((nl = buffer.indexOf('\n')) >= 0) {
      const line = buffer.slice(0, nl);
      buffer = buffer.slice(nl + 1);
      const waiter = waiters.shift();
      if (waiter) waiter(line);
      else lines.push(line);
    }
  });
  const exited = new Promise((r) => child.once('exit', (code, signal) => {
    children.delete(child);
    r({ code, signal });
  }));
  const nextLine = () =>
    lines.length ? Promise.resolve(lines.shift()) : new Promise((r) => waiters.push(r));
  const started = (async () => {
    const timeout = new Promise((_, reject) =>
      setTimeout(() => reject(new Error(`${command} did not start: ${Buffer.concat(stderr)}`)), timeoutMs).unref());
    const died = exited.then(({ code }) => {
      throw new Error(`${command} exited (${code}) before it was ready: ${Buffer.concat(stderr)}`);
    });
    while (true) {
      const line = await Promise.race([nextLine(), timeout, died]);
      const m = ready.exec(line);
      if (m) return m;
    }
  })();
  return {
    child,
    started,
    nextLine,
    exited,
    stderr: () => Buffer.concat(stderr).toString(),
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(t);
    },
  };
}

// The fake Ollama, scripted through its standard input (--control-stdin).
export async function startFakeOllama({ port = 0 } = {}) {
  const p = launch(paths.fakeOllama, ['--port', String(port), '--control-stdin'], {
    ready: /listening on (http:\/\/127\.0\.0\.1:(\d+))/,
    stdin: 'pipe',
  });
  const m = await p.started;
  let queue = Promise.resolve();
  const command = (object) => {
    queue = queue.then(async () => {
      p.child.stdin.write(`${JSON.stringify(object)}\n`);
      const answer = await p.nextLine();
      if (answer !== 'ok') throw new Error(`fake ollama: ${answer}`);
    });
    return queue;
  };
  return {
    url: m[1],
    port: Number(m[2]),
    // {reply, tokenDelayMs, firstTokenDelayMs, fault, faultAfterTokens}: the next chats.
    script: (s) => command(s),
    release: () => command({ release: true }),
    models: (list) => command({ models: list }),
    stop: () => p.stop(),
  };
}

// The daemon on 127.0.0.1 port 0 with a fresh database; limits lifted so that the
// tests' few pages (one user: 127.0.0.1) are never refused.
export async function startDaemon({ ollamaUrl, env: extra = {}, args = [] }) {
  const dir = mkdtempSync(join(tmpdir(), 'ticketaid-e2e-'));
  const p = launch(
    paths.binary,
    ['serve', '--listen', '127.0.0.1:0', '--db', join(dir, 'ticketaid.db'), '--ollama-url', ollamaUrl,
      '--log-level', 'warn', ...args],
    {
      ready: /ticketaid listening on (http:\/\/127\.0\.0\.1:(\d+))/,
      env: {
        TICKETAID_LIMITS_MAX_CONNECTIONS_PER_USER: '1000',
        TICKETAID_RATE_LIMIT_MESSAGES_PER_MINUTE: '100000',
        TICKETAID_SERVER_DRAIN_TIMEOUT_S: '0',
        TICKETAID_OLLAMA_PROBE_INTERVAL_S: '1',
        ...extra,
      },
    },
  );
  const m = await p.started;
  return {
    url: m[1],
    port: Number(m[2]),
    stderr: p.stderr,
    async stop() {
      await p.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

// A TCP proxy in front of the daemon; cut() drops every connection through it at
// once, as a network failure would (the browser sees an abnormal close, 1006), and
// block(true) drops new ones as they arrive (the network is still down).
export async function startProxy(targetPort) {
  const sockets = new Set();
  let connections = 0;
  let blocked = false;
  const server = net.createServer((client) => {
    if (blocked) {
      client.destroy();
      return;
    }
    connections += 1;
    const upstream = net.connect(targetPort, '127.0.0.1');
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
      s.on('error', () => s.destroy());
    }
    client.pipe(upstream);
    upstream.pipe(client);
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const port = server.address().port;
  return {
    url: `http://127.0.0.1:${port}`,
    connections: () => connections,
    block(on) {
      blocked = on;
    },
    cut() {
      for (const s of sockets) s.resetAndDestroy ? s.resetAndDestroy() : s.destroy();
    },
    close: () => {
      for (const s of sockets) s.destroy();
      return new Promise((r) => server.close(r));
    },
  };
}

// --- the browser ---

export async function launchBrowser() {
  if (!existsSync(paths.chromium)) {
    throw new Error(`no browser at ${paths.chromium}: install Debian's chromium (apt-get install chromium, ` +
      'as .ci/deps does), or point TICKETAID_TEST_E2E_CHROMIUM at one');
  }
  return chromium.launch({
    executablePath: paths.chromium,
    headless: true,
    // Debian's Chromium on these machines: no sandbox (root), no GPU, and none of
    // the background connections that a closed network refuses. playwright-core
    // gives each launch a fresh, empty --user-data-dir.
    args: [
      '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
    ],
  });
}

// A page with its problems recorded: uncaught exceptions, and violations of the
// Content-Security-Policy or Trusted Types. Chromium also reports the handler and
// style attributes it meets while DOMPurify parses untrusted HTML into an inert
// document (DOMParser, called from the DOMPurify file); nothing there can run, so
// those are counted apart (window.__inertViolations), not as problems.
// problems() returns them all; no test expects any.
export async function openPage(browser, { colorScheme = 'light', viewport = { width: 1280, height: 860 } } = {}) {
  const context = await browser.newContext({ colorScheme, viewport, reducedMotion: 'reduce' });
  await context.addInitScript(() => {
    window.__policyViolations = [];
    window.__inertViolations = 0;
    document.addEventListener('securitypolicyviolation', (e) => {
      if (/\/static\/vendor\/purify-[^/]+\.js$/.test(e.sourceFile)) window.__inertViolations += 1;
      else window.__policyViolations.push(`${e.violatedDirective} at ${e.sourceFile}:${e.lineNumber}: ${e.blockedURI || e.sample}`);
    }, true);
  });
  const page = await context.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(`uncaught: ${e.message}`));
  page.setDefaultTimeout(15000);
  const problems = async () => [
    ...errors,
    ...(await page.evaluate(() => window.__policyViolations ?? []).catch(() => [])),
  ];
  return { context, page, problems };
}

export async function screenshot(page, name) {
  mkdirSync(paths.artifacts, { recursive: true });
  const file = join(paths.artifacts, `${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  return file;
}

// Polls `condition` (sync or async) until it returns a truthy value, which it returns.
export async function waitFor(condition, { timeout = 15000, interval = 50, message = 'condition' } = {}) {
  const deadline = Date.now() + timeout;
  let last;
  while (Date.now() < deadline) {
    try {
      last = await condition();
      if (last) return last;
    } catch (e) {
      last = e;
    }
    await new Promise((r) => setTimeout(r, interval));
  }
  throw new Error(`timed out waiting for ${message} (last: ${last})`);
}

// The answer element's text and state, as the console shows them.
export async function answerOf(page) {
  return page.locator('#answer').evaluate((a) => ({
    text: a.innerText,
    state: a.dataset.state,
    replayed: Number(a.dataset.replayed ?? 0),
    cursor: a.querySelector('.cursor') !== null,
  }));
}

// What a test file runs against, started before its tests and stopped after them:
// the fake Ollama, a daemon asking it (with `env` added), and optionally a TCP proxy
// in front of the daemon and the browser. Its fields are set once the tests run.
export function useStack({ env = {}, proxy = false, browser = true } = {}) {
  const stack = {};
  before(async () => {
    stack.fake = await startFakeOllama();
    stack.daemon = await startDaemon({ ollamaUrl: stack.fake.url, env });
    if (proxy) stack.proxy = await startProxy(stack.daemon.port);
    if (browser) stack.browser = await launchBrowser();
  });
  after(async () => {
    await stack.browser?.close();
    await stack.proxy?.close();
    await stack.daemon?.stop();
    await stack.fake?.stop();
  });
  return stack;
}
