import { describe, expect, it } from 'vitest';
import { niceTicks, renderLineChart, xmlEscape } from '../../../runner/history/svg.js';

/**
 * A small well-formedness check: after the XML declaration the document is elements (with
 * quoted, unique attributes), character data without `<` or bare `&`, and properly nested tags
 * with a single root. Returns the element names in document order.
 */
function checkXml(doc: string): string[] {
  let s = doc.replace(/^<\?xml[^?]*\?>\s*/, '');
  const stack: string[] = [];
  const names: string[] = [];
  let roots = 0;
  const tag = /^<(\/?)([A-Za-z][\w:.-]*)((?:\s+[\w:.-]+="[^"<&]*(?:&(?:amp|lt|gt|quot|apos);[^"<&]*)*")*)\s*(\/?)>/;
  while (s.length > 0) {
    if (s.startsWith('<')) {
      const m = tag.exec(s);
      if (m === null) throw new Error(`malformed tag at: ${s.slice(0, 40)}`);
      const [all, close, name, attrs, selfClose] = m as unknown as [string, string, string, string, string];
      const attrNames = [...attrs.matchAll(/([\w:.-]+)=/g)].map((a) => a[1]);
      if (new Set(attrNames).size !== attrNames.length) throw new Error(`duplicate attribute in <${name}>`);
      if (close === '/') {
        if (stack.pop() !== name) throw new Error(`unbalanced </${name}>`);
      } else {
        if (stack.length === 0) roots++;
        names.push(name);
        if (selfClose !== '/') stack.push(name);
      }
      s = s.slice(all.length);
    } else {
      const i = s.indexOf('<');
      const text = i === -1 ? s : s.slice(0, i);
      if (/&(?!(?:amp|lt|gt|quot|apos);)/.test(text)) throw new Error(`bare & in text: ${text}`);
      if (stack.length === 0 && text.trim() !== '') throw new Error(`text outside the root: ${text}`);
      s = i === -1 ? '' : s.slice(i);
    }
  }
  if (stack.length > 0) throw new Error(`unclosed <${stack.join('>, <')}>`);
  if (roots !== 1) throw new Error(`${roots} root elements`);
  return names;
}

describe('SVG line chart', () => {
  const points = [
    { label: 'a1b2c3d', value: 10 },
    { label: 'e4f5a6b', value: 8 },
    { label: 'c7d8e9f', value: 12.5 },
  ];

  it('renders axes, ticks, labels and one point per commit (snapshot)', () => {
    const svg = renderLineChart(points, { title: 'heat/solve: time.total', subtitle: '3 results commits on HEAD', width: 480, height: 300 });
    expect(svg).toMatchInlineSnapshot(`
      "<?xml version="1.0" encoding="UTF-8"?>
      <svg xmlns="http://www.w3.org/2000/svg" width="480" height="300" viewBox="0 0 480 300" font-family="sans-serif" font-size="12">
        <title>heat/solve: time.total</title>
        <rect x="0" y="0" width="480" height="300" fill="#ffffff"/>
        <text class="title" x="240" y="24" text-anchor="middle" font-size="15" font-weight="bold">heat/solve: time.total</text>
        <text class="subtitle" x="240" y="42" text-anchor="middle" fill="#555555">3 results commits on HEAD</text>
        <g class="grid" stroke="#e6e6e6" stroke-width="1">
          <line x1="72" y1="252" x2="456" y2="252"/>
          <line x1="72" y1="213.6" x2="456" y2="213.6"/>
          <line x1="72" y1="175.2" x2="456" y2="175.2"/>
          <line x1="72" y1="136.8" x2="456" y2="136.8"/>
          <line x1="72" y1="98.4" x2="456" y2="98.4"/>
          <line x1="72" y1="60" x2="456" y2="60"/>
        </g>
        <g class="y-axis" text-anchor="end">
          <line x1="72" y1="60" x2="72" y2="252" stroke="#333333"/>
          <line x1="67" y1="252" x2="72" y2="252" stroke="#333333"/>
          <text x="64" y="256">8</text>
          <line x1="67" y1="213.6" x2="72" y2="213.6" stroke="#333333"/>
          <text x="64" y="217.6">9</text>
          <line x1="67" y1="175.2" x2="72" y2="175.2" stroke="#333333"/>
          <text x="64" y="179.2">10</text>
          <line x1="67" y1="136.8" x2="72" y2="136.8" stroke="#333333"/>
          <text x="64" y="140.8">11</text>
          <line x1="67" y1="98.4" x2="72" y2="98.4" stroke="#333333"/>
          <text x="64" y="102.4">12</text>
          <line x1="67" y1="60" x2="72" y2="60" stroke="#333333"/>
          <text x="64" y="64">13</text>
        </g>
        <g class="x-axis" text-anchor="middle" font-family="monospace" font-size="11">
          <line x1="72" y1="252" x2="456" y2="252" stroke="#333333"/>
          <line x1="96" y1="252" x2="96" y2="257" stroke="#333333"/>
          <text x="96" y="270">a1b2c3d</text>
          <line x1="264" y1="252" x2="264" y2="257" stroke="#333333"/>
          <text x="264" y="270">e4f5a6b</text>
          <line x1="432" y1="252" x2="432" y2="257" stroke="#333333"/>
          <text x="432" y="270">c7d8e9f</text>
        </g>
        <path class="series" d="M96 175.2 L264 252 L432 79.2" fill="none" stroke="#1f77b4" stroke-width="2" stroke-linejoin="round"/>
        <g class="points" fill="#1f77b4">
          <circle cx="96" cy="175.2" r="3.5"><title>a1b2c3d: 10</title></circle>
          <circle cx="264" cy="252" r="3.5"><title>e4f5a6b: 8</title></circle>
          <circle cx="432" cy="79.2" r="3.5"><title>c7d8e9f: 12.5</title></circle>
        </g>
      </svg>
      "
    `);
  });

  it('is well-formed XML, escaping names', () => {
    const svg = renderLineChart([{ label: '<&>', value: 1, note: 'a "quoted" & <odd> note' }, ...points], { title: 'p/s@x=<1>&y="2": m' });
    const names = checkXml(svg);
    expect(names[0]).toBe('svg');
    expect(names.filter((n) => n === 'circle')).toHaveLength(4);
    expect(names.filter((n) => n === 'path')).toHaveLength(1);
    expect(svg).toContain('p/s@x=&lt;1&gt;&amp;y=&quot;2&quot;: m');
    expect(() => checkXml('<svg><g></svg>')).toThrow();
    expect(() => checkXml('<svg a="1" a="2"/>')).toThrow();
    expect(() => checkXml('<svg>a & b</svg>')).toThrow();
  });

  it('handles one point, a flat series, no points, and many points', () => {
    for (const pts of [[{ label: 'x', value: 3 }], [{ label: 'x', value: 0 }, { label: 'y', value: 0 }], []]) {
      const svg = renderLineChart(pts, { title: 't' });
      checkXml(svg);
      expect(svg).not.toMatch(/NaN|Infinity/);
      expect((svg.match(/<circle /g) ?? []).length).toBe(pts.length);
    }
    expect(renderLineChart([], { title: 't' })).toContain('no data');
    const many = Array.from({ length: 100 }, (_, i) => ({ label: `c${String(i).padStart(6, '0')}`, value: Math.sin(i / 5) * 1e-3 }));
    const svg = renderLineChart(many, { title: 't', maxLabels: 10 });
    checkXml(svg);
    expect((svg.match(/<circle /g) ?? []).length).toBe(100);
    expect((svg.match(/rotate\(-40/g) ?? []).length).toBeLessThanOrEqual(11);
    expect(svg).toContain('>c000099<'); // the newest is always labelled
  });

  it('niceTicks covers the range with round steps', () => {
    expect(niceTicks(8, 12.5)).toEqual([8, 9, 10, 11, 12, 13]);
    expect(niceTicks(0, 100)).toEqual([0, 20, 40, 60, 80, 100]);
    expect(niceTicks(0.1, 0.3)).toEqual([0.1, 0.15, 0.2, 0.25, 0.3]);
    expect(niceTicks(5, 5)).toEqual([4.4, 4.6, 4.8, 5, 5.2, 5.4, 5.6]); // a flat range, widened by 10 %
    expect(niceTicks(1e-7, 3e-7)).toEqual([1e-7, 1.5e-7, 2e-7, 2.5e-7, 3e-7]);
    expect(niceTicks(-3, 7)[0]).toBeLessThanOrEqual(-3);
    expect(niceTicks(-3, 7).at(-1)).toBeGreaterThanOrEqual(7);
    expect(niceTicks(0, 0)).toEqual([-1, -0.5, 0, 0.5, 1]);
  });

  it('xmlEscape', () => {
    expect(xmlEscape(`a<b>&"c'`)).toBe('a&lt;b&gt;&amp;&quot;c&apos;');
  });
});
