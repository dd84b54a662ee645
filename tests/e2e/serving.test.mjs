// How the daemon serves the console's embedded files (no browser needed): content
// types, the security headers on every page, ETag revalidation, gzip, the cache
// policy of versioned libraries, HEAD, the console's routes and the ticket form POST.
import assert from 'node:assert/strict';
import http from 'node:http';
import { describe, test } from 'node:test';
import { gunzipSync } from 'node:zlib';

import { useStack } from './support/harness.mjs';

const stack = useStack({ browser: false });

// A raw request (no automatic decompression), body as a Buffer.
function request(path, { method = 'GET', headers = {}, body } = {}) {
  return new Promise((resolve, reject) => {
    const req = http.request(`${stack.daemon.url}${path}`, { method, headers, agent: false }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks) }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

const PAGES = { '/': 'Tickets', '/tickets/4711': 'Tickets', '/chat': 'Chat', '/history': 'History', '/status': 'Status' };

describe('serving the console', () => {
  test('every page: HTML, a CSP without inline script, nosniff, revalidated', async () => {
    for (const [path, title] of Object.entries(PAGES)) {
      const r = await request(path);
      assert.equal(r.status, 200, path);
      assert.equal(r.headers['content-type'], 'text/html; charset=utf-8');
      const csp = r.headers['content-security-policy'];
      assert.match(csp, /(^|; )script-src 'self'(;|$)/, path);
      assert.match(csp, /(^|; )default-src 'none'/);
      assert.match(csp, /require-trusted-types-for 'script'/);
      assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/);
      assert.equal(r.headers['x-content-type-options'], 'nosniff');
      assert.equal(r.headers['cache-control'], 'no-cache');
      assert.match(r.headers.etag, /^"[0-9a-f]{32}"$/);
      const html = r.body.toString();
      assert.match(html, new RegExp(`<title>${title} · ticketaid</title>`));
      // The pages themselves hold no inline script or handler: every script has a src.
      for (const tag of html.match(/<script\b[^>]*>/g)) assert.match(tag, /\ssrc="\/static\/[^"]+"/);
      assert.doesNotMatch(html, /\son[a-z]+\s*=/i);
      assert.doesNotMatch(html, /\sstyle\s*=/i);
    }
    const ticketPage = await request('/tickets/4711');
    assert.deepEqual(ticketPage.body, (await request('/')).body, '/tickets/{id} is the console page');
  });

  test('ETag: unchanged files answer 304, in either encoding', async () => {
    const plain = await request('/static/console.js');
    assert.equal(plain.status, 200);
    assert.equal(plain.headers['content-type'], 'text/javascript; charset=utf-8');
    const again = await request('/static/console.js', { headers: { 'If-None-Match': plain.headers.etag } });
    assert.equal(again.status, 304);
    assert.equal(again.body.length, 0);
    assert.equal(again.headers.etag, plain.headers.etag);
    assert.equal(again.headers['content-type'], undefined);

    const gz = await request('/static/console.js', { headers: { 'Accept-Encoding': 'gzip, deflate, br' } });
    assert.equal(gz.headers['content-encoding'], 'gzip');
    assert.equal(gz.headers.etag, plain.headers.etag.replace(/"$/, '-gz"'));
    assert.deepEqual(gunzipSync(gz.body), plain.body);
    assert.ok(gz.body.length < plain.body.length / 2);
    assert.match(gz.headers.vary, /Accept-Encoding/);
    for (const tag of [gz.headers.etag, `W/${plain.headers.etag}`, `"other", ${plain.headers.etag}`, '*']) {
      const r = await request('/static/console.js', { headers: { 'If-None-Match': tag, 'Accept-Encoding': 'gzip' } });
      assert.equal(r.status, 304, tag);
    }
    const stale = await request('/static/console.js', { headers: { 'If-None-Match': '"0123"' } });
    assert.equal(stale.status, 200);
    const refused = await request('/static/console.js', { headers: { 'Accept-Encoding': 'gzip;q=0, identity' } });
    assert.equal(refused.headers['content-encoding'], undefined);
  });

  test('the libraries carry their version in their names and are cached for a year', async () => {
    const libs = (await request('/static/vendor/libs.js')).body.toString();
    const names = [...libs.matchAll(/from '\.\/([^']+)'/g)].map((m) => m[1]);
    assert.equal(names.length, 2);
    assert.match(names[0], /^marked-\d+\.\d+\.\d+\.min\.js$/);
    assert.match(names[1], /^purify-\d+\.\d+\.\d+\.min\.js$/);
    for (const name of names) {
      const r = await request(`/static/vendor/${name}`, { headers: { 'Accept-Encoding': 'gzip' } });
      assert.equal(r.status, 200);
      assert.equal(r.headers['cache-control'], 'public, max-age=31536000, immutable');
      assert.equal(r.headers['content-encoding'], 'gzip');
      assert.doesNotMatch(gunzipSync(r.body).toString(), /sourceMappingURL/);
    }
    assert.equal((await request('/static/vendor/libs.js')).headers['cache-control'], 'no-cache');
  });

  test('HEAD, unknown files, the client library', async () => {
    const get = await request('/static/app.css');
    const head = await request('/static/app.css', { method: 'HEAD' });
    assert.equal(head.status, 200);
    assert.equal(head.body.length, 0);
    assert.equal(Number(head.headers['content-length']), get.body.length);
    assert.equal(head.headers['content-type'], 'text/css; charset=utf-8');

    for (const path of ['/static/nope.js', '/static/index.html', '/static/vendor/nope.js', '/static/../README.md']) {
      assert.equal((await request(path)).status, 404, path);
    }
    const client = await request('/static/ticketaid-client.js');
    assert.equal(client.status, 200);
    assert.match(client.body.toString(), /export function openTicket\(/);
    // Loaded from another origin listed in server.allowed_origins, it is a CORS request.
    const other = await request('/static/ticketaid-client.js', { headers: { Origin: 'https://desk.example' } });
    assert.equal(other.status, 403, 'an origin that is not allowed is refused');
  });

  test('a ticket form POST embeds the text, escaped, and is never cached', async () => {
    const text = 'He said "hi" & left <script>alert(1)</script>';
    const r = await request('/tickets/4711', {
      method: 'POST',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ body: text }).toString(),
    });
    assert.equal(r.status, 200);
    assert.equal(r.headers['cache-control'], 'no-store');
    assert.match(r.headers['content-security-policy'], /script-src 'self'/);
    const html = r.body.toString();
    assert.ok(html.includes(
      '<meta name="ticketaid-posted-body" content="He said &quot;hi&quot; &amp; left &lt;script&gt;alert(1)&lt;/script&gt;">'));
    assert.equal(html.match(/<script/g).length, 1, 'no script but the page\'s own');

    const json = await request('/tickets/4711', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '{}' });
    assert.equal(json.status, 415);
  });
});
