import { describe, expect, it } from 'vitest';
import { closest, editDistance } from '../../../runner/spec/did-you-mean.js';
import { interpolate } from '../../../runner/spec/interpolate.js';
import { normaliseWorkspacePath } from '../../../runner/spec/paths.js';

describe('interpolate', () => {
  const vars: Record<string, unknown> = { n: 4000, name: 'heat', list: [1, 2], obj: { a: 1 }, flag: false, nil: null };
  const run = (t: string) => interpolate(t, (k) => vars[k]);

  it('substitutes ${name} and leaves shell syntax alone', () => {
    expect(run('./gen --n ${n} $HOME $(date) ${ name }').text).toBe('./gen --n 4000 $HOME $(date) heat');
  });

  it('turns $${ into a literal ${', () => {
    expect(run('echo $${HOME} $${n} $$ ${n}').text).toBe('echo ${HOME} ${n} $$ 4000');
  });

  it('writes non-string values as JSON', () => {
    expect(run('${list} ${obj} ${flag} ${nil}').text).toBe('[1,2] {"a":1} false null');
  });

  it('reports unknown, empty and unterminated references', () => {
    expect(run('${x} ${} ${n').problems).toEqual([
      { name: 'x', token: '${x}' },
      { name: '', token: '${}' },
      { name: null, token: '${n' },
    ]);
  });
});

describe('normaliseWorkspacePath', () => {
  it.each([
    ['data/out/', 'data/out'],
    ['./data//x', 'data/x'],
    ['a/../b', 'b'],
    ['a\\b\\c', 'a/b/c'],
    ['.', ''],
  ])('%j → %j', (raw, path) => {
    expect(normaliseWorkspacePath(raw)).toEqual({ ok: true, path });
  });

  it.each([
    ['../x', 'escape'],
    ['a/../../x', 'escape'],
    ['/etc/passwd', 'absolute'],
    ['C:/x', 'absolute'],
    ['~/x', 'absolute'],
  ])('refuses %j (%s)', (raw, reason) => {
    expect(normaliseWorkspacePath(raw)).toEqual({ ok: false, reason });
  });
});

describe('did-you-mean', () => {
  it('counts a transposition as one edit', () => {
    expect(editDistance('gne', 'gen')).toBe(1);
    expect(editDistance('kitten', 'sitting')).toBe(3);
  });

  it('suggests only close candidates, preferring case-only differences', () => {
    expect(closest('cmdd', ['image', 'cmd', 'deps'])).toBe('cmd');
    expect(closest('Deps', ['deps', 'dep'])).toBe('deps');
    expect(closest('zzzz', ['image', 'cmd'])).toBeNull();
  });
});
