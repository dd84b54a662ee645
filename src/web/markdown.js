// Markdown from the model, rendered safely: marked turns it into HTML, DOMPurify
// removes everything that could run (scripts, event handlers, javascript: links,
// forms, styles, frames) on every render, and the page's Trusted Types policy lets
// nothing else write HTML. Links open in a new tab without a referrer.
import { Marked, DOMPurify } from './vendor/libs.js';

const marked = new Marked({ gfm: true, breaks: false, async: false });

const PURIFY = {
  RETURN_TRUSTED_TYPE: true,
  USE_PROFILES: { html: true },
  FORBID_TAGS: ['style', 'form', 'input', 'button', 'textarea', 'select', 'option'],
  FORBID_ATTR: ['style', 'class', 'id'],
};

DOMPurify.addHook('afterSanitizeAttributes', (node) => {
  if (node.tagName === 'A' && node.hasAttribute('href')) {
    node.setAttribute('target', '_blank');
    node.setAttribute('rel', 'noopener noreferrer nofollow');
  }
});

export function sanitize(html) {
  return DOMPurify.sanitize(html, PURIFY);
}

// Replaces element's content with the rendered text; with `cursor`, a blinking
// cursor ends the last line (the answer is still streaming).
export function renderMarkdown(element, text, { cursor = false } = {}) {
  element.innerHTML = sanitize(marked.parse(text ?? ''));
  element.classList.toggle('empty', !text);
  if (cursor && text) {
    let last = element;
    while (last.lastElementChild && !['BR', 'HR', 'IMG'].includes(last.lastElementChild.tagName)) {
      last = last.lastElementChild;
    }
    const mark = document.createElement('span');
    mark.className = 'cursor';
    mark.setAttribute('aria-hidden', 'true');
    last.append(mark);
  }
}

// Renders at most once per frame, whatever the number of chunks arriving (and a few
// times a second in a hidden tab, where frames stop); render.now() renders at once.
export function throttledRenderer(element) {
  let pending = null;
  let scheduled = false;
  const flush = () => {
    scheduled = false;
    if (!pending) return;
    const { text, options } = pending;
    pending = null;
    renderMarkdown(element, text, options);
  };
  const render = (text, options) => {
    pending = { text, options };
    if (scheduled) return;
    scheduled = true;
    if (document.hidden) setTimeout(flush, 250);
    else requestAnimationFrame(flush);
  };
  render.now = (text, options) => {
    pending = null;
    renderMarkdown(element, text, options);
  };
  return render;
}
