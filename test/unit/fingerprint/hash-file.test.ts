import { Blake3Hasher } from '@napi-rs/blake-hash';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CHUNK_SIZE, EMPTY_HASH, hashBytes, hashFile, hashFileAdaptive, hashFileSync } from '../../../runner/fingerprint/hash-file.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'hpcflow-hash-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** The official BLAKE3 test-vector input: byte i is i % 251. */
function vectorInput(len: number): Buffer {
  const b = Buffer.alloc(len);
  for (let i = 0; i < len; i++) b[i] = i % 251;
  return b;
}

const oneShot = (b: Buffer): string => new Blake3Hasher().update(b).digest('hex');

async function fileWith(name: string, data: Buffer): Promise<string> {
  const p = join(dir, name);
  await writeFile(p, data);
  return p;
}

describe('hashFile', () => {
  it('matches the official BLAKE3 vectors', async () => {
    const vectors: Array<[number, string]> = [
      [0, EMPTY_HASH],
      [1, '2d3adedff11b61f14c886e35afa036736dcd87a74d27b5c1510225d0f592e213'],
      [1025, 'd00278ae47eb27b34faecf67b4fe263f82d5412916c1ffd97c8cb7fb814b8444'],
    ];
    expect(EMPTY_HASH).toBe('af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262');
    for (const [len, hash] of vectors) {
      const p = await fileWith(`v${len}`, vectorInput(len));
      expect(await hashFile(p)).toEqual({ hash, size: len });
      expect(hashFileSync(p)).toEqual({ hash, size: len });
    }
    expect(hashBytes('abc')).toBe('6437b3ac38465133ffb63b75273a8db548c558465d79db03fd359c6cd5bd9d85');
  });

  it('equals the one-shot hash across chunk boundaries', async () => {
    const big = vectorInput(5 * CHUNK_SIZE + 12_347);
    for (const len of [CHUNK_SIZE - 1, CHUNK_SIZE, CHUNK_SIZE + 1, 2 * CHUNK_SIZE, big.length]) {
      const data = big.subarray(0, len);
      const p = await fileWith(`b${len}`, data);
      const want = { hash: oneShot(data), size: len };
      expect(await hashFile(p)).toEqual(want);
      expect(hashFileSync(p)).toEqual(want);
      expect(await hashFileAdaptive(p, len)).toEqual(want);
      expect(await hashFileAdaptive(p, len, false)).toEqual(want);
    }
  });

  it('hashes several files concurrently without mixing buffers', async () => {
    const datas = [0, 1, 2, 3, 4, 5].map((i) => Buffer.alloc(3 * CHUNK_SIZE + i * 1001, i + 1));
    const paths = await Promise.all(datas.map((d, i) => fileWith(`c${i}`, d)));
    const got = await Promise.all(paths.map((p) => hashFile(p)));
    expect(got).toEqual(datas.map((d) => ({ hash: oneShot(d), size: d.length })));
  });

  it('rejects for a missing file', async () => {
    await expect(hashFile(join(dir, 'nope'))).rejects.toMatchObject({ code: 'ENOENT' });
    expect(() => hashFileSync(join(dir, 'nope'))).toThrow(/ENOENT/);
  });
});
