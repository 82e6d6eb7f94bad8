import { describe, expect, it } from 'vitest';
import { parseMemory, parseTimeLimit } from '../../../runner/spec/units.js';

describe('parseMemory', () => {
  it.each([
    [0, 0],
    [1024, 1024],
    ['1024', 1024],
    ['100K', 102_400],
    ['512M', 512 * 1024 ** 2],
    ['2G', 2 * 1024 ** 3],
    ['2g', 2 * 1024 ** 3],
    ['1.5G', 1.5 * 1024 ** 3],
    ['1T', 1024 ** 4],
  ] as const)('%s → %d bytes', (input, bytes) => {
    expect(parseMemory(input)).toBe(bytes);
  });

  it.each(['2GB', '2 G', 'lots', '-1', '', '1e9'])('rejects %j', (input) => {
    expect(parseMemory(input)).toBeNull();
  });

  it('rejects negative and fractional byte counts', () => {
    expect(parseMemory(-1)).toBeNull();
    expect(parseMemory(1.5)).toBeNull();
  });
});

describe('parseTimeLimit', () => {
  it.each([
    [90, 90],
    ['05:30', 330],
    ['00:10:00', 600],
    ['100:00:00', 360_000],
    ['1-02:03:04', 93_784],
    ['0-23:59:59', 86_399],
  ] as const)('%s → %d s', (input, sec) => {
    expect(parseTimeLimit(input)).toBe(sec);
  });

  it.each(['10 minutes', '1:2:3', '00:60', '1-24:00:00', '00:00:00', '00:00', '-5', '1-02:03'])('rejects %j', (input) => {
    expect(parseTimeLimit(input)).toBeNull();
  });

  it('rejects zero and negative seconds', () => {
    expect(parseTimeLimit(0)).toBeNull();
    expect(parseTimeLimit(-3)).toBeNull();
  });
});
