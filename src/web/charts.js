// Small charts drawn as inline SVG elements (no library, no HTML strings): a
// sparkline of one or two series, horizontal bars, and a two-part ratio bar. Colours
// come from the stylesheet, so they follow the dark mode.
const SVG = 'http://www.w3.org/2000/svg';
const W = 300;
const H = 56;

function node(tag, attrs) {
  const n = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) n.setAttribute(k, String(v));
  return n;
}

// series: arrays of numbers (oldest first), drawn against a shared scale from 0,
// across the whole width until `capacity` readings are shown, then scrolling.
export function sparkline(svg, series, { capacity: most = 60 } = {}) {
  svg.setAttribute('viewBox', `0 0 ${W} ${H}`);
  svg.setAttribute('preserveAspectRatio', 'none');
  const capacity = Math.min(most, Math.max(2, ...series.map((s) => s.length)));
  const max = Math.max(1, ...series.flat().filter(Number.isFinite));
  const x = (i) => (i * W) / Math.max(1, capacity - 1);
  const y = (v) => H - 2 - ((H - 4) * Math.max(0, v)) / max;
  const children = [node('line', { class: 'baseline', x1: 0, y1: H - 1, x2: W, y2: H - 1 })];
  series.forEach((values, k) => {
    if (values.length === 0) return;
    const offset = capacity - values.length;
    const points = values.map((v, i) => `${x(i + offset).toFixed(1)},${y(v).toFixed(1)}`);
    if (k === 0) {
      const first = x(offset).toFixed(1);
      children.push(node('polygon', { class: 'area', points: `${first},${H} ${points.join(' ')} ${W},${H}` }));
    }
    children.push(node('polyline', { class: k === 0 ? 'line' : 'line second', points: points.join(' ') }));
  });
  svg.replaceChildren(...children);
}

// entries: [{label, value}], drawn as bars against the largest value.
export function bars(list, entries, format = String) {
  const max = Math.max(1, ...entries.map((e) => e.value));
  list.replaceChildren(
    ...entries.map((e) => {
      const li = document.createElement('li');
      li.dataset.label = e.label;
      const label = document.createElement('span');
      label.className = 'label';
      label.textContent = e.label;
      label.title = e.label;
      const svg = node('svg', { viewBox: '0 0 100 12', preserveAspectRatio: 'none', 'aria-hidden': 'true' });
      svg.append(
        node('rect', { class: 'track', x: 0, y: 0, width: 100, height: 12, rx: 2 }),
        node('rect', { class: 'fill', x: 0, y: 0, width: ((100 * e.value) / max).toFixed(2), height: 12, rx: 2 }),
      );
      const value = document.createElement('span');
      value.className = 'value';
      value.textContent = format(e.value);
      li.append(label, svg, value);
      return li;
    }),
  );
}

// A bar split into the share of `part` and the rest.
export function ratio(svg, part, total) {
  svg.setAttribute('viewBox', '0 0 100 14');
  svg.setAttribute('preserveAspectRatio', 'none');
  const share = total > 0 ? (100 * part) / total : 0;
  svg.replaceChildren(
    node('rect', { class: 'miss', x: 0, y: 0, width: 100, height: 14, rx: 3 }),
    node('rect', { class: 'hit', x: 0, y: 0, width: share.toFixed(2), height: 14, rx: 3 }),
  );
}
