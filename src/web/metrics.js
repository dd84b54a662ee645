// A reader of the Prometheus text format (version 0.0.4) that /metrics serves, and
// the sums the status page needs from it: counters by label, histogram averages and
// quantiles.

// Parses the text into Map(name -> [{labels, value}]). Comments (# HELP, # TYPE) and
// timestamps are skipped; label values are unescaped.
export function parsePrometheus(text) {
  const samples = new Map();
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const nameEnd = line.search(/[{\s]/);
    if (nameEnd <= 0) continue;
    const name = line.slice(0, nameEnd);
    let rest = line.slice(nameEnd);
    const labels = {};
    if (rest.startsWith('{')) {
      let i = 1;
      while (i < rest.length && rest[i] !== '}') {
        const eq = rest.indexOf('=', i);
        if (eq < 0) break;
        const key = rest.slice(i, eq).trim().replace(/^,/, '').trim();
        let j = eq + 1;
        if (rest[j] !== '"') break;
        j += 1;
        let value = '';
        while (j < rest.length && rest[j] !== '"') {
          if (rest[j] === '\\' && j + 1 < rest.length) {
            const next = rest[j + 1];
            value += next === 'n' ? '\n' : next;
            j += 2;
          } else {
            value += rest[j];
            j += 1;
          }
        }
        labels[key] = value;
        i = j + 1;
        while (rest[i] === ',' || rest[i] === ' ') i += 1;
      }
      rest = rest.slice(rest.indexOf('}', i) + 1);
    }
    const valueText = rest.trim().split(/\s+/)[0];
    const value = valueText === '+Inf' ? Infinity : valueText === '-Inf' ? -Infinity : Number(valueText);
    if (!samples.has(name)) samples.set(name, []);
    samples.get(name).push({ labels, value });
  }
  return samples;
}

// The sum of a metric's samples whose labels include `match` (0 when absent).
export function value(samples, name, match = {}) {
  let total = 0;
  for (const s of samples.get(name) ?? []) {
    if (Object.entries(match).every(([k, v]) => s.labels[k] === v)) total += s.value;
  }
  return total;
}

// {labelValue: value} of one label of a metric, e.g. errors by code.
export function byLabel(samples, name, label) {
  const out = {};
  for (const s of samples.get(name) ?? []) {
    const key = s.labels[label];
    if (key !== undefined) out[key] = (out[key] ?? 0) + s.value;
  }
  return out;
}

// A histogram's buckets [{le, count}] (cumulative, sorted), sum and count.
export function histogram(samples, name) {
  const buckets = (samples.get(`${name}_bucket`) ?? [])
    .map((s) => ({ le: s.labels.le === '+Inf' ? Infinity : Number(s.labels.le), count: s.value }))
    .sort((a, b) => a.le - b.le);
  return { buckets, sum: value(samples, `${name}_sum`), count: value(samples, `${name}_count`) };
}

// What happened between two readings of a histogram (for "recent" figures).
export function histogramDelta(now, before) {
  if (!before) return now;
  return {
    buckets: now.buckets.map((b, i) => ({ le: b.le, count: b.count - (before.buckets[i]?.count ?? 0) })),
    sum: now.sum - before.sum,
    count: now.count - before.count,
  };
}

// The q-quantile by linear interpolation inside the bucket, as Prometheus's
// histogram_quantile does; null without observations.
export function quantile(h, q) {
  if (!h.count || !h.buckets.length) return null;
  const rank = q * h.count;
  let lowerBound = 0;
  let lowerCount = 0;
  for (const b of h.buckets) {
    if (b.count >= rank) {
      if (b.le === Infinity) return lowerBound;
      const inBucket = b.count - lowerCount;
      return inBucket > 0 ? lowerBound + ((b.le - lowerBound) * (rank - lowerCount)) / inBucket : b.le;
    }
    lowerBound = b.le;
    lowerCount = b.count;
  }
  return lowerBound;
}

// The upper bound of the bucket holding the q-quantile: "q of them took at most
// this" (null without observations; the largest finite bound for the +Inf bucket).
export function quantileBound(h, q) {
  if (!h.count || !h.buckets.length) return null;
  const rank = q * h.count;
  const finite = h.buckets.filter((b) => b.le !== Infinity);
  for (const b of finite) {
    if (b.count >= rank) return b.le;
  }
  return finite.at(-1)?.le ?? null;
}
