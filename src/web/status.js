// The status page (/status), refreshed live: it polls /ready, /ws/status and /metrics
// every few seconds (/api/models less often), keeps the last readings for the
// sparklines, and derives rates from the differences between readings.
// /status?refresh=MS sets the interval (250 ms at least; 2 s by default).
import { $, api, el, formatBytes, formatDuration, formatNumber, initAuth, onSignedIn, token } from './common.js';
import { parsePrometheus, value, byLabel, histogram, histogramDelta, quantileBound } from './metrics.js';
import { sparkline, bars, ratio } from './charts.js';

const CAPACITY = 60; // readings kept for the charts
const MODELS_EVERY = 5; // polls between two /api/models
const interval = Math.max(250, Number(new URLSearchParams(location.search).get('refresh')) || 2000);

const history = { connections: [], active: [], queued: [], ttft: [], tps: [] };
let previous = null; // {at, metrics samples derived}
let polls = 0;
let timer = null;

function push(series, v) {
  series.push(v);
  if (series.length > CAPACITY) series.shift();
}

// GET returning {status, body} whatever the status (/ready answers 503 with a body).
async function getJson(path) {
  const headers = { Accept: 'application/json' };
  const t = token();
  if (t) headers.Authorization = `Bearer ${t}`;
  const response = await fetch(path, { headers, cache: 'no-store' });
  const body = await response.json().catch(() => null);
  return { status: response.status, body };
}

async function getText(path) {
  const response = await fetch(path, { cache: 'no-store' });
  if (!response.ok) throw new Error(`${path}: HTTP ${response.status}`);
  return response.text();
}

function plural(n, word, many = `${word}s`) {
  return `${formatNumber(n)} ${n === 1 ? word : many}`;
}

function setText(id, text) {
  $(id).textContent = text;
}

function showReady(ready) {
  const body = ready.body ?? {};
  const up = ready.status === 200;
  $('#ready-dot').className = `dot ${up ? 'up' : 'down'}`;
  setText('#ready-state', up ? 'Ready' : 'Not ready');
  setText('#ready-detail', body.failing?.length ? `Failing: ${body.failing.join(', ')}` : 'Every part answers.');
  setText('#storage-detail', `Database: ${body.storage?.ok ? 'open' : `failing (${body.storage?.error ?? 'unknown'})`}`);
  const limit = body.rateLimit;
  if (limit) {
    setText('#limits-detail', `Rate limits kept ${limit.backend === 'redis' ? 'in Redis' : 'in this process'}` +
      (limit.degraded ? ' (Redis unreachable: falling back)' : ''));
  }
  const ollama = body.ollama ?? {};
  $('#ollama-dot').className = `dot ${ollama.ok ? 'up' : 'down'}`;
  $('#card-ollama').dataset.up = String(Boolean(ollama.ok));
  setText('#ollama-state', ollama.ok ? 'Reachable' : 'Not reachable');
  setText('#ollama-version', ollama.version ? `version ${ollama.version}` : '');
  setText('#ollama-detail', ollama.ok ? ollama.url ?? '' : `${ollama.url ?? ''}: ${ollama.error ?? 'no answer'}`);
}

async function refreshModels() {
  const list = $('#models');
  try {
    const data = await api('/api/models');
    list.replaceChildren(
      ...data.models.map((m) =>
        el('li', {}, el('span', { text: m.name + (m.default ? ' (default)' : '') }), el('span', { class: 'sub', text: formatBytes(m.size) }))),
    );
    if (!data.defaultInstalled) {
      list.append(el('li', { class: 'error-text', text: `The default model ${data.default} is not installed (ollama pull ${data.default}).` }));
    }
  } catch (e) {
    list.replaceChildren(el('li', { class: 'sub', text: e.code === 'unauthorized' ? 'Sign in to see the models.' : e.text }));
  }
}

function showStats(stats) {
  setText('#connections', formatNumber(stats.current_connections));
  setText('#connections-detail',
    `peak ${formatNumber(stats.peak_connections)} · ${formatNumber(stats.total_connections)} since the start · ` +
    `${plural(stats.total_messages, 'request')}`);
  setText('#active', formatNumber(stats.active_generations));
  setText('#queued', formatNumber(stats.queue_size));
  push(history.connections, stats.current_connections);
  push(history.active, stats.active_generations);
  push(history.queued, stats.queue_size);
  sparkline($('#connections-chart'), [history.connections], { capacity: CAPACITY });
  sparkline($('#queue-chart'), [history.active, history.queued], { capacity: CAPACITY });
}

function showMetrics(samples, at) {
  const ttft = histogram(samples, 'ticketaid_time_to_first_token_seconds');
  const tps = histogram(samples, 'ticketaid_tokens_per_second');
  const tokens = value(samples, 'ticketaid_response_tokens_total');
  const hits = value(samples, 'ticketaid_cache_hits_total');
  const misses = value(samples, 'ticketaid_cache_misses_total');

  setText('#ttft', ttft.count ? formatDuration((1000 * ttft.sum) / ttft.count) : '–');
  // The histogram's buckets say "within": the bound of the bucket that holds 90 %.
  const p90 = quantileBound(ttft, 0.9);
  setText('#ttft-detail', ttft.count
    ? `90 % within ${formatDuration(1000 * p90)} · ${plural(ttft.count, 'answer')}`
    : 'No answer generated yet.');
  setText('#tps', tps.count ? formatNumber(tps.sum / tps.count, 1) : '–');

  let forwarded = 0;
  if (previous) {
    const seconds = Math.max(0.001, (at - previous.at) / 1000);
    forwarded = Math.max(0, (tokens - previous.tokens) / seconds);
    const recent = histogramDelta(ttft, previous.ttft);
    push(history.ttft, recent.count > 0 ? recent.sum / recent.count : history.ttft.at(-1) ?? 0);
    push(history.tps, forwarded);
  }
  setText('#tps-detail', `${formatNumber(forwarded, 1)} tokens/s forwarded now · ${formatNumber(tokens)} in all`);
  sparkline($('#ttft-chart'), [history.ttft], { capacity: CAPACITY });
  sparkline($('#tps-chart'), [history.tps], { capacity: CAPACITY });

  const total = hits + misses;
  setText('#cache-ratio', total ? `${formatNumber((100 * hits) / total, 1)} %` : '–');
  setText('#cache-detail', `${plural(hits, 'hit')} · ${plural(misses, 'miss', 'misses')}`);
  ratio($('#cache-chart'), hits, total);

  const errors = Object.entries(byLabel(samples, 'ticketaid_errors_total', 'code'))
    .map(([label, v]) => ({ label, value: v }))
    .filter((e) => e.value > 0)
    .sort((a, b) => b.value - a.value);
  const errorTotal = errors.reduce((s, e) => s + e.value, 0);
  setText('#errors-total', `${formatNumber(errorTotal)} in all`);
  bars($('#errors'), errors, formatNumber);
  if (!errors.length) $('#errors').replaceChildren(el('li', { class: 'sub', text: 'No errors since the start.' }));

  const outcomes = Object.entries(byLabel(samples, 'ticketaid_generations_total', 'outcome'))
    .map(([label, v]) => ({ label, value: v }))
    .filter((e) => e.value > 0);
  bars($('#outcomes'), outcomes, formatNumber);
  if (!outcomes.length) $('#outcomes').replaceChildren(el('li', { class: 'sub', text: 'None yet.' }));
  const complete = outcomes.find((o) => o.label === 'complete')?.value ?? 0;
  setText('#generations-detail', `${plural(complete, 'answer')} completed since the start`);

  previous = { at, tokens, ttft };
}

async function poll() {
  clearTimeout(timer);
  const at = Date.now();
  try {
    const [ready, status, metricsText] = await Promise.all([
      getJson('/ready'),
      getJson('/ws/status'),
      getText('/metrics'),
    ]);
    showReady(ready);
    if (status.body?.stats) showStats(status.body.stats);
    showMetrics(parsePrometheus(metricsText), at);
    if (polls % MODELS_EVERY === 0) refreshModels();
    polls += 1;
    $('#status-error').hidden = true;
    const time = new Date().toLocaleTimeString();
    setText('#updated', `Updated ${time} · every ${formatNumber(interval / 1000, interval < 1000 ? 2 : 0)} s`);
    document.body.dataset.polls = String(polls);
  } catch (e) {
    $('#status-error').hidden = false;
    setText('#status-error-text', `ticketaid does not answer (${e.message ?? e}); trying again.`);
  }
  if (!document.hidden) timer = setTimeout(poll, interval);
}

document.addEventListener('visibilitychange', () => {
  if (!document.hidden) poll();
});
onSignedIn(refreshModels);
await initAuth();
poll();
