// The chat page (/chat): a user's multi-turn sessions. The list and the history come
// over REST; messages are sent and replies stream over /ws/sessions/{id} through the
// client library. /chat?user=ana&session=ID opens one directly.
import { openChat } from './ticketaid-client.js';
import {
  $, api, el, describeStats, initAuth, onSignedIn, submitOnCtrlEnter, token,
} from './common.js';
import { appendMessage, replyHandlers } from './thread.js';

const USER_KEY = 'ticketaid.user';

const ui = {
  userForm: $('#user-form'),
  user: $('#user-id'),
  sessions: $('#sessions'),
  sessionsNote: $('#sessions-note'),
  newForm: $('#new-form'),
  newTitle: $('#new-title'),
  title: $('#chat-title'),
  conn: $('#conn'),
  del: $('#delete-chat'),
  empty: $('#chat-empty'),
  error: $('#chat-error'),
  errorText: $('#chat-error-text'),
  log: $('#chat-log'),
  compose: $('#compose'),
  message: $('#message'),
  send: $('#send'),
  stop: $('#stop'),
};

let chat = null; // ChatConnection of the open session
let openId = null;
let busy = false;

// The user a token names (a JWT's sub), for the default user id.
function tokenUser() {
  const t = token();
  if (!t || t.split('.').length !== 3) return null;
  try {
    const payload = JSON.parse(atob(t.split('.')[1].replace(/-/g, '+').replace(/_/g, '/')));
    return typeof payload.sub === 'string' ? payload.sub : null;
  } catch {
    return null;
  }
}

function userId() {
  return ui.user.value.trim();
}

function showError(text) {
  ui.error.hidden = !text;
  ui.errorText.textContent = text ?? '';
}

function setBusy(value) {
  busy = value;
  ui.send.disabled = value;
  ui.stop.disabled = !value;
}

async function loadSessions() {
  const user = userId();
  if (!user) return;
  try {
    localStorage.setItem(USER_KEY, user);
  } catch {
    // not remembered
  }
  ui.sessionsNote.textContent = 'Loading…';
  try {
    const page = await api(`/api/users/${encodeURIComponent(user)}/sessions?limit=100`);
    ui.sessions.replaceChildren(
      ...page.items.map((s) =>
        el('li', {},
          el('button', {
            type: 'button',
            'aria-current': s.id === openId ? 'true' : null,
            'data-session': s.id,
            onclick: () => openSession(s.id, s.title),
          },
          el('span', { text: s.title || 'Untitled chat' }),
          el('span', { class: 'count', text: `${s.messageCount} msg` })))),
    );
    ui.sessionsNote.textContent = page.total ? '' : 'No chats yet.';
  } catch (e) {
    ui.sessionsNote.textContent = e.text;
  }
}

async function openSession(id, title) {
  chat?.close();
  openId = id;
  showError(null);
  ui.title.textContent = title || 'Untitled chat';
  ui.empty.hidden = true;
  ui.compose.hidden = false;
  ui.del.hidden = false;
  ui.log.replaceChildren();
  for (const b of ui.sessions.querySelectorAll('button')) {
    b.setAttribute('aria-current', String(b.dataset.session === id));
  }
  const url = new URL(location.href);
  url.searchParams.set('session', id);
  if (userId()) url.searchParams.set('user', userId());
  history.replaceState(null, '', url);
  try {
    const page = await api(`/api/sessions/${encodeURIComponent(id)}/messages?limit=500`);
    for (const m of page.items) appendMessage(ui.log, m.role, m.content, m.role === 'assistant' ? describeStats(m) : null);
    scrollDown();
  } catch (e) {
    showError(e.text);
  }
  chat = openChat(id, { onStatus: showConnection, onError: (e) => showError(e.text) }, {
    baseUrl: location.origin,
    token: () => token(),
  });
  ui.message.focus();
}

function showConnection(state, detail) {
  ui.conn.classList.toggle('lost', state === 'reconnecting');
  ui.conn.textContent =
    state === 'reconnecting' ? `Connection lost; reconnecting in ${Math.max(1, Math.round(detail.delayMs / 1000))} s…` : '';
}

function scrollDown() {
  ui.log.scrollTop = ui.log.scrollHeight;
}

function send(text) {
  setBusy(true);
  chat.send(text, replyHandlers(ui.log, text, {
    onEnd: (ok) => {
      setBusy(false);
      if (ok) loadSessions();
    },
    onStatus: showConnection,
    onProgress: scrollDown,
  }));
  scrollDown();
}

ui.userForm.addEventListener('submit', (event) => {
  event.preventDefault();
  loadSessions();
});

ui.newForm.addEventListener('submit', async (event) => {
  event.preventDefault();
  if (!userId()) {
    ui.user.focus();
    ui.sessionsNote.textContent = 'Enter your user id first.';
    return;
  }
  try {
    const body = { userId: userId() };
    const title = ui.newTitle.value.trim();
    if (title) body.title = title;
    const session = await api('/api/sessions', { method: 'POST', body });
    ui.newTitle.value = '';
    await loadSessions();
    openSession(session.id, session.title);
  } catch (e) {
    ui.sessionsNote.textContent = e.text;
  }
});

ui.compose.addEventListener('submit', (event) => {
  event.preventDefault();
  const text = ui.message.value.trim();
  if (!text || busy || !chat) return;
  ui.message.value = '';
  send(text);
});
submitOnCtrlEnter(ui.message);
ui.stop.addEventListener('click', () => chat?.cancel());

ui.del.addEventListener('click', async () => {
  if (!openId || !confirm('Delete this chat and its messages?')) return;
  try {
    await api(`/api/sessions/${encodeURIComponent(openId)}`, { method: 'DELETE' });
    chat?.close();
    chat = null;
    openId = null;
    ui.log.replaceChildren();
    ui.compose.hidden = true;
    ui.del.hidden = true;
    ui.empty.hidden = false;
    ui.title.textContent = 'No chat open';
    loadSessions();
  } catch (e) {
    showError(e.text);
  }
});

async function start() {
  const params = new URLSearchParams(location.search);
  let remembered = null;
  try {
    remembered = localStorage.getItem(USER_KEY);
  } catch {
    // none
  }
  ui.user.value = params.get('user') ?? tokenUser() ?? remembered ?? '';
  if (userId()) await loadSessions();
  const session = params.get('session');
  if (session) {
    try {
      const info = await api(`/api/sessions/${encodeURIComponent(session)}`);
      if (!ui.user.value) ui.user.value = info.userId;
      openSession(info.id, info.title);
    } catch (e) {
      showError(e.text);
    }
  }
  if (!userId()) ui.user.focus();
}

onSignedIn(start);
if (await initAuth()) start();

