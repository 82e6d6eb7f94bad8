import { describe, expect, it } from 'vitest';
import { canonicalJson, sortKeys } from '../../runner/util/canonical-json.js';

describe('canonicalJson', () => {
  it('equals JSON.stringify of the key-sorted value', () => {
    const values: unknown[] = [
      { b: 1, a: [3, { d: 'x', c: null }], e: undefined, f: true, g: 1.5e-7, h: 'q"uote\n' },
      [undefined, () => 1, NaN, Infinity, -0],
      'plain',
      42,
      null,
      { nested: { z: { y: { x: [] } } }, empty: {} },
    ];
    for (const v of values) expect(canonicalJson(v)).toBe(JSON.stringify(sortKeys(v)));
  });
});
