// The other pages: status (live numbers without a reload), history (pagination and
// search), chat (a multi-turn session), signing in when auth is on, and labels on
// every form control. Screenshots of each page, light and dark.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import {
  answerOf, openPage, screenshot, startDaemon, waitFor,
  useStack,
} from './support/harness.mjs';

const stack = useStack();

// A ticket answered over REST (waits for the stored answer).
async function answerTicket(id, body, base = stack.daemon.url) {
  const r = await fetch(`${base}/api/tickets/${id}/ai-session`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ ticketBody: body }),
  });
  assert.equal(r.status, 200, await r.clone().text());
}

// Every input, select and textarea has a label (or an aria-label).
async function assertLabelled(page) {
  const unlabelled = await page.evaluate(() =>
    [...document.querySelectorAll('input, select, textarea')]
      .filter((c) => c.type !== 'hidden' && c.labels.length === 0 && !c.getAttribute('aria-label'))
      .map((c) => c.id || c.name || c.outerHTML));
  assert.deepEqual(unlabelled, []);
}

const number = async (page, selector) => Number((await page.locator(selector).innerText()).replace(/[^\d.]/g, ''));

describe('the other pages', () => {
  test('status: Ollama, the models and live numbers, refreshed without a reload', async () => {
    await stack.fake.script({ reply: 'Status test answer with a few tokens in it.', tokenDelayMs: 5 });
    const { page, problems } = await openPage(stack.browser);
    await page.goto(`${stack.daemon.url}/status?refresh=300`);
    await waitFor(async () => Number(await page.locator('body').getAttribute('data-polls')) >= 2, { message: 'two polls' });
    assert.equal(await page.locator('#ollama-state').innerText(), 'Reachable');
    assert.equal(await page.locator('#ollama-version').innerText(), 'version 0.5.7');
    assert.equal(await page.locator('#ready-state').innerText(), 'Ready');
    await waitFor(async () => (await page.locator('#models').innerText()).includes('llama3.2 (default)'), { message: 'the models' });
    assert.equal(await page.locator('#cache-ratio').innerText(), '–');
    const requestsBefore = await page.locator('#connections-detail').innerText();

    await answerTicket('status-1', 'Keyboard not working');
    await answerTicket('status-1', 'Keyboard not working'); // from the cache
    await waitFor(async () => (await page.locator('#cache-detail').innerText()) === '1 hit · 1 miss', { message: 'the cache numbers' });
    assert.equal(await page.locator('#cache-ratio').innerText(), '50.0 %');
    assert.match(await page.locator('#ttft').innerText(), /^\d+(\.\d)? (ms|s)$/);
    assert.match(await page.locator('#ttft-detail').innerText(), /^90 % within \d+ (ms|s) · 1 answer$/);
    assert.ok(await number(page, '#tps') > 0);
    assert.notEqual(await page.locator('#connections-detail').innerText(), requestsBefore);
    assert.ok(await page.locator('#outcomes li[data-label="complete"]').isVisible());
    assert.ok(await page.locator('#connections-chart polyline').count() === 1, 'a chart is drawn');

    // An error shows up by its code.
    await fetch(`${stack.daemon.url}/api/tickets/bad%20id/ai-session`);
    await waitFor(async () => page.locator('#errors li[data-label="bad_request"]').isVisible(), { message: 'bad_request counted' });
    await screenshot(page, 'status-light');
    await assertLabelled(page);
    assert.deepEqual(await problems(), []);
    await page.context().close();

    const dark = await openPage(stack.browser, { colorScheme: 'dark' });
    await dark.page.goto(`${stack.daemon.url}/status?refresh=300`);
    await waitFor(async () => Number(await dark.page.locator('body').getAttribute('data-polls')) >= 3, { message: 'polls' });
    await waitFor(async () => (await dark.page.locator('#models').innerText()).includes('llama3.2'), { message: 'the models' });
    await screenshot(dark.page, 'status-dark');
    assert.deepEqual(await dark.problems(), []);
    await dark.context.close();
  });

  test('history: ticket answers, paginated and searchable', async () => {
    await stack.fake.script({ reply: 'Answered.' });
    for (let i = 1; i <= 27; i += 1) {
      await answerTicket(`h-${String(i).padStart(2, '0')}`, i === 17 ? 'The scanner on floor 2 jams' : `Routine ticket number ${i}`);
    }
    const { page, problems } = await openPage(stack.browser);
    await page.goto(`${stack.daemon.url}/history`);
    const rows = page.locator('#ticket-rows tr');
    await waitFor(async () => (await rows.count()) === 25, { message: 'a first page of 25' });
    const total = Number(/of (\d+)$/.exec(await page.locator('#ticket-range').innerText())[1]);
    assert.ok(total >= 28, `every ticket counted (${total})`);
    assert.ok(await page.locator('#ticket-prev').isDisabled());
    await page.getByRole('button', { name: 'Next' }).first().click();
    await waitFor(async () => (await page.locator('#ticket-range').innerText()).startsWith('26–'), { message: 'the second page' });
    assert.equal(await rows.count(), total - 25);

    await page.getByLabel('Search').first().fill('scanner');
    await waitFor(async () => (await rows.count()) === 1 && (await page.locator('#ticket-range').innerText()) === '1–1 of 1', { message: 'one match' });
    assert.equal(await rows.first().getAttribute('data-ticket'), 'h-17');
    await screenshot(page, 'history-light');
    await rows.first().locator('a').click();
    await page.waitForURL(/\/tickets\/h-17$/);
    await waitFor(async () => (await answerOf(page)).state === 'done', { message: 'the ticket opened from the history' });
    assert.equal(await page.locator('#ticket-body').inputValue(), 'The scanner on floor 2 jams');
    await assertLabelled(page);
    assert.deepEqual(await problems(), []);
    await page.context().close();
  });

  test('chat: a multi-turn session, kept across a reload', async () => {
    const { page, problems } = await openPage(stack.browser);
    await page.goto(`${stack.daemon.url}/chat`);
    await page.getByLabel('Your user id').fill('ana');
    await page.getByRole('button', { name: 'Show my chats' }).click();
    await waitFor(async () => (await page.locator('#sessions-note').innerText()) === 'No chats yet.', { message: 'no chats yet' });
    await page.getByPlaceholder('Title (optional)').fill('VPN at home');
    await page.getByRole('button', { name: 'Start a chat' }).click();
    await waitFor(async () => (await page.locator('#chat-title').innerText()) === 'VPN at home', { message: 'the new chat' });

    const replies = page.locator('#chat-log li.assistant');
    for (const [question, reply] of [
      ['The VPN client says "certificate expired".', 'Renew the **certificate** from the portal.'],
      ['Where is the portal?', 'At https://portal.example, under *Devices*.'],
    ]) {
      await stack.fake.script({ reply, tokenDelayMs: 10 });
      const n = await replies.count();
      await page.getByLabel('Message', { exact: true }).fill(question);
      await page.keyboard.press('Control+Enter');
      await waitFor(async () => (await replies.count()) === n + 1, { message: 'a reply bubble' });
      await waitFor(async () => (await replies.last().getAttribute('data-state')) === 'done', { message: 'the reply' });
    }
    assert.match(await replies.first().innerText(), /Renew the certificate from the portal\./);
    assert.equal(await replies.first().locator('strong').innerText(), 'certificate');
    assert.match(await replies.last().innerText(), /under Devices/);
    assert.match(await page.locator('#sessions').innerText(), /VPN at home\s+4 msg/);
    await screenshot(page, 'chat-light');

    await page.reload();
    await waitFor(async () => (await page.locator('#chat-log li').count()) === 4, { message: 'the stored messages' });
    assert.equal(await page.locator('#chat-title').innerText(), 'VPN at home');
    await assertLabelled(page);
    assert.deepEqual(await problems(), []);
    await page.context().close();

    const dark = await openPage(stack.browser, { colorScheme: 'dark' });
    await dark.page.goto(page.url());
    await waitFor(async () => (await dark.page.locator('#chat-log li').count()) === 4, { message: 'the stored messages' });
    await screenshot(dark.page, 'chat-dark');
    await dark.context.close();
  });

  test('with auth on: a token from the link or the sign-in field', async () => {
    const key = 'e2e-secret-key-0123456789';
    const secured = await startDaemon({ ollamaUrl: stack.fake.url, env: { TICKETAID_AUTH_MODE: 'api_key', TICKETAID_AUTH_API_KEYS: key } });
    try {
      await stack.fake.script({ reply: 'Signed-in answer.' });
      // No token: the page asks for one, and the answer waits for it.
      const { page, problems } = await openPage(stack.browser);
      await page.goto(`${secured.url}/tickets/auth-1?body=${encodeURIComponent('Locked out')}`);
      await page.locator('#auth-form').waitFor({ state: 'visible' });
      assert.equal(await page.locator('#auth-note').innerText(), 'Sign in with your access token.');
      await page.locator('#error').waitFor({ state: 'visible' });
      assert.equal(await page.locator('#error').getAttribute('data-code'), 'unauthorized');

      await page.getByLabel('Access token').fill('wrong-key');
      await page.getByRole('button', { name: 'Sign in' }).click();
      await waitFor(async () => (await page.locator('#auth-note').innerText()) === 'The access token was refused.', { message: 'refused' });

      await page.getByLabel('Access token').fill(key);
      await page.getByRole('button', { name: 'Sign in' }).click();
      await waitFor(async () => (await answerOf(page)).state === 'done', { message: 'the answer after signing in' });
      assert.equal((await answerOf(page)).text, 'Signed-in answer.');
      assert.ok(await page.locator('#auth-form').isHidden());
      assert.ok(await page.locator('#auth-signout').isVisible());
      assert.deepEqual(await problems(), []);
      await page.context().close();

      // From a helpdesk link: #token=..., which leaves the address bar at once.
      const linked = await openPage(stack.browser);
      await linked.page.goto(`${secured.url}/tickets/auth-1?body=${encodeURIComponent('Locked out')}#token=${key}`);
      await waitFor(async () => (await answerOf(linked.page)).state === 'done', { message: 'the cached answer' });
      assert.doesNotMatch(linked.page.url(), /token/);
      assert.equal(await linked.page.evaluate(() => sessionStorage.getItem('ticketaid.token')), key);
      // The status page's model list needs the token too (Authorization: Bearer).
      await linked.page.goto(`${secured.url}/status`);
      await waitFor(async () => (await linked.page.locator('#models').innerText()).includes('llama3.2'), { message: 'the models' });
      assert.deepEqual(await linked.problems(), []);
      await linked.context.close();
    } finally {
      await secured.stop();
    }
  });
});
