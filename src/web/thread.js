// A conversation shown as a list (a ticket's follow-ups, a chat): stored messages,
// and a question whose reply streams in, for the console and the chat page.
import { describeStats, el } from './common.js';
import { renderMarkdown, throttledRenderer } from './markdown.js';

const ROLE_NAMES = { user: 'You', assistant: 'Assistant', system: 'System' };

// Appends one message; the assistant's are Markdown, everything else plain text.
export function appendMessage(list, role, text, stats) {
  const content = el('div', { class: role === 'assistant' ? 'markdown' : '' });
  if (role === 'assistant') renderMarkdown(content, text);
  else content.textContent = text;
  const item = el('li', { class: role === 'user' ? 'user' : 'assistant' },
    el('span', { class: 'role', text: ROLE_NAMES[role] ?? role }), content);
  if (stats) item.append(el('p', { class: 'meta', text: stats }));
  list.append(item);
  return { item, content };
}

// Shows `question` and an empty reply, and returns the client library's handlers
// that fill it in. The reply's <li> carries data-state: waiting, streaming, done or
// error. onEnd(ok) runs once the reply is over; onRetry, when given, is offered on
// failure (the question and its failed reply are removed first).
export function replyHandlers(list, question, { onEnd, onRetry, onStatus, onProgress } = {}) {
  const { item: asked } = appendMessage(list, 'user', question);
  const { item, content } = appendMessage(list, 'assistant', '');
  content.classList.add('answer', 'empty');
  item.dataset.state = 'waiting';
  const draw = throttledRenderer(content);
  let text = '';
  return {
    onQueued(position) {
      item.dataset.queue = String(position);
    },
    onChunk(_chunk, answer) {
      text = answer;
      item.dataset.state = 'streaming';
      draw(answer, { cursor: true });
      onProgress?.();
    },
    onCached(answer) {
      text = answer;
      draw.now(answer);
    },
    onDone(frame) {
      draw.now(text);
      item.dataset.state = 'done';
      item.append(el('p', { class: 'meta', text: describeStats(frame) }));
      onProgress?.();
      onEnd?.(true);
    },
    onError(error) {
      draw.now(text);
      item.dataset.state = 'error';
      item.append(el('p', { class: 'error-text', text: error.text }));
      if (onRetry) {
        item.append(el('button', {
          type: 'button',
          text: 'Try again',
          onclick: () => {
            asked.remove();
            item.remove();
            onRetry();
          },
        }));
      }
      onEnd?.(false);
    },
    onStatus,
  };
}
