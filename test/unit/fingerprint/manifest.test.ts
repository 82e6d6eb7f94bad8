import { describe, expect, it } from 'vitest';
import { EMPTY_HASH, hashBytes } from '../../../runner/fingerprint/hash-file.js';
import { digestManifest, formatManifest, parseManifest } from '../../../runner/fingerprint/manifest.js';
import type { ManifestEntry } from '../../../runner/fingerprint/manifest.js';

const H = 'a'.repeat(64);
const e = (path: string, size = 1, exec = false): ManifestEntry => ({ path, size, hash: H, exec });

describe('manifest', () => {
  it('formats sorted lines regardless of input order', () => {
    const text = formatManifest([e('b/c', 3, true), e('a.txt'), e('a/b', 2)]);
    expect(text).toBe(`a.txt\t1\t${H}\t-\na/b\t2\t${H}\t-\nb/c\t3\t${H}\tx\n`);
    expect(formatManifest([e('a/b', 2), e('b/c', 3, true), e('a.txt')])).toBe(text);
  });

  it('digests to the hash of the text, with totals', () => {
    const d = digestManifest([e('x', 5), e('y', 7)]);
    expect(d.hash).toBe(hashBytes(d.text));
    expect(d.size).toBe(12);
    expect(d.files).toBe(2);
    expect(digestManifest([]).hash).toBe(EMPTY_HASH);
  });

  it('escapes names that would forge fields or lines, and round-trips them', () => {
    const tricky = [e('a\tb'), e('line\nbreak'), e('back\\slash'), e('plain')];
    const text = formatManifest(tricky);
    expect(text.split('\n')).toHaveLength(5);
    const parsed = parseManifest(text);
    expect(parsed.map((x) => x.path).sort()).toEqual(tricky.map((x) => x.path).sort());
    expect(formatManifest(parsed)).toBe(text);
  });

  it('rejects non-canonical or unsafe manifests', () => {
    const line = (p: string): string => `${p}\t1\t${H}\t-\n`;
    expect(() => parseManifest(line('b') + line('a'))).toThrow(/sorted/);
    expect(() => parseManifest(line('a') + line('a'))).toThrow(/sorted/);
    expect(() => parseManifest(line('../etc/passwd'))).toThrow(/invalid path/);
    expect(() => parseManifest(line('/abs'))).toThrow(/invalid path/);
    expect(() => parseManifest(line('a//b'))).toThrow(/invalid path/);
    expect(() => parseManifest(`a\t1\t${H}\t-`)).toThrow(/truncated/);
    expect(() => parseManifest(`a\t-1\t${H}\t-\n`)).toThrow(/malformed/);
    expect(() => parseManifest(`a\t1\tzz\t-\n`)).toThrow(/malformed/);
    expect(() => parseManifest(`a\t1\t${H}\n`)).toThrow(/4 tab-separated/);
    expect(parseManifest('')).toEqual([]);
  });
});
