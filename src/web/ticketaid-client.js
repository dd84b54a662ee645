// ticketaid-client.js: the live ticket answer in a few lines, for the console and for
// helpdesk front ends. Served by the daemon at /static/ticketaid-client.js; documented
// in docs/protocol.md ("The client library"). No dependencies; an ES module.
//
//   import { openTicket } from 'http://ticketaid:8080/static/ticketaid-client.js';
//   const ticket = openTicket('4711', 'Printer on floor 3 prints blank pages', {
//     onChunk: (chunk, answer) => render(answer),
//     onCached: (answer, frame) => render(answer),
//     onDone: (frame, answer) => showDone(frame),
//     onError: (error) => show(describeError(error)),
//     onQueued: (position) => showQueued(position),
//   });
//   ticket.ask('Which driver version?', { onChunk, onDone, onError });  // a follow-up
//   ticket.regenerate(); ticket.cancel(); ticket.close();
//
// A dropped connection is opened again with exponential backoff and jitter, and the
// reply that was arriving is asked for again: the server's single flight replays it
// from the first chunk with the original seq numbers (or answers `cached` when it has
// finished meanwhile), and chunks already shown are skipped by seq, so the text is
// complete and never doubled.

const TICKET_ID = /^[A-Za-z0-9._:-]{1,128}$/;
const SESSION_ID = /^[A-Za-z0-9_-]{1,64}$/;

export const defaultReconnect = Object.freeze({
  initialDelayMs: 300, // the first retry after a drop
  maxDelayMs: 15000, // the longest pause between attempts
  factor: 2, // each failed attempt multiplies the pause
  jitter: 0.3, // +-30 %, so that many pages do not come back at once
});

// WebSocket close codes that end the connection for good (docs/protocol.md).
const CLOSE_REASONS = {
  4002: { code: 'unauthorized', message: 'The access token is missing, invalid or expired.' },
  4003: { code: 'forbidden', message: 'This user may not open this conversation.' },
  1009: { code: 'too_large', message: 'The message is larger than the server accepts.' },
};

function seconds(ms) {
  return Math.max(1, Math.ceil(ms / 1000));
}

// Plain words for an error frame ({code, message, retryAfterMs}) of docs/protocol.md.
export function describeError(error) {
  const code = error?.code ?? 'internal';
  const message = String(error?.message ?? '');
  switch (code) {
    case 'ollama_unavailable': {
      const at = /not reachable at (?:https?:\/\/)?([^\s()]+)/.exec(message);
      if (at) return `Ollama is not reachable at ${at[1].replace(/\/$/, '')}.`;
      return `Ollama could not answer: ${message || 'unknown failure'}.`;
    }
    case 'model_not_found': {
      const model = /the model (\S+) is not installed/.exec(message)?.[1];
      return model
        ? `The model ${model} is not installed (ollama pull ${model}).`
        : 'The model is not installed in Ollama (ollama pull MODEL).';
    }
    case 'rate_limited':
      return error.retryAfterMs != null
        ? `Too many requests, retry in ${seconds(error.retryAfterMs)} s.`
        : 'Too many requests, retry in a moment.';
    case 'busy':
      return 'ticketaid is busy (its queue is full, or it is restarting). Try again in a moment.';
    case 'timeout':
      return 'The model took too long to answer. Try again.';
    case 'cancelled':
      return 'Cancelled. The answer was not stored.';
    case 'unauthorized':
      return 'The access token is missing, invalid or expired. Sign in again.';
    case 'forbidden':
      return 'You may not open this. ' + message;
    case 'not_found':
      return 'Not found: it does not exist or has expired.';
    case 'too_large':
      return 'The text is too long for ticketaid.';
    case 'session_limit':
      return 'You have too many chat sessions; delete one first.';
    case 'session_full':
      return 'This conversation is full; start a new one.';
    case 'bad_request':
      return `ticketaid refused the request: ${message}`;
    case 'disconnected':
      return 'The connection to ticketaid is lost.';
    default:
      return `Something went wrong in ticketaid: ${message || code}`;
  }
}

// The daemon's address: where this module was loaded from (so a helpdesk page that
// imports it from the daemon needs no configuration), else the page's own.
function defaultBaseUrl() {
  try {
    const here = new URL(import.meta.url);
    if (here.protocol === 'http:' || here.protocol === 'https:') return here.origin;
  } catch {
    // not loaded from a URL
  }
  return globalThis.location?.origin ?? 'http://127.0.0.1:8080';
}

function randomId() {
  const c = globalThis.crypto;
  if (c?.randomUUID) return c.randomUUID();
  return `${Date.now().toString(36)}-${Math.random().toString(36).slice(2)}`;
}

// One WebSocket that comes back after drops, and the reply it is waiting for.
class ReplySocket {
  constructor(path, handlers, options) {
    this.path = path;
    this.handlers = handlers ?? {};
    this.options = options ?? {};
    this.reconnect = { ...defaultReconnect, ...(this.options.reconnect ?? {}) };
    this.WebSocketImpl = this.options.WebSocket ?? globalThis.WebSocket;
    this.heartbeatMs = this.options.heartbeatMs ?? 25000;
    this.state = 'connecting';
    this.attempt = 0; // failed attempts since the last open
    this.reconnects = 0; // connections opened again after a drop
    this.replayedChunks = 0; // chunks received twice and skipped
    this.reply = null; // the request in flight (resent after a drop)
    this.lastRequest = null; // for retry()
    this.closedByUser = false;
    this.ws = null;
    this.timer = null;
    this.heartbeat = null;
    this.open();
  }

  url() {
    const base = new URL(this.options.baseUrl ?? defaultBaseUrl());
    base.protocol = base.protocol === 'https:' ? 'wss:' : 'ws:';
    base.pathname = this.path;
    const token = typeof this.options.token === 'function' ? this.options.token() : this.options.token;
    base.search = token ? `?token=${encodeURIComponent(token)}` : '';
    return base.toString();
  }

  setStatus(state, detail = {}) {
    this.state = state;
    this.handlers.onStatus?.(state, { attempt: this.attempt, reconnects: this.reconnects, ...detail });
  }

  open() {
    if (this.closedByUser) return;
    let ws;
    try {
      ws = new this.WebSocketImpl(this.url());
    } catch (e) {
      this.fail({ code: 'bad_request', message: String(e?.message ?? e) });
      return;
    }
    this.ws = ws;
    ws.onopen = () => {
      if (this.attempt > 0 || this.everOpened) this.reconnects += 1;
      this.everOpened = true;
      this.attempt = 0;
      this.setStatus('open');
      this.beat();
      // The reply in flight is asked for again: joined and replayed, or cached.
      if (this.reply) this.transmit(this.reply, true);
    };
    ws.onmessage = (event) => this.receive(event.data);
    ws.onclose = (event) => this.dropped(ws, event);
    ws.onerror = () => {}; // a close event follows
  }

  beat() {
    clearTimeout(this.heartbeat);
    if (!this.heartbeatMs || this.closedByUser) return;
    // Quiet for a while: ping; no answer within the same time means a dead link.
    this.heartbeat = setTimeout(() => {
      if (this.ws?.readyState !== 1) return;
      this.ws.send(JSON.stringify({ type: 'ping' }));
      this.heartbeat = setTimeout(() => this.ws?.close(4000, 'no pong'), this.heartbeatMs);
    }, this.heartbeatMs);
  }

  dropped(ws, event) {
    if (ws !== this.ws) return;
    clearTimeout(this.heartbeat);
    this.ws = null;
    if (this.closedByUser) return this.setStatus('closed');
    const fatal = CLOSE_REASONS[event.code];
    if (fatal) {
      this.setStatus('closed', { code: event.code });
      return this.fail({ ...fatal, closeCode: event.code }, true);
    }
    const base = Math.min(
      this.reconnect.maxDelayMs,
      this.reconnect.initialDelayMs * this.reconnect.factor ** this.attempt,
    );
    const delayMs = Math.round(base * (1 + this.reconnect.jitter * (2 * Math.random() - 1)));
    this.attempt += 1;
    // 4008: this user holds too many sockets (other tabs); wait longer.
    const wait = event.code === 4008 ? Math.max(delayMs, 5000) : delayMs;
    this.setStatus('reconnecting', { delayMs: wait, closeCode: event.code });
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.open(), wait);
  }

  // Sends the request now, or when the socket (re)opens.
  transmit(reply, again = false) {
    if (this.ws?.readyState !== 1) return;
    const frame = { ...reply.frame };
    // Asked again after a drop: a regenerate whose reply has begun is joined, not
    // started twice; one never acknowledged is sent as it was.
    if (again && reply.started) delete frame.regenerate;
    reply.socketFrames = 0;
    this.ws.send(JSON.stringify(frame));
  }

  start(frame, handlers) {
    this.reply = {
      frame,
      handlers: handlers ?? this.handlers,
      chunks: [],
      answer: '',
      thinking: [],
      started: false,
      socketFrames: 0,
    };
    this.lastRequest = { frame, handlers };
    if (!this.ws && this.state === 'closed' && !this.closedByUser) {
      // Closed for good by the server (4002...): a new request opens it again.
      this.attempt = 0;
      this.open();
    } else {
      this.transmit(this.reply);
    }
    return this;
  }

  receive(data) {
    this.beat();
    let frame;
    try {
      frame = JSON.parse(data);
    } catch {
      return;
    }
    if (frame.type === 'pong') return;
    const reply = this.reply;
    if (!reply) {
      // An error about no request of ours (a malformed message, say).
      if (frame.type === 'error') this.handlers.onError?.(withText(frame));
      return;
    }
    reply.started = true;
    const h = reply.handlers;
    switch (frame.type) {
      case 'queued':
        h.onQueued?.(frame.position, frame);
        break;
      case 'stream':
        this.chunk(reply, frame);
        break;
      case 'thinking': {
        // Thinking frames share the seq of the next chunk: count them per socket.
        const i = reply.socketFrames++;
        if (i < reply.thinking.length) break;
        reply.thinking.push(frame.content);
        h.onThinking?.(frame.content, reply.thinking.join(''), frame);
        break;
      }
      case 'cached':
        reply.chunks = [];
        reply.answer = frame.response ?? '';
        h.onCached?.(reply.answer, frame);
        break;
      case 'done':
        this.reply = null;
        h.onDone?.(frame, reply.answer);
        break;
      case 'error':
        this.reply = null;
        h.onError?.(withText(frame));
        break;
      default:
        break; // a type this version does not know: ignored, as the protocol asks
    }
  }

  // A stream chunk: new, a replayed one (skipped), or, when the replay differs from
  // what was shown (a new generation started while we were away), the start of the
  // text again.
  chunk(reply, frame) {
    const seq = Number.isInteger(frame.seq) ? frame.seq : reply.chunks.length;
    const content = frame.content ?? '';
    if (seq < reply.chunks.length) {
      if (reply.chunks[seq] === content) {
        this.replayedChunks += 1;
        reply.handlers.onReplay?.(seq, this.replayedChunks);
        return;
      }
      reply.chunks.length = seq;
      reply.answer = reply.chunks.join('');
    }
    reply.chunks[seq] = content;
    reply.answer += content;
    reply.handlers.onChunk?.(content, reply.answer, frame);
  }

  fail(error, fatal = false) {
    const reply = this.reply;
    this.reply = null;
    const h = reply?.handlers ?? this.handlers;
    h.onError?.(withText({ type: 'error', ...error, fatal }));
  }

  // Asks again for the last request (after an error).
  retry() {
    if (!this.lastRequest) return this;
    return this.start(this.lastRequest.frame, this.lastRequest.handlers);
  }

  // Stops waiting for the reply; it ends with an error of code "cancelled".
  cancel() {
    if (this.reply && this.ws?.readyState === 1) this.ws.send(JSON.stringify({ type: 'cancel' }));
    else if (this.reply) this.fail({ code: 'cancelled', message: 'cancelled' });
    return this;
  }

  close() {
    this.closedByUser = true;
    this.reply = null;
    clearTimeout(this.timer);
    clearTimeout(this.heartbeat);
    this.ws?.close(1000);
    this.setStatus('closed');
  }

  // The answer so far of the reply in flight ('' when none).
  get answer() {
    return this.reply?.answer ?? '';
  }
}

function withText(frame) {
  const error = { ...frame };
  delete error.type;
  error.text = describeError(error);
  return error;
}

// A ticket's live answer: /api/websocket/chat/{ticketId}.
export class TicketConnection extends ReplySocket {
  constructor(ticketId, handlers, options) {
    if (!TICKET_ID.test(ticketId)) {
      throw new TypeError('a ticket id is 1 to 128 characters of A-Z a-z 0-9 . _ : -');
    }
    super(`/api/websocket/chat/${ticketId}`, handlers, options);
    this.ticketId = ticketId;
    this.body = null;
  }

  // Asks for the answer to this ticket text (cached, joined, or generated).
  request(ticketBody, { regenerate = false, handlers } = {}) {
    this.body = ticketBody;
    const frame = { ticketBody };
    if (regenerate) frame.regenerate = true;
    return this.start(frame, handlers);
  }

  // A new answer for the same text; the current one becomes an earlier revision.
  regenerate(handlers) {
    if (this.body == null) throw new Error('regenerate() needs a ticket body first');
    return this.request(this.body, { regenerate: true, handlers });
  }

  // A follow-up question in the ticket's conversation. The messageId makes the
  // resend after a drop safe: the server answers it once.
  ask(question, handlers, messageId = randomId()) {
    return this.start({ type: 'message', content: question, messageId }, handlers);
  }
}

// A chat session's live replies: /ws/sessions/{sessionId}.
export class ChatConnection extends ReplySocket {
  constructor(sessionId, handlers, options) {
    if (!SESSION_ID.test(sessionId)) throw new TypeError('not a chat session id');
    super(`/ws/sessions/${sessionId}`, handlers, options);
    this.sessionId = sessionId;
  }

  send(content, handlers, messageId = randomId()) {
    return this.start({ type: 'message', content, messageId }, handlers);
  }
}

// Opens a ticket's socket and asks for the answer to `body` (none when null).
// handlers: onChunk(chunk, answerSoFar, frame), onCached(answer, frame),
// onDone(frame, answer), onError(error with .code .message .text [.retryAfterMs]),
// onQueued(position), and optionally onStatus(state, detail), onThinking,
// onReplay(seq, skipped). options: baseUrl, token (string or function),
// regenerate, reconnect ({initialDelayMs, maxDelayMs, factor, jitter}),
// heartbeatMs, WebSocket (an implementation, outside browsers).
export function openTicket(ticketId, body, handlers = {}, options = {}) {
  const ticket = new TicketConnection(ticketId, handlers, options);
  if (body != null) ticket.request(body, { regenerate: Boolean(options.regenerate) });
  return ticket;
}

// Opens a chat session's socket; send(content) asks, with the same handlers.
export function openChat(sessionId, handlers = {}, options = {}) {
  return new ChatConnection(sessionId, handlers, options);
}
