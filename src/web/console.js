// The ticket console (/ and /tickets/{id}): open a ticket, watch the answer stream,
// regenerate, cancel, copy, read earlier revisions, ask follow-up questions.
//
// Where the ticket comes from: /tickets/{id}?body=... (a helpdesk link), a form POSTed
// to /tickets/{id} (the daemon puts the text in <meta name="ticketaid-posted-body">),
// the form on the page, or, for /tickets/{id} alone, the text stored with the
// ticket's answer (so a reload shows the cached answer).
import { openTicket } from './ticketaid-client.js';
import {
  $, api, el, describeStats, formatTime, initAuth, onSignedIn, submitOnCtrlEnter, token,
} from './common.js';
import { renderMarkdown, throttledRenderer } from './markdown.js';
import { appendMessage, replyHandlers } from './thread.js';

const TICKET_ID = /^[A-Za-z0-9._:-]{1,128}$/;
const LONGEST_LINK_BODY = 1500; // longer texts are not put in the address bar

const ui = {
  form: $('#open-form'),
  id: $('#ticket-id'),
  body: $('#ticket-body'),
  formError: $('#form-error'),
  panel: $('#answer-panel'),
  ticket: $('#answer-ticket'),
  ticketText: $('#ticket-text'),
  badge: $('#badge'),
  conn: $('#conn'),
  queue: $('#queue'),
  queueText: $('#queue-text'),
  error: $('#error'),
  errorText: $('#error-text'),
  retry: $('#retry'),
  answer: $('#answer'),
  meta: $('#meta'),
  regenerate: $('#regenerate'),
  cancel: $('#cancel'),
  copy: $('#copy'),
  revisionsToggle: $('#revisions-toggle'),
  revisions: $('#revisions'),
  thread: $('#thread'),
  followupForm: $('#followup-form'),
  followup: $('#followup'),
  ask: $('#ask'),
};

const render = throttledRenderer(ui.answer);
let ticket = null; // the TicketConnection
let current = { id: null, body: null };
let answerText = '';
let busy = false; // a reply (answer or follow-up) is in flight
let answered = false; // the ticket has a stored answer: follow-ups may be asked
let retryTimer = null;

// --- state shown on the page ---

function setBusy(value) {
  busy = value;
  ui.cancel.disabled = !value;
  ui.regenerate.disabled = value;
  ui.ask.disabled = value || !answered;
  ui.answer.setAttribute('aria-busy', String(value));
}

function setAnswerState(state) {
  ui.answer.dataset.state = state; // idle, waiting, streaming, done, error (tests read it)
}

function showBadge(text, kind) {
  ui.badge.hidden = !text;
  ui.badge.textContent = text ?? '';
  ui.badge.className = `badge ${kind ?? ''}`;
}

function showError(error, retry) {
  clearInterval(retryTimer);
  ui.error.hidden = false;
  ui.error.dataset.code = error.code ?? '';
  ui.errorText.textContent = error.text;
  ui.retry.onclick = retry;
  ui.retry.disabled = false;
  ui.retry.textContent = error.code === 'cancelled' ? 'Ask again' : 'Try again';
  if (error.code === 'rate_limited' && error.retryAfterMs) {
    // Counts down, and allows the retry once the limiter will let it pass.
    const until = Date.now() + error.retryAfterMs;
    ui.retry.disabled = true;
    retryTimer = setInterval(() => {
      const left = Math.ceil((until - Date.now()) / 1000);
      if (left <= 0) {
        clearInterval(retryTimer);
        ui.retry.disabled = false;
        ui.errorText.textContent = 'You may try again now.';
      } else {
        ui.errorText.textContent = `Too many requests, retry in ${left} s.`;
      }
    }, 250);
  }
}

function hideError() {
  clearInterval(retryTimer);
  ui.error.hidden = true;
}

function showQueued(position) {
  ui.queue.hidden = false;
  ui.queueText.textContent =
    position <= 1 ? 'Waiting for the model: next in line.' : `Waiting for the model: position ${position} in line.`;
}

function showConnection(state, detail) {
  ui.conn.classList.toggle('lost', state === 'reconnecting');
  ui.conn.dataset.state = state;
  ui.conn.dataset.reconnects = String(detail.reconnects ?? 0);
  if (state === 'reconnecting') {
    const s = Math.max(1, Math.round((detail.delayMs ?? 0) / 1000));
    ui.conn.textContent = `Connection lost; reconnecting in ${s} s…`;
  } else if (state === 'open') {
    ui.conn.textContent = detail.reconnects ? 'Reconnected' : '';
  } else if (state === 'closed') {
    ui.conn.textContent = '';
  }
}

// --- the answer ---

const answerHandlers = {
  onQueued(position) {
    setAnswerState('waiting');
    showQueued(position);
  },
  onChunk(_chunk, answer) {
    ui.queue.hidden = true;
    answerText = answer;
    if (ui.answer.dataset.state !== 'streaming') {
      setAnswerState('streaming');
      showBadge('generating…', 'streaming');
    }
    render(answer, { cursor: true });
  },
  onCached(answer, frame) {
    ui.queue.hidden = true;
    answerText = answer;
    render.now(answer);
    const when = frame.createdAt ? formatTime(frame.createdAt) : '';
    showBadge(when ? `cached · ${when}` : 'cached', 'cached');
    ui.badge.title = frame.message ?? '';
    setAnswerState('cached');
  },
  onDone(frame, answer) {
    answered = true;
    answerText = answer;
    render.now(answer);
    ui.queue.hidden = true;
    if (!frame.cached) showBadge('new answer', '');
    ui.meta.textContent = describeStats(frame);
    setAnswerState('done');
    setBusy(false);
    ui.copy.disabled = !answer;
    refreshRevisionCount();
    loadThread();
    ui.conn.textContent = '';
  },
  onError(error) {
    answered = false;
    ui.queue.hidden = true;
    render.now(answerText);
    setAnswerState(error.code === 'cancelled' ? 'cancelled' : 'error');
    showBadge(error.code === 'cancelled' ? 'cancelled' : 'failed', 'failed');
    setBusy(false);
    ui.copy.disabled = !answerText;
    showError(error, () => ask({ again: true }));
  },
  onStatus: showConnection,
  onReplay(_seq, skipped) {
    ui.answer.dataset.replayed = String(skipped);
  },
};

function resetAnswer() {
  hideError();
  answerText = '';
  render.now('');
  ui.meta.textContent = '';
  ui.queue.hidden = true;
  showBadge(null);
  setAnswerState('waiting');
  delete ui.answer.dataset.replayed;
}

// Opens (or reuses) the ticket's socket and asks for the answer.
function ask({ again = false, regenerate = false } = {}) {
  resetAnswer();
  setBusy(true);
  ui.copy.disabled = true;
  if (again && ticket && ticket.ticketId === current.id && ticket.state !== 'closed') {
    ticket.request(current.body, { regenerate, handlers: answerHandlers });
    return;
  }
  ticket?.close();
  ticket = openTicket(current.id, current.body, answerHandlers, {
    baseUrl: location.origin,
    token: () => token(),
    regenerate,
  });
}

function openTicketPage(id, body) {
  current = { id, body };
  answered = false;
  ui.panel.hidden = false;
  ui.ticket.textContent = id;
  ui.ticketText.textContent = body;
  ui.id.value = id;
  ui.body.value = body;
  ui.revisions.hidden = true;
  ui.revisions.replaceChildren();
  ui.revisionsToggle.setAttribute('aria-expanded', 'false');
  ui.revisionsToggle.textContent = 'Earlier revisions';
  ui.revisionsToggle.disabled = true;
  ui.thread.replaceChildren();
  document.title = `Ticket ${id} · ticketaid`;
  ask();
}

// --- revisions ---

async function refreshRevisionCount() {
  try {
    const session = await api(`/api/tickets/${encodeURIComponent(current.id)}/ai-session`);
    const n = session.revisionCount ?? 0;
    ui.revisionsToggle.textContent = n ? `Earlier revisions (${n})` : 'No earlier revisions';
    ui.revisionsToggle.disabled = n === 0;
    if (!ui.revisions.hidden) loadRevisions();
  } catch {
    ui.revisionsToggle.disabled = true;
  }
}

async function loadRevisions() {
  ui.revisions.replaceChildren(el('p', { class: 'hint', text: 'Loading…' }));
  try {
    const page = await api(`/api/tickets/${encodeURIComponent(current.id)}/ai-session/revisions?limit=20`);
    const items = page.items.map((r) => {
      const body = el('div', { class: 'markdown' });
      renderMarkdown(body, r.response);
      const label = `Revision ${r.revision} · ${formatTime(r.createdAt)}${r.model ? ` · ${r.model}` : ''}`;
      return el('details', {}, el('summary', { text: label }), body);
    });
    ui.revisions.replaceChildren(...(items.length ? items : [el('p', { class: 'hint', text: 'None.' })]));
  } catch (e) {
    ui.revisions.replaceChildren(el('p', { class: 'error-text', text: e.text ?? String(e) }));
  }
}

ui.revisionsToggle.addEventListener('click', () => {
  const open = ui.revisions.hidden;
  ui.revisions.hidden = !open;
  ui.revisionsToggle.setAttribute('aria-expanded', String(open));
  if (open) loadRevisions();
});

// --- follow-up questions ---

// The conversation's follow-ups (the ticket text and its answer come first), once
// the ticket has an answer.
async function loadThread() {
  const id = current.id;
  try {
    const page = await api(`/api/tickets/${encodeURIComponent(id)}/conversation?limit=500`);
    if (id !== current.id) return;
    ui.thread.replaceChildren();
    for (const m of page.items.slice(2)) {
      appendMessage(ui.thread, m.role, m.content, m.role === 'assistant' ? describeStats(m) : null);
    }
  } catch {
    // no conversation yet (404), or unreachable: the follow-up form still works
  }
}

function askFollowUp(question) {
  setBusy(true);
  ticket.ask(question, replyHandlers(ui.thread, question, {
    onEnd: () => setBusy(false),
    onRetry: () => askFollowUp(question),
    onStatus: showConnection,
  }));
}

ui.followupForm.addEventListener('submit', (event) => {
  event.preventDefault();
  const question = ui.followup.value.trim();
  if (!question || busy || !ticket) return;
  ui.followup.value = '';
  askFollowUp(question);
});

// --- actions ---

ui.regenerate.addEventListener('click', () => ask({ again: true, regenerate: true }));
ui.cancel.addEventListener('click', () => ticket?.cancel());
ui.copy.addEventListener('click', async () => {
  const label = ui.copy.textContent;
  try {
    if (navigator.clipboard) {
      await navigator.clipboard.writeText(answerText);
    } else {
      // Plain http on another host is not a secure context: no clipboard API.
      const area = el('textarea', { class: 'visually-hidden', 'aria-hidden': 'true' });
      area.value = answerText;
      document.body.append(area);
      area.select();
      document.execCommand('copy');
      area.remove();
    }
    ui.copy.textContent = 'Copied';
  } catch {
    ui.copy.textContent = 'Copy failed';
  }
  setTimeout(() => { ui.copy.textContent = label; }, 1500);
});

// --- the form and the address ---

function ticketPath(id, body) {
  const path = `/tickets/${encodeURIComponent(id)}`;
  return body.length <= LONGEST_LINK_BODY ? `${path}?body=${encodeURIComponent(body)}` : path;
}

ui.form.addEventListener('submit', (event) => {
  event.preventDefault();
  const id = ui.id.value.trim();
  const body = ui.body.value;
  ui.formError.hidden = true;
  let problem = null;
  if (!TICKET_ID.test(id)) problem = 'The ticket id must be 1 to 128 letters, digits or . _ : -';
  else if (!body.trim()) problem = 'Enter the ticket text.';
  if (problem) {
    ui.formError.textContent = problem;
    ui.formError.hidden = false;
    (TICKET_ID.test(id) ? ui.body : ui.id).focus();
    return;
  }
  history.pushState(null, '', ticketPath(id, body));
  openTicketPage(id, body);
});
submitOnCtrlEnter(ui.body);
submitOnCtrlEnter(ui.followup);

// What the address asks for.
async function route() {
  const match = /^\/tickets\/([^/]+)\/?$/.exec(location.pathname);
  if (!match) {
    ticket?.close();
    ticket = null;
    ui.panel.hidden = true;
    ui.id.focus();
    return;
  }
  let id;
  try {
    id = decodeURIComponent(match[1]);
  } catch {
    id = match[1];
  }
  ui.id.value = id;
  if (!TICKET_ID.test(id)) {
    ui.formError.textContent = `"${id}" is not a ticket id: 1 to 128 letters, digits or . _ : -`;
    ui.formError.hidden = false;
    return;
  }
  const posted = document.querySelector('meta[name="ticketaid-posted-body"]');
  let body = new URLSearchParams(location.search).get('body') ?? posted?.content ?? null;
  if (posted) {
    // A reload must not post again: the address becomes the ticket's own, and the
    // text is then read back from the stored answer.
    posted.remove();
    history.replaceState(null, '', ticketPath(id, body));
  }
  if (body == null) {
    try {
      const session = await api(`/api/tickets/${encodeURIComponent(id)}/ai-session`);
      body = session.prompt;
    } catch (e) {
      if (e.status !== 404) {
        ui.formError.textContent = e.text;
        ui.formError.hidden = false;
      }
    }
  }
  if (body == null) {
    ui.body.focus();
    ui.formError.textContent = `Ticket ${id} has no answer yet: enter its text.`;
    ui.formError.hidden = false;
    return;
  }
  openTicketPage(id, body);
}

window.addEventListener('popstate', route);
onSignedIn(() => {
  if (current.id) ask({ again: false });
  else route();
});

await initAuth();
route();
