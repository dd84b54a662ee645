// The history page (/history): ticket answers and chat sessions, paginated by the
// REST lists (limit/offset). The API has no text search, so a search fetches the
// list in pages of 500 (up to MAX_SEARCHED items) and filters here; the status
// filter is the API's own.
import { $, api, el, formatTime, initAuth, onSignedIn } from './common.js';

const PAGE = 25;
const MAX_SEARCHED = 5000;
const USER_KEY = 'ticketaid.user';

function debounce(f, ms) {
  let timer = null;
  return (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => f(...args), ms);
  };
}

function excerpt(text, n = 140) {
  const flat = String(text ?? '').replace(/\s+/g, ' ').trim();
  return flat.length > n ? `${flat.slice(0, n - 1)}…` : flat;
}

// Every item of a list endpoint, for searching (bounded).
async function fetchAll(path) {
  const items = [];
  const sep = path.includes('?') ? '&' : '?';
  for (let offset = 0; offset < MAX_SEARCHED; offset += 500) {
    const page = await api(`${path}${sep}limit=500&offset=${offset}`);
    items.push(...page.items);
    if (items.length >= page.total || page.items.length === 0) break;
  }
  return items;
}

// One paginated table: `load(offset)` returns {items, total} for the page.
function pager({ rows, range, prev, next, row, empty }) {
  let offset = 0;
  let load = null;
  let generation = 0;
  async function show() {
    const mine = ++generation;
    range.textContent = 'Loading…';
    try {
      const { items, total } = await load(offset);
      if (mine !== generation) return;
      rows.replaceChildren(...items.map(row));
      if (!items.length) rows.append(el('tr', {}, el('td', { colspan: '5', class: 'excerpt', text: empty })));
      range.textContent = total ? `${offset + 1}–${offset + items.length} of ${total}` : 'Nothing found';
      prev.disabled = offset === 0;
      next.disabled = offset + items.length >= total;
    } catch (e) {
      if (mine !== generation) return;
      rows.replaceChildren();
      range.textContent = e.text ?? String(e);
      prev.disabled = next.disabled = true;
    }
  }
  prev.addEventListener('click', () => {
    offset = Math.max(0, offset - PAGE);
    show();
  });
  next.addEventListener('click', () => {
    offset += PAGE;
    show();
  });
  return {
    reset(loader) {
      load = loader;
      offset = 0;
      return show();
    },
  };
}

// --- tickets ---

const ticketSearch = $('#ticket-search');
const ticketStatus = $('#ticket-status');
const tickets = pager({
  rows: $('#ticket-rows'),
  range: $('#ticket-range'),
  prev: $('#ticket-prev'),
  next: $('#ticket-next'),
  empty: 'No ticket answers.',
  row: (t) =>
    el('tr', { 'data-ticket': t.ticketId },
      el('td', {}, el('a', { href: `/tickets/${encodeURIComponent(t.ticketId)}`, text: t.ticketId })),
      el('td', {}, el('span', { class: `status-pill ${t.status}`, text: t.status })),
      el('td', { class: 'excerpt', text: excerpt(t.prompt) }),
      el('td', { text: t.model ?? '' }),
      el('td', {}, el('time', { datetime: t.updatedAt, text: formatTime(t.updatedAt) }))),
});

function loadTickets() {
  const status = ticketStatus.value;
  const query = ticketSearch.value.trim().toLowerCase();
  const base = `/api/tickets${status ? `?status=${encodeURIComponent(status)}` : ''}`;
  if (!query) {
    return tickets.reset(async (offset) => {
      const sep = base.includes('?') ? '&' : '?';
      return api(`${base}${sep}limit=${PAGE}&offset=${offset}`);
    });
  }
  let found = null;
  return tickets.reset(async (offset) => {
    found ??= (await fetchAll(base)).filter((t) =>
      [t.ticketId, t.prompt, t.response].some((s) => String(s ?? '').toLowerCase().includes(query)));
    return { items: found.slice(offset, offset + PAGE), total: found.length };
  });
}

ticketSearch.addEventListener('input', debounce(loadTickets, 250));
ticketStatus.addEventListener('change', loadTickets);
$('#ticket-filter').addEventListener('submit', (event) => {
  event.preventDefault();
  loadTickets();
});

// --- chats ---

const chatUser = $('#chat-user');
const chatSearch = $('#chat-search');
const chats = pager({
  rows: $('#chat-rows'),
  range: $('#chat-range'),
  prev: $('#chat-prev'),
  next: $('#chat-next'),
  empty: 'No chats for this user.',
  row: (s) => {
    const href = `/chat?user=${encodeURIComponent(s.userId)}&session=${encodeURIComponent(s.id)}`;
    return el('tr', {},
      el('td', {}, el('a', { href, text: s.title || 'Untitled chat' })),
      el('td', { text: String(s.messageCount) }),
      el('td', { text: s.model ?? '' }),
      el('td', {}, el('time', { datetime: s.lastActivity, text: formatTime(s.lastActivity) })),
      el('td', {}, el('time', { datetime: s.expiresAt, text: formatTime(s.expiresAt) })));
  },
});

function loadChats() {
  const user = chatUser.value.trim();
  if (!user) {
    $('#chat-range').textContent = 'Enter a user id.';
    return null;
  }
  try {
    localStorage.setItem(USER_KEY, user);
  } catch {
    // not remembered
  }
  const base = `/api/users/${encodeURIComponent(user)}/sessions`;
  const query = chatSearch.value.trim().toLowerCase();
  if (!query) return chats.reset((offset) => api(`${base}?limit=${PAGE}&offset=${offset}`));
  let found = null;
  return chats.reset(async (offset) => {
    found ??= (await fetchAll(base)).filter((s) => String(s.title ?? '').toLowerCase().includes(query));
    return { items: found.slice(offset, offset + PAGE), total: found.length };
  });
}

$('#chat-filter').addEventListener('submit', (event) => {
  event.preventDefault();
  loadChats();
});
chatSearch.addEventListener('input', debounce(loadChats, 250));

// --- tabs (arrow keys move between them, as ARIA's tab pattern says) ---

const tabs = [$('#tab-tickets'), $('#tab-chats')];
function select(tab) {
  for (const t of tabs) {
    const on = t === tab;
    t.setAttribute('aria-selected', String(on));
    t.tabIndex = on ? 0 : -1;
    $(`#${t.getAttribute('aria-controls')}`).hidden = !on;
  }
  history.replaceState(null, '', tab === tabs[1] ? '#chats' : '#tickets');
}
for (const [i, tab] of tabs.entries()) {
  tab.addEventListener('click', () => select(tab));
  tab.addEventListener('keydown', (event) => {
    if (event.key !== 'ArrowRight' && event.key !== 'ArrowLeft') return;
    const other = tabs[(i + (event.key === 'ArrowRight' ? 1 : tabs.length - 1)) % tabs.length];
    select(other);
    other.focus();
  });
}

function start() {
  if (location.hash === '#chats') select(tabs[1]);
  try {
    chatUser.value = localStorage.getItem(USER_KEY) ?? '';
  } catch {
    // none
  }
  loadTickets();
  if (chatUser.value) loadChats();
}

onSignedIn(start);
if (await initAuth()) start();
