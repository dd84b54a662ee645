// The ticket console in Chromium against the real daemon and the fake Ollama:
// streaming, the cache, regenerate, cancel, follow-ups, the queue, a POSTed ticket,
// copy, and screenshots in light, dark and tablet widths.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import {
  answerOf, openPage, screenshot, waitFor,
  useStack,
} from './support/harness.mjs';

const ANSWER = [
  'The printer prints **blank pages** because its spooler holds a broken job.',
  '',
  '1. Restart the print spooler:',
  '',
  '```powershell',
  'Restart-Service -Name Spooler',
  '```',
  '',
  '2. Clear the queue and print a test page.',
  '3. If it persists, check that the toner cartridge is seated.',
].join('\n');

const stack = useStack({
  // One generation at a time, so that a second ticket waits in line.
  env: { TICKETAID_GENERATION_MAX_PARALLEL: '1' },
});

async function rest(path, init) {
  const response = await fetch(`${stack.daemon.url}${path}`, init);
  return { status: response.status, body: await response.json().catch(() => null) };
}

describe('the ticket console', () => {
  test('a new ticket streams in: the text grows over several observations', async () => {
    // About 60 tokens, 60 ms apart: some 3.5 s of streaming to watch.
    await stack.fake.script({ reply: ANSWER, tokenDelayMs: 60 });
    const { page, problems } = await openPage(stack.browser);
    await page.goto(`${stack.daemon.url}/`);

    // Keyboard only: the id field has the focus, Tab moves to the text, Ctrl+Enter opens.
    await waitFor(() => page.evaluate(() => document.activeElement?.id === 'ticket-id'), { message: 'focus on the id' });
    await page.keyboard.type('4711');
    await page.keyboard.press('Tab');
    await page.keyboard.type('Printer on floor 3 prints blank pages');
    await page.keyboard.press('Control+Enter');

    const seen = [];
    let cursorSeen = false;
    while (seen.length < 4) {
      const before = seen.at(-1)?.length ?? 0;
      await page.waitForFunction(
        (n) => document.querySelector('#answer').innerText.length > n &&
          document.querySelector('#answer').dataset.state === 'streaming',
        before,
      );
      const now = await answerOf(page);
      cursorSeen ||= now.cursor;
      seen.push(now.text);
    }
    for (let i = 1; i < seen.length; i += 1) {
      assert.ok(seen[i].length > seen[i - 1].length, 'each observation shows more text');
    }
    // (Markdown re-renders as it completes, "**blank" becomes "blank", so earlier
    // text is not always a prefix of later text; its first words are.)
    for (const text of seen) assert.ok('The printer'.startsWith(text.slice(0, 11)), text);
    assert.ok(cursorSeen, 'a cursor shows while the answer streams');
    assert.equal(await page.locator('#badge').innerText(), 'generating…');

    await waitFor(async () => (await answerOf(page)).state === 'done', { message: 'the answer to finish' });
    const done = await answerOf(page);
    assert.equal(done.cursor, false, 'no cursor once done');
    assert.match(done.text, /The printer prints blank pages/);
    assert.match(done.text, /check that the toner cartridge is seated\.$/);
    assert.equal(await page.locator('#answer strong').innerText(), 'blank pages', 'Markdown rendered');
    assert.equal(await page.locator('#answer pre code').innerText(), 'Restart-Service -Name Spooler\n');
    assert.equal(await page.locator('#answer ol > li').count(), 3);
    assert.match(await page.locator('#meta').innerText(), /^llama3\.2 · \d+ tokens · [\d.]+ (ms|s)$/);
    assert.match(new URL(page.url()).pathname, /^\/tickets\/4711$/);
    assert.equal(new URL(page.url()).searchParams.get('body'), 'Printer on floor 3 prints blank pages');
    await page.evaluate(() => document.activeElement?.blur());
    await screenshot(page, 'console-light');
    assert.deepEqual(await problems(), []);
    await page.context().close();
  });

  test('reload: the answer comes from the cache and the badge says so', async () => {
    await waitFor(async () => (await rest('/api/tickets/4711/ai-session')).body?.status === 'complete', { message: 'a stored answer' });
    const { page, problems } = await openPage(stack.browser);
    const hitsBefore = (await rest('/ws/status')).body.stats.cache_hits;
    await page.goto(`${stack.daemon.url}/tickets/4711?body=${encodeURIComponent('Printer on floor 3 prints blank pages')}`);
    await waitFor(async () => (await answerOf(page)).state === 'done', { message: 'the cached answer' });
    assert.match(await page.locator('#badge').innerText(), /^cached · \S/);
    assert.match((await answerOf(page)).text, /toner cartridge is seated/);
    assert.equal((await rest('/ws/status')).body.stats.cache_hits, hitsBefore + 1);

    // The bare ticket address reads the text back from the stored answer.
    await page.goto(`${stack.daemon.url}/tickets/4711`);
    await waitFor(async () => (await answerOf(page)).state === 'done', { message: 'the cached answer' });
    assert.match(await page.locator('#badge').innerText(), /^cached · /);
    assert.equal(await page.locator('#ticket-body').inputValue(), 'Printer on floor 3 prints blank pages');
    assert.deepEqual(await problems(), []);
    await page.context().close();
  });

  test('dark mode and a tablet-sized window', async () => {
    for (const [name, options] of [
      ['console-dark', { colorScheme: 'dark' }],
      ['console-tablet', { viewport: { width: 820, height: 1180 } }],
    ]) {
      const { page, problems } = await openPage(stack.browser, options);
      await page.goto(`${stack.daemon.url}/tickets/4711`);
      await waitFor(async () => (await answerOf(page)).state === 'done', { message: 'the answer' });
      if (options.colorScheme === 'dark') {
        const bg = await page.evaluate(() => getComputedStyle(document.body).backgroundColor);
        assert.equal(bg, 'rgb(15, 18, 23)', 'the dark palette applies');
      } else {
        // One column: the answer sits below the form, not beside it.
        const form = await page.locator('#open-form').boundingBox();
        const answer = await page.locator('#answer-panel').boundingBox();
        assert.ok(answer.y > form.y + form.height, 'the answer is under the form');
        assert.ok(answer.width > 700, 'and as wide as the window');
      }
      await screenshot(page, name);
      assert.deepEqual(await problems(), []);
      await page.context().close();
    }
  });

  test('regenerate: a new answer, and the old one stays as an earlier revision', async () => {
    const { page, problems } = await openPage(stack.browser);
    await page.goto(`${stack.daemon.url}/tickets/4711`);
    await waitFor(async () => (await answerOf(page)).state === 'done', { message: 'the cached answer' });
    await stack.fake.script({ reply: 'A newer idea: **update the printer driver** to version 5.2.', tokenDelayMs: 10 });
    await page.getByRole('button', { name: 'Regenerate' }).click();
    await waitFor(async () => {
      const a = await answerOf(page);
      return a.state === 'done' && /update the printer driver/.test(a.text);
    }, { message: 'the new answer' });
    assert.equal(await page.locator('#badge').innerText(), 'new answer');

    const toggle = page.locator('#revisions-toggle');
    await waitFor(async () => (await toggle.innerText()) === 'Earlier revisions (1)', { message: 'one earlier revision' });
    await toggle.click();
    assert.equal(await toggle.getAttribute('aria-expanded'), 'true');
    const revision = page.locator('#revisions details');
    await revision.first().waitFor();
    assert.match(await revision.locator('summary').innerText(), /^Revision 1 · /);
    await revision.locator('summary').click();
    assert.match(await revision.locator('.markdown').innerText(), /spooler holds a broken job/);
    assert.deepEqual(await problems(), []);
    await page.context().close();
  });

  test('a follow-up question is answered in the ticket\'s conversation', async () => {
    const { page, problems } = await openPage(stack.browser);
    await page.goto(`${stack.daemon.url}/tickets/4711`);
    await waitFor(async () => (await answerOf(page)).state === 'done', { message: 'the answer' });
    await stack.fake.script({ reply: 'Driver **5.2** came out in March; take it from the vendor\'s site.', tokenDelayMs: 15 });
    await page.getByLabel('Ask about this ticket').fill('Which driver version fixes it?');
    await page.getByRole('button', { name: 'Ask', exact: true }).click();
    const reply = page.locator('#thread li.assistant').last();
    await waitFor(async () => (await reply.getAttribute('data-state')) === 'done', { message: 'the follow-up reply' });
    assert.match(await reply.innerText(), /Driver 5\.2 came out in March/);
    assert.equal(await page.locator('#thread li.user').last().innerText(), 'YOU\nWhich driver version fixes it?');

    // The conversation is stored: a reload shows it again.
    await page.reload();
    await waitFor(async () => (await page.locator('#thread li').count()) === 2, { message: 'the stored conversation' });
    assert.match(await page.locator('#thread li.assistant').innerText(), /Driver 5\.2 came out/);
    await screenshot(page, 'console-followup');
    assert.deepEqual(await problems(), []);
    await page.context().close();
  });

  test('cancel stops the answer; it can then be asked again', async () => {
    await stack.fake.script({ reply: 'Check the network cable, then the switch port, then the DHCP lease.', tokenDelayMs: 5, fault: 'stall_after_tokens', faultAfterTokens: 4 });
    const { page, problems } = await openPage(stack.browser);
    await page.goto(`${stack.daemon.url}/tickets/4712?body=${encodeURIComponent('No network on desk 12')}`);
    await waitFor(async () => (await answerOf(page)).text.includes('Check the network'), { message: 'the first words' });
    await page.getByRole('button', { name: 'Cancel' }).click();
    await waitFor(async () => (await answerOf(page)).state === 'cancelled', { message: 'cancelled' });
    assert.equal(await page.locator('#error-text').innerText(), 'Cancelled. The answer was not stored.');
    assert.equal(await page.locator('#badge').innerText(), 'cancelled');
    await waitFor(async () => (await rest('/api/tickets/4712/ai-session')).body?.status === 'cancelled', { message: 'the session marked cancelled' });

    await stack.fake.script({ reply: 'Check the network cable first.', tokenDelayMs: 5 });
    await page.getByRole('button', { name: 'Ask again' }).click();
    await waitFor(async () => (await answerOf(page)).state === 'done', { message: 'the answer asked again' });
    assert.equal((await answerOf(page)).text, 'Check the network cable first.');
    assert.ok(await page.locator('#error').isHidden());
    assert.deepEqual(await problems(), []);
    await page.context().close();
  });

  test('while the model is busy, the queue position shows', async () => {
    await stack.fake.script({ reply: 'First ticket answer, slowly.', fault: 'stall_after_tokens', faultAfterTokens: 2 });
    const first = await openPage(stack.browser);
    await first.page.goto(`${stack.daemon.url}/tickets/q1?body=first`);
    await waitFor(async () => (await answerOf(first.page)).state === 'streaming', { message: 'the first ticket streaming' });

    const second = await openPage(stack.browser);
    await second.page.goto(`${stack.daemon.url}/tickets/q2?body=second`);
    await waitFor(async () => second.page.locator('#queue').isVisible(), { message: 'the queue notice' });
    assert.equal(await second.page.locator('#queue-text').innerText(), 'Waiting for the model: next in line.');
    await screenshot(second.page, 'console-queued');

    await stack.fake.script({ reply: 'Second ticket answer.' });
    await stack.fake.release();
    await waitFor(async () => (await answerOf(first.page)).state === 'done', { message: 'the first answer' });
    await waitFor(async () => (await answerOf(second.page)).state === 'done', { message: 'the second answer' });
    assert.equal((await answerOf(second.page)).text, 'Second ticket answer.');
    assert.ok(await second.page.locator('#queue').isHidden());
    assert.deepEqual([...(await first.problems()), ...(await second.problems())], []);
    await first.context.close();
    await second.context.close();
  });

  test('a helpdesk form POSTs a long ticket text', async () => {
    await stack.fake.script({ reply: 'Long tickets are answered too.' });
    const { page, problems } = await openPage(stack.browser);
    await page.goto(`${stack.daemon.url}/`);
    const long = `The VPN drops every few minutes. "Quotes" & <angle brackets>.\n${'Log line. '.repeat(400)}`;
    // As a helpdesk page would: a plain form, method POST, field "body".
    await page.evaluate(({ text }) => {
      const form = document.createElement('form');
      form.method = 'post';
      form.action = '/tickets/4800';
      const field = document.createElement('input');
      field.type = 'hidden';
      field.name = 'body';
      field.value = text;
      form.append(field);
      document.body.append(form);
      form.submit();
    }, { text: long });
    await waitFor(async () => (await answerOf(page)).state === 'done', { message: 'the answer to the posted ticket' });
    // Form submission sends line breaks as CRLF (HTML's form encoding).
    assert.equal(await page.locator('#ticket-body').inputValue(), long);
    assert.equal(new URL(page.url()).pathname, '/tickets/4800');
    assert.equal(new URL(page.url()).search, '', 'a long text stays out of the address');
    const stored = await rest('/api/tickets/4800/ai-session');
    assert.equal(stored.body.prompt.replace(/\r\n/g, '\n'), long);

    await page.reload();
    await waitFor(async () => (await answerOf(page)).state === 'done', { message: 'the cached answer after a reload' });
    assert.match(await page.locator('#badge').innerText(), /^cached/);
    assert.deepEqual(await problems(), []);
    await page.context().close();
  });

  test('copy puts the answer\'s Markdown on the clipboard', async () => {
    const { context, page, problems } = await openPage(stack.browser);
    await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: stack.daemon.url });
    await page.goto(`${stack.daemon.url}/tickets/4712?body=${encodeURIComponent('No network on desk 12')}`);
    await waitFor(async () => (await answerOf(page)).state === 'done', { message: 'the answer' });
    await page.getByRole('button', { name: 'Copy answer' }).click();
    await waitFor(async () => (await page.locator('#copy').innerText()) === 'Copied', { message: 'copied' });
    assert.equal(await page.evaluate(() => navigator.clipboard.readText()), 'Check the network cable first.');
    assert.deepEqual(await problems(), []);
    await context.close();
  });
});
