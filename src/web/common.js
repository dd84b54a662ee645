// Shared by the console's pages: the access token, REST calls with plain-word errors,
// DOM building without HTML strings, formatting, and the sign-in form in the header.
//
// The token (auth.mode api_key or jwt) comes from the helpdesk's link (#token=... or
// ?token=..., removed from the address bar at once) or from the sign-in field, and
// is kept in sessionStorage (this tab only, gone when it closes), or in memory when
// storage is unavailable. Fetches send it as Authorization: Bearer; WebSockets as
// ?token= (browsers cannot set headers on them).
import { describeError } from './ticketaid-client.js';

const TOKEN_KEY = 'ticketaid.token';
let memoryToken = null;

export function token() {
  try {
    return sessionStorage.getItem(TOKEN_KEY) ?? memoryToken;
  } catch {
    return memoryToken;
  }
}

export function setToken(value) {
  memoryToken = value || null;
  try {
    if (value) sessionStorage.setItem(TOKEN_KEY, value);
    else sessionStorage.removeItem(TOKEN_KEY);
  } catch {
    // storage disabled: the token lives in memory, for this page only
  }
}

// #token=... or ?token=... in the link: kept, and removed from the address bar (and
// so from the history and from bookmarks).
export function takeTokenFromLink() {
  const url = new URL(location.href);
  const hash = new URLSearchParams(url.hash.slice(1));
  const found = hash.get('token') ?? url.searchParams.get('token');
  if (!found) return;
  setToken(found);
  hash.delete('token');
  url.searchParams.delete('token');
  url.hash = hash.toString();
  history.replaceState(history.state, '', url);
}

export class ApiError extends Error {
  constructor(status, error) {
    super(error?.message ?? `HTTP ${status}`);
    this.status = status;
    this.code = error?.code ?? (status === 401 ? 'unauthorized' : 'internal');
    this.retryAfterMs = error?.retryAfterMs;
    this.text = describeError({ code: this.code, message: this.message, retryAfterMs: this.retryAfterMs });
  }
}

// A REST call: JSON in and out, the token attached; errors become ApiError.
export async function api(path, { method = 'GET', body, signal, accept } = {}) {
  const headers = { Accept: accept ?? 'application/json' };
  const t = token();
  if (t) headers.Authorization = `Bearer ${t}`;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  let response;
  try {
    response = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      signal,
      cache: 'no-store',
    });
  } catch (e) {
    if (e?.name === 'AbortError') throw e;
    throw new ApiError(0, { code: 'disconnected', message: 'ticketaid cannot be reached' });
  }
  if (response.status === 204) return null;
  const type = response.headers.get('Content-Type') ?? '';
  const payload = type.includes('json') ? await response.json().catch(() => null) : await response.text();
  if (!response.ok) {
    if (response.status === 401) signInNeeded();
    throw new ApiError(response.status, payload?.error);
  }
  return payload;
}

// el('p', {class: 'hint', text: 'Hello'}, child, ...): elements without HTML strings.
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value == null || value === false) continue;
    if (key === 'text') node.textContent = value;
    else if (key === 'class') node.className = value;
    else if (key.startsWith('on')) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? '' : String(value));
  }
  for (const child of children) {
    if (child != null) node.append(child);
  }
  return node;
}

export function $(selector, root = document) {
  return root.querySelector(selector);
}

const dateTime = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' });

export function formatTime(iso) {
  if (!iso) return '';
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? String(iso) : dateTime.format(d);
}

export function formatDuration(ms) {
  if (ms == null) return '';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60000) return `${(ms / 1000).toFixed(1)} s`;
  return `${Math.floor(ms / 60000)} min ${Math.round((ms % 60000) / 1000)} s`;
}

export function formatNumber(n, digits = 0) {
  if (n == null || Number.isNaN(n)) return '–';
  return n.toLocaleString(undefined, { maximumFractionDigits: digits, minimumFractionDigits: digits });
}

export function formatBytes(n) {
  if (n == null) return '';
  const units = ['B', 'KB', 'MB', 'GB', 'TB'];
  let i = 0;
  while (n >= 1000 && i < units.length - 1) {
    n /= 1000;
    i += 1;
  }
  return `${n.toFixed(i === 0 ? 0 : 1)} ${units[i]}`;
}

// "the model llama3.2 · 212 tokens · 4.1 s" from a done frame or a stored message.
export function describeStats(stats) {
  const parts = [];
  if (stats.model) parts.push(stats.model);
  if (stats.responseTokens != null) parts.push(`${formatNumber(stats.responseTokens)} tokens`);
  if (stats.durationMs != null) parts.push(formatDuration(stats.durationMs));
  return parts.join(' · ');
}

// Ctrl+Enter (or Cmd+Enter) in a textarea submits its form.
export function submitOnCtrlEnter(textarea) {
  textarea.addEventListener('keydown', (event) => {
    if (event.key === 'Enter' && (event.ctrlKey || event.metaKey)) {
      event.preventDefault();
      textarea.form?.requestSubmit();
    }
  });
}

// --- sign-in (header) ---

let authListeners = [];

// Called by a page with what to do once credentials work (again).
export function onSignedIn(listener) {
  authListeners.push(listener);
}

function signInNeeded(message) {
  const box = $('#auth');
  if (!box) return;
  box.hidden = false;
  $('#auth-form').hidden = false;
  $('#auth-signout').hidden = true;
  $('#auth-note').textContent =
    message ?? (token() ? 'The access token was refused.' : 'Sign in with your access token.');
}

function signedIn() {
  const box = $('#auth');
  if (!box) return;
  $('#auth-form').hidden = true;
  $('#auth-signout').hidden = !token();
  $('#auth-note').textContent = token() ? 'Signed in' : '';
  box.hidden = !token();
}

// Takes a token from the link, asks the daemon whether access works, and wires the
// sign-in form. Resolves to true when requests are allowed (with or without a token).
export async function initAuth() {
  takeTokenFromLink();
  $('#auth-form')?.addEventListener('submit', async (event) => {
    event.preventDefault();
    const input = $('#auth-token');
    setToken(input.value.trim());
    input.value = '';
    if (await checkAccess()) {
      signedIn();
      for (const listener of authListeners) listener();
    }
  });
  $('#auth-signout')?.addEventListener('click', () => {
    setToken(null);
    signInNeeded('Signed out.');
  });
  const ok = await checkAccess();
  if (ok) signedIn();
  return ok;
}

async function checkAccess() {
  try {
    await api('/api/tickets?limit=1');
    return true;
  } catch (e) {
    if (e.status !== 401) return true; // another failure: the page reports it
    signInNeeded();
    return false;
  }
}

export { describeError };
