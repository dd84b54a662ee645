// Failures seen from the browser: a connection cut mid-stream (through a TCP proxy
// the test controls), Ollama stopped and started again, a model that is not
// installed, and the rate limit. Each ends in plain words and a retry that works.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import {
  answerOf, openPage, screenshot, startDaemon, startFakeOllama, waitFor,
  useStack,
} from './support/harness.mjs';

// Thirty distinct words: a chunk shown twice would show a word twice.
const WORDS = Array.from({ length: 30 }, (_, i) => `word${String(i + 1).padStart(2, '0')}`);
const ANSWER = WORDS.join(' ');

const stack = useStack({ proxy: true });

const done = (page) => waitFor(async () => (await answerOf(page)).state === 'done', { message: 'the answer' });

describe('recovering from failures', () => {
  test('a connection cut mid-stream comes back; the text is complete and not doubled', async () => {
    await stack.fake.script({ reply: ANSWER, fault: 'stall_after_tokens', faultAfterTokens: 10 });
    const { page, problems } = await openPage(stack.browser);
    await page.goto(`${stack.proxy.url}/tickets/cut-1?body=${encodeURIComponent('VPN drops every hour')}`);
    await waitFor(async () => (await answerOf(page)).text.includes('word10'), { message: 'ten words' });

    stack.proxy.cut();
    // The page reconnects on its own and asks again; the single flight replays the
    // ten chunks it had, which the client library recognises by seq and skips.
    await waitFor(async () => (await page.locator('#conn').getAttribute('data-reconnects')) === '1', { message: 'a reconnect' });
    await waitFor(async () => (await answerOf(page)).replayed === 10, { message: 'the replay of ten chunks' });
    assert.equal((await answerOf(page)).state, 'streaming');

    await stack.fake.release();
    await done(page);
    const text = (await answerOf(page)).text;
    assert.equal(text, ANSWER);
    for (const word of WORDS) assert.equal(text.split(word).length - 1, 1, `${word} appears once`);
    assert.equal(await page.locator('#conn').innerText(), '');
    assert.deepEqual(await problems(), []);
    await page.context().close();
  });

  test('a page away while the answer finished gets the stored answer when it is back', async () => {
    await stack.fake.script({ reply: ANSWER, fault: 'stall_after_tokens', faultAfterTokens: 5 });
    const { page, problems } = await openPage(stack.browser);
    await page.goto(`${stack.proxy.url}/tickets/cut-2?body=${encodeURIComponent('Mail client hangs')}`);
    await waitFor(async () => (await answerOf(page)).text.includes('word05'), { message: 'five words' });
    // The network stays down while the answer is finished and stored...
    stack.proxy.block(true);
    stack.proxy.cut();
    await waitFor(async () => (await page.locator('#conn').getAttribute('data-state')) === 'reconnecting', { message: 'reconnecting' });
    await stack.fake.release();
    await waitFor(async () => {
      const r = await fetch(`${stack.daemon.url}/api/tickets/cut-2/ai-session`);
      return (await r.json()).status === 'complete';
    }, { message: 'the answer stored' });
    // ...then comes back: asked again, the daemon answers from the cache.
    stack.proxy.block(false);
    await waitFor(async () => (await answerOf(page)).state === 'done', { message: 'the stored answer', timeout: 30000 });
    assert.equal((await answerOf(page)).text, ANSWER);
    assert.match(await page.locator('#badge').innerText(), /^cached/);
    assert.deepEqual(await problems(), []);
    await page.context().close();
  });

  test('Ollama stopped: a friendly error, then a retry that works', async () => {
    const port = stack.fake.port;
    await stack.fake.stop();
    const { page, problems } = await openPage(stack.browser);
    await page.goto(`${stack.daemon.url}/tickets/down-1?body=${encodeURIComponent('Outlook will not start')}`);
    const error = page.locator('#error');
    await error.waitFor({ state: 'visible' });
    assert.equal(await error.getAttribute('data-code'), 'ollama_unavailable');
    assert.equal(await page.locator('#error-text').innerText(), `Ollama is not reachable at 127.0.0.1:${port}.`);
    assert.equal((await answerOf(page)).state, 'error');
    await screenshot(page, 'console-error');

    stack.fake = await startFakeOllama({ port });
    await stack.fake.script({ reply: 'Repair the Office installation from Settings.' });
    await page.getByRole('button', { name: 'Try again' }).click();
    await done(page);
    assert.equal((await answerOf(page)).text, 'Repair the Office installation from Settings.');
    assert.ok(await error.isHidden());
    assert.deepEqual(await problems(), []);
    await page.context().close();
  });

  test('a model that is not installed says how to install it', async () => {
    await stack.fake.models(['mistral']);
    const { page, problems } = await openPage(stack.browser);
    await page.goto(`${stack.daemon.url}/tickets/model-1?body=${encodeURIComponent('Teams has no sound')}`);
    await page.locator('#error').waitFor({ state: 'visible' });
    assert.equal(await page.locator('#error-text').innerText(), 'The model llama3.2 is not installed (ollama pull llama3.2).');

    await stack.fake.models(['llama3.2']);
    await stack.fake.script({ reply: 'Pick the headset as the output device.' });
    await page.getByRole('button', { name: 'Try again' }).click();
    await done(page);
    assert.equal((await answerOf(page)).text, 'Pick the headset as the output device.');
    assert.deepEqual(await problems(), []);
    await page.context().close();
  });

  test('over the rate limit: "Too many requests, retry in N s", and the retry waits', async () => {
    const limited = await startDaemon({ ollamaUrl: stack.fake.url, env: { TICKETAID_RATE_LIMIT_MESSAGES_PER_MINUTE: '2' } });
    try {
      await stack.fake.script({ reply: 'Reset the password in the portal.' });
      const { page, problems } = await openPage(stack.browser);
      await page.goto(`${limited.url}/tickets/rate-1?body=${encodeURIComponent('Forgot password')}`);
      await done(page);
      await page.getByRole('button', { name: 'Regenerate' }).click();
      await done(page);
      await page.getByRole('button', { name: 'Regenerate' }).click();
      await page.locator('#error').waitFor({ state: 'visible' });
      assert.equal(await page.locator('#error').getAttribute('data-code'), 'rate_limited');
      const text = await page.locator('#error-text').innerText();
      const seconds = Number(/^Too many requests, retry in (\d+) s\.$/.exec(text)?.[1]);
      assert.ok(seconds >= 1 && seconds <= 30, `a wait of 1 to 30 s: "${text}"`);
      assert.ok(await page.locator('#retry').isDisabled(), 'the retry waits for the limiter');
      assert.deepEqual(await problems(), []);
      await page.context().close();
    } finally {
      await limited.stop();
    }
  });
});
