// Model output is untrusted: an answer full of markup that would run script must
// render inert, in the answer, after a reload (the cached path) and in a follow-up.
// A page-level flag and the dialog counter would show anything that ran; the test
// first proves that they would.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import {
  answerOf, openPage, screenshot, waitFor,
  useStack,
} from './support/harness.mjs';

const HOSTILE = [
  'Here is the fix.',
  '',
  '<img src=x onerror=alert(1)>',
  '',
  '<script>window.__xss = (window.__xss || 0) + 100; alert(2);</script>',
  '',
  '[a link](javascript:alert(3)) and <a href="javascript:alert(4)">another</a>',
  '',
  '<svg><script>alert(5)</script><circle onload=alert(6) r=5></circle></svg>',
  '',
  '<iframe src="javascript:alert(7)"></iframe> <object data="javascript:alert(8)"></object>',
  '',
  '<details open ontoggle=alert(9)><summary>more</summary>hidden</details>',
  '',
  '<form action="javascript:alert(10)"><button>Submit</button></form>',
  '',
  '<p style="background:url(javascript:alert(11))" onclick="alert(12)">Styled</p>',
  '',
  '```html',
  '<script>alert("shown as text")</script>',
  '```',
].join('\n');

const stack = useStack();

// A page that counts anything executed: alert() calls (dialogs) and the flag.
async function guardedPage() {
  const opened = await openPage(stack.browser);
  const dialogs = [];
  opened.page.on('dialog', (d) => {
    dialogs.push(d.message());
    d.dismiss();
  });
  await opened.page.addInitScript(() => {
    window.__xss = 0;
  });
  return { ...opened, dialogs };
}

// Nothing in `root` that could run: no script-like elements, no handlers, no
// javascript: URLs; and nothing ran.
async function assertInert(page, dialogs, problems, root) {
  const found = await page.locator(root).evaluate((r) => {
    const all = [...r.querySelectorAll('*')];
    return {
      elements: all.filter((e) => ['SCRIPT', 'IFRAME', 'OBJECT', 'EMBED', 'FORM', 'STYLE'].includes(e.tagName)).map((e) => e.tagName),
      handlers: all.flatMap((e) => [...e.attributes].filter((a) => /^on/i.test(a.name)).map((a) => `${e.tagName}.${a.name}`)),
      urls: all.flatMap((e) => ['href', 'src', 'action', 'data', 'xlink:href'].map((n) => e.getAttribute(n)).filter((v) => v && /^\s*javascript:/i.test(v))),
      styles: all.filter((e) => e.hasAttribute('style')).length,
    };
  });
  assert.deepEqual(found, { elements: [], handlers: [], urls: [], styles: 0 });
  // Give any handler a chance: click what can be clicked, toggle what toggles.
  await page.locator(`${root} a`).evaluateAll((links) => links.forEach((a) => a.click()));
  assert.equal(await page.evaluate(() => window.__xss), 0, 'the page flag is untouched');
  assert.deepEqual(dialogs, [], 'no alert() ran');
  assert.deepEqual(await problems(), [], 'no policy had to block anything: the sanitizer removed it first');
}

describe('untrusted model output', () => {
  test('the flag and the dialog counter do notice script that runs', async () => {
    const { page, dialogs, context } = await guardedPage();
    await page.goto(`${stack.daemon.url}/`);
    await page.evaluate(() => {
      window.__xss += 1;
      alert('control');
    });
    assert.equal(await page.evaluate(() => window.__xss), 1);
    assert.deepEqual(dialogs, ['control']);
    await context.close();
  });

  test('an answer with <img onerror>, <script> and javascript: links runs nothing', async () => {
    await stack.fake.script({ reply: HOSTILE, tokenDelayMs: 2 });
    const { page, dialogs, problems, context } = await guardedPage();
    await page.goto(`${stack.daemon.url}/tickets/xss-1?body=${encodeURIComponent('Show me some HTML')}`);
    await waitFor(async () => (await answerOf(page)).state === 'done', { message: 'the answer' });
    const text = (await answerOf(page)).text;
    assert.match(text, /^Here is the fix\./);
    assert.match(text, /a link and another/);
    assert.equal(await page.locator('#answer pre code').innerText(), '<script>alert("shown as text")</script>\n');
    await assertInert(page, dialogs, problems, '#answer');
    // The hostile attributes did reach DOMPurify's inert parse (and no further).
    assert.ok(await page.evaluate(() => window.__inertViolations) > 0);
    await screenshot(page, 'console-xss');

    // Cached this time: the other rendering path.
    await page.reload();
    await waitFor(async () => (await answerOf(page)).state === 'done', { message: 'the cached answer' });
    assert.match(await page.locator('#badge').innerText(), /^cached/);
    await assertInert(page, dialogs, problems, '#answer');

    // A follow-up reply is rendered as Markdown too.
    await page.getByLabel('Ask about this ticket').fill('And in a follow-up?');
    await page.getByRole('button', { name: 'Ask', exact: true }).click();
    await waitFor(async () => (await page.locator('#thread li.assistant').last().getAttribute('data-state')) === 'done', { message: 'the follow-up' });
    await assertInert(page, dialogs, problems, '#thread');
    await context.close();
  });

  test('a ticket text with markup is shown as text', async () => {
    await stack.fake.script({ reply: 'Fine.' });
    const { page, dialogs, problems, context } = await guardedPage();
    const body = '<img src=x onerror=alert(20)> "quoted" & <b>bold</b>';
    await page.goto(`${stack.daemon.url}/tickets/xss-2?body=${encodeURIComponent(body)}`);
    await waitFor(async () => (await answerOf(page)).state === 'done', { message: 'the answer' });
    assert.equal(await page.locator('#ticket-text').evaluate((p) => p.textContent), body);
    assert.equal(await page.locator('#ticket-text *').count(), 0);
    await assertInert(page, dialogs, problems, '.ticket-text');
    await context.close();
  });
});
