import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  absoluteError,
  compareFloat64,
  compareJson,
  compareNumeric,
  compareText,
  numericLeaves,
  numericWithin,
  parseNumberToken,
  relativeError,
  withinTolerance,
} from '../../../runner/reproduce/numeric.js';

const tmp = mkdtempSync(join(tmpdir(), 'hpcflow-numeric-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const f64 = (...xs: number[]): Buffer => {
  const b = Buffer.alloc(xs.length * 8);
  xs.forEach((x, i) => b.writeDoubleLE(x, i * 8));
  return b;
};

describe('withinTolerance: |v′ − v| ≤ abs + rel·|v|', () => {
  it('relative and absolute parts add up', () => {
    expect(withinTolerance(100, 101, { rel: 0.01, abs: 0 })).toBe(true);
    expect(withinTolerance(100, 101.5, { rel: 0.01, abs: 0 })).toBe(false);
    expect(withinTolerance(100, 101.5, { rel: 0.01, abs: 0.5 })).toBe(true);
    expect(withinTolerance(-100, -101, { rel: 0.01, abs: 0 })).toBe(true);
  });
  it('a zero baseline is reproduced only within abs', () => {
    expect(withinTolerance(0, 1e-9, { rel: 0.5, abs: 0 })).toBe(false);
    expect(withinTolerance(0, 1e-9, { rel: 0, abs: 1e-8 })).toBe(true);
    expect(withinTolerance(0, 0, { rel: 0, abs: 0 })).toBe(true);
    expect(withinTolerance(0, -0, { rel: 0, abs: 0 })).toBe(true);
    expect(relativeError(0, 1e-9)).toBe(Infinity);
    expect(relativeError(0, 0)).toBe(0);
    expect(absoluteError(0, 1e-9)).toBe(1e-9);
  });
  it('NaN reproduces NaN only; infinities reproduce themselves only', () => {
    expect(withinTolerance(NaN, NaN, { rel: 0, abs: 0 })).toBe(true);
    expect(withinTolerance(NaN, 1, { rel: 1, abs: 1 })).toBe(false);
    expect(withinTolerance(1, NaN, { rel: 1, abs: 1 })).toBe(false);
    expect(withinTolerance(Infinity, Infinity, { rel: 0, abs: 0 })).toBe(true);
    expect(withinTolerance(Infinity, -Infinity, { rel: 1, abs: 1 })).toBe(false);
    expect(withinTolerance(1e308, Infinity, { rel: 1, abs: 1 })).toBe(false);
    expect(relativeError(NaN, NaN)).toBe(0);
    expect(relativeError(NaN, 1)).toBe(Infinity);
    expect(absoluteError(1, NaN)).toBe(Infinity);
  });
});

describe('compareJson', () => {
  it('compares numeric leaves within the tolerance and reports the worst', () => {
    const c = compareJson({ a: 1, b: { c: [2, 4] } }, { a: 1.001, b: { c: [2, 4.1] } }, { rel: 0.01, abs: 0 });
    expect(c).toMatchObject({ format: 'json', count: 3, outside: 1, worst: '$.b.c[1]', mismatch: null });
    expect(c.maxRelErr).toBeCloseTo(0.025, 10);
    expect(numericWithin(c)).toBe(false);
    expect(numericWithin(compareJson({ a: 1 }, { a: 1.001 }, { rel: 0.01, abs: 0 }))).toBe(true);
  });
  it('anything but numbers must be equal: keys, lengths, strings, types', () => {
    expect(compareJson({ a: 1 }, { a: 1, b: 2 }, { rel: 1, abs: 1 }).mismatch).toBe('$.b: only in the new file');
    expect(compareJson({ a: 1, b: 2 }, { a: 1 }, { rel: 1, abs: 1 }).mismatch).toBe('$.b: only in the recorded file');
    expect(compareJson([1, 2], [1, 2, 3], { rel: 1, abs: 1 }).mismatch).toBe('$: 2 items recorded, 3 now');
    expect(compareJson({ s: 'x' }, { s: 'y' }, { rel: 1, abs: 1 }).mismatch).toBe('$.s: "x" recorded, "y" now');
    expect(compareJson({ n: 1 }, { n: '1' }, { rel: 1, abs: 1 }).mismatch).toBe('$.n: number recorded, string now');
    expect(compareJson({ 'a b': null }, { 'a b': 0 }, { rel: 1, abs: 1 }).mismatch).toBe('$["a b"]: null recorded, number now');
  });
  it('a zero recorded value that changed has an infinite relative error', () => {
    const c = compareJson({ z: 0 }, { z: 1e-12 }, { rel: 0.1, abs: 0 });
    expect(c.maxRelErr).toBe(Infinity);
    expect(c.outside).toBe(1);
    expect(numericWithin(compareJson({ z: 0 }, { z: 1e-12 }, { rel: 0, abs: 1e-9 }))).toBe(true);
  });
  it('numericLeaves lists metrics by path', () => {
    expect(numericLeaves({ loss: 0.5, runs: [{ t: 1 }, { t: 2 }], name: 'x', ok: true })).toEqual([
      ['loss', 0.5],
      ['runs[0].t', 1],
      ['runs[1].t', 2],
    ]);
    expect(numericLeaves(3)).toEqual([['', 3]]);
  });
});

describe('compareText', () => {
  it('CSV and whitespace tables: numbers within the tolerance, words equal', () => {
    const c = compareText('x,y\n1.0,2.0\n3.0, 4.0\n', 'x,y\n1.0,2.0\n3.0,4.04\n', { rel: 0.02, abs: 0 });
    expect(c).toMatchObject({ format: 'text', count: 4, outside: 0, worst: 'line 3, value 2', mismatch: null });
    expect(compareText('a 1\n', 'b 1\n', { rel: 1, abs: 0 })?.mismatch).toBe('line 1: "a" recorded, "b" now');
    expect(compareText('1 2\n', '1 2 3\n', { rel: 1, abs: 0 })?.mismatch).toBe('2 values and words recorded, 3 now');
  });
  it('formatting differences alone are within any tolerance', () => {
    const c = compareText('1.0 2.50e+00\n', '1 2.5\n', { rel: 0, abs: 0 });
    expect(c !== null && numericWithin(c)).toBe(true);
  });
  it('reads nan, inf and Fortran D exponents', () => {
    expect(parseNumberToken('1.5D-3')).toBe(1.5e-3);
    expect(parseNumberToken('-inf')).toBe(-Infinity);
    expect(parseNumberToken('NaN')).toBeNaN();
    expect(parseNumberToken('abc')).toBeNull();
    expect(parseNumberToken('1.2.3')).toBeNull();
    expect(compareText('nan 1\n', 'nan 1\n', { rel: 0, abs: 0 })?.outside).toBe(0);
    expect(compareText('nan\n', '1\n', { rel: 1, abs: 1 })?.outside).toBe(1);
  });
  it('text without numbers is not numeric', () => {
    expect(compareText('hello\n', 'world\n', { rel: 1, abs: 1 })).toBeNull();
  });
});

describe('compareFloat64', () => {
  it('element by element, from memory or from files', async () => {
    const a = f64(1, 2, 0, NaN);
    const b = f64(1, 2.000001, 0, NaN);
    writeFileSync(join(tmp, 'b.bin'), b);
    const c = await compareFloat64({ bytes: a }, { file: join(tmp, 'b.bin'), size: b.length }, { rel: 1e-6, abs: 0 });
    expect(c).toMatchObject({ format: 'float64', count: 4, outside: 0, worst: 'element 1', mismatch: null });
    expect((await compareFloat64({ bytes: a }, { bytes: b }, { rel: 1e-7, abs: 0 })).outside).toBe(1);
  });
  it('a zero baseline and NaN against a number are outside', async () => {
    const c = await compareFloat64({ bytes: f64(0, NaN) }, { bytes: f64(1e-300, 1) }, { rel: 1, abs: 0 });
    expect(c.outside).toBe(2);
    expect(c.maxRelErr).toBe(Infinity);
  });
  it('sizes must agree and be whole float64s', async () => {
    expect((await compareFloat64({ bytes: f64(1) }, { bytes: f64(1, 2) }, { rel: 1, abs: 1 })).mismatch).toBe('1 values recorded, 2 now');
    expect((await compareFloat64({ bytes: Buffer.alloc(7) }, { bytes: Buffer.alloc(7) }, { rel: 1, abs: 1 })).mismatch).toMatch(/not a float64 array/);
  });
  it('large files are streamed in chunks, keeping element positions', async () => {
    const n = (9 << 20) / 8 + 3; // more than one 8 MiB chunk
    const a = Buffer.alloc(n * 8);
    const b = Buffer.alloc(n * 8);
    for (let i = 0; i < n; i++) {
      a.writeDoubleLE(i, i * 8);
      b.writeDoubleLE(i === n - 2 ? i * 1.5 : i, i * 8);
    }
    writeFileSync(join(tmp, 'a.bin'), a);
    writeFileSync(join(tmp, 'b2.bin'), b);
    const c = await compareFloat64({ file: join(tmp, 'a.bin'), size: a.length }, { file: join(tmp, 'b2.bin'), size: b.length }, { rel: 0.1, abs: 0 });
    expect(c).toMatchObject({ count: n, outside: 1, worst: `element ${n - 2}` });
  });
});

describe('compareNumeric picks the format', () => {
  it('by extension and content', async () => {
    const j = await compareNumeric('m.json', { bytes: Buffer.from('{"t": 1}') }, { bytes: Buffer.from('{"t": 1.001}') }, { rel: 0.01, abs: 0 });
    expect('comparison' in j && j.comparison.format).toBe('json');
    const sniffed = await compareNumeric('m.out', { bytes: Buffer.from('[1, 2]') }, { bytes: Buffer.from('[1, 2]') }, { rel: 0, abs: 0 });
    expect('comparison' in sniffed && sniffed.comparison.format).toBe('json');
    const t = await compareNumeric('v.txt', { bytes: Buffer.from('x 2.001\n') }, { bytes: Buffer.from('x 2.002\n') }, { rel: 0.01, abs: 0 });
    expect('comparison' in t && t.comparison.format).toBe('text');
    const bin = await compareNumeric('field.bin', { bytes: f64(1) }, { bytes: f64(1) }, { rel: 0, abs: 0 });
    expect('comparison' in bin && bin.comparison.format).toBe('float64');
  });
  it('binary and number-less files are not comparable', async () => {
    expect(await compareNumeric('x.dat', { bytes: Buffer.from([0, 1, 2]) }, { bytes: Buffer.from([0, 1, 3]) }, { rel: 1, abs: 1 })).toEqual({
      reason: 'binary file (only .bin float64 arrays, JSON and text are compared numerically)',
    });
    expect(await compareNumeric('x.txt', { bytes: Buffer.from('abc') }, { bytes: Buffer.from('abd') }, { rel: 1, abs: 1 })).toEqual({ reason: 'no numbers in the file' });
  });
});
