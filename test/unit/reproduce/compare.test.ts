import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { OutputRecord } from '../../../runner/cache/records.js';
import { hashBytes } from '../../../runner/fingerprint/hash-file.js';
import type { ManifestEntry } from '../../../runner/fingerprint/manifest.js';
import { digestManifest } from '../../../runner/fingerprint/manifest.js';
import type { Stage } from '../../../runner/model/pipeline.js';
import type { Side } from '../../../runner/reproduce/compare.js';
import { compareMetrics, compareOutput } from '../../../runner/reproduce/compare.js';
import type { ImageProbe } from '../../../runner/reproduce/images.js';
import { applyPins, planImages } from '../../../runner/reproduce/images.js';
import { componentsThatDiffer } from '../../../runner/reproduce/reproduce.js';
import type { LockEntry } from '../../../runner/lockfile/lockfile.js';
import { parsePipelineFile } from '../../../runner/spec/parse.js';
import { memContext } from '../spec/mem-context.js';

const tmp = mkdtempSync(join(tmpdir(), 'hpcflow-compare-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** A side over in-memory files: path → content. Directories are the files under `<dir>/`. */
function side(files: Record<string, string>, opts: { unavailable?: boolean } = {}): Side {
  const entries = (dir: string): ManifestEntry[] =>
    Object.entries(files)
      .filter(([p]) => p.startsWith(`${dir}/`))
      .map(([p, t]) => ({ path: p.slice(dir.length + 1), size: Buffer.byteLength(t), hash: hashBytes(t), exec: false }));
  return {
    async file(hash, _size, path) {
      const t = files[path];
      if (opts.unavailable === true || t === undefined || hashBytes(t) !== hash) return null;
      return { bytes: Buffer.from(t) };
    },
    async tree(_hash, path) {
      return opts.unavailable === true ? null : entries(path);
    },
  };
}

const fileRec = (path: string, text: string): OutputRecord => ({ path, kind: 'file', hash: hashBytes(text), size: Buffer.byteLength(text), exec: false });
function dirRec(path: string, files: Record<string, string>): OutputRecord {
  const entries = Object.entries(files).map(([p, t]) => ({ path: p.slice(path.length + 1), size: Buffer.byteLength(t), hash: hashBytes(t), exec: false }));
  const d = digestManifest(entries);
  return { path, kind: 'dir', hash: d.hash, size: d.size, files: d.files };
}

describe('compareOutput', () => {
  it('same hash: identical without reading anything', async () => {
    const r = fileRec('a.txt', 'x');
    expect(await compareOutput(r, r, null, side({}, { unavailable: true }), side({}, { unavailable: true }))).toEqual({ path: 'a.txt', kind: 'file', verdict: 'identical' });
  });

  it('numbers within the tolerance; without one the same file is different, with the error', async () => {
    const a = { 'v.txt': 'x 2.001\n' };
    const b = { 'v.txt': 'x 2.002\n' };
    const ra = fileRec('v.txt', a['v.txt']);
    const rb = fileRec('v.txt', b['v.txt']);
    const within = await compareOutput(ra, rb, { rel: 1e-2, abs: 0 }, side(a), side(b));
    expect(within).toMatchObject({ verdict: 'within', numeric: { format: 'text', count: 1, outside: 0 } });
    const none = await compareOutput(ra, rb, null, side(a), side(b));
    expect(none).toMatchObject({ verdict: 'different', numeric: { outside: 1 } });
    const tight = await compareOutput(ra, rb, { rel: 1e-6, abs: 0 }, side(a), side(b));
    expect(tight.verdict).toBe('different');
  });

  it('missing in the re-run; recorded bytes unavailable', async () => {
    const r = fileRec('a.txt', '1');
    expect(await compareOutput(r, undefined, null, side({}), side({}))).toMatchObject({ verdict: 'missing' });
    const n = fileRec('a.txt', '2');
    expect(await compareOutput(r, n, { rel: 1, abs: 1 }, side({}), side({ 'a.txt': '2' }))).toMatchObject({ verdict: 'different', detail: expect.stringMatching(/neither the local content store nor the results commit/) });
    expect(await compareOutput(r, n, { rel: 1, abs: 1 }, side({ 'a.txt': '1' }), side({}))).toMatchObject({ verdict: 'missing' });
  });

  it('directories: file by file, only the non-identical ones listed', async () => {
    const a = { 'out/a.json': '{"x": 1}', 'out/b.txt': 'same', 'out/gone.txt': 'g', 'out/c.txt': 'p q' };
    const b = { 'out/a.json': '{"x": 1.0001}', 'out/b.txt': 'same', 'out/new.txt': 'n', 'out/c.txt': 'p r' };
    const r = await compareOutput(dirRec('out', a), dirRec('out', b), { rel: 1e-3, abs: 0 }, side(a), side(b));
    expect(r.verdict).toBe('different');
    expect(r.counts).toEqual({ identical: 1, within: 1, different: 2, missing: 1 });
    expect(r.files?.map((f) => [f.path, f.verdict])).toEqual([
      ['a.json', 'within'],
      ['c.txt', 'different'],
      ['gone.txt', 'missing'],
      ['new.txt', 'different'],
    ]);
    const a1 = { 'out/a.json': '{"x": 1}' };
    const b1 = { 'out/a.json': '{"x": 1.0001}' };
    const ok = await compareOutput(dirRec('out', a1), dirRec('out', b1), { rel: 1e-3, abs: 0 }, side(a1), side(b1));
    expect(ok).toMatchObject({ verdict: 'within', counts: { within: 1 } });
  });

  it('a file recorded, a directory made', async () => {
    expect(await compareOutput(fileRec('o', 'x'), dirRec('o', { 'o/x': 'x' }), null, side({}), side({}))).toMatchObject({ verdict: 'different', detail: 'a file was recorded, the re-run made a directory' });
  });
});

describe('compareMetrics', () => {
  it('every numeric leaf: recorded, new, change, within', async () => {
    const a = { 'm.json': JSON.stringify({ t: 1.0, zero: 0, same: 5, gone: 1, name: 'x' }) };
    const b = { 'm.json': JSON.stringify({ t: 1.004, zero: 0.5, same: 5, added: 2, name: 'y' }) };
    const { rows, note } = await compareMetrics('m.json', fileRec('m.json', a['m.json']), fileRec('m.json', b['m.json']), { rel: 0.01, abs: 0 }, side(a), side(b));
    expect(note).toBeNull();
    expect(rows.map((r) => [r.key, r.recorded, r.value, r.within])).toEqual([
      ['t', 1, 1.004, true],
      ['zero', 0, 0.5, false],
      ['same', 5, 5, true],
      ['gone', 1, null, false],
      ['added', null, 2, false],
    ]);
    expect(rows[0]?.relChange).toBeCloseTo(0.004, 10);
    expect(rows[1]?.relChange).toBeNull();
    expect(rows[2]?.relChange).toBe(0);
  });
  it('unreadable recorded metrics are a note, not a failure', async () => {
    const r = await compareMetrics('m.json', fileRec('m.json', '{}'), fileRec('m.json', '{}'), null, side({}), side({ 'm.json': '{}' }));
    expect(r.rows).toEqual([]);
    expect(r.note).toMatch(/not available/);
  });
});

describe('images', () => {
  const D1 = `sha256:${'1'.repeat(64)}`;
  const D2 = `sha256:${'2'.repeat(64)}`;
  const D3 = `sha256:${'3'.repeat(64)}`;
  const yaml = `stages:
  a:
    image: t/a:1
    cmd: echo a
  m:
    image: t/m:\${v}
    cmd: echo m
    matrix:
      v: [1, 2]
  b:
    image: t/b:1
    cmd: echo b
  gone:
    image: t/gone:1
    cmd: echo gone
`;
  const stages = new Map(parsePipelineFile(yaml, 'pipelines/p.yaml', memContext({})).stages.map((s): [string, Stage] => [s.id, s]));
  const engine: Record<string, string> = { 't/a:1': D1, [D1]: D1, 't/b:1': D3, [D2]: D2, 't/m:1': D3, 't/m:2': D3 };
  const probe: ImageProbe = { digestOf: async (ref) => engine[ref] ?? null };

  it('same, pinned, unavailable, not pinnable (matrix cells differ)', async () => {
    const { plans, pins, warnings } = await planImages(
      [
        ['p/a', { tag: 't/a:1', digest: D1 }],
        ['p/b', { tag: 't/b:1', digest: D2 }],
        ['p/gone', { tag: 't/gone:1', digest: `sha256:${'9'.repeat(64)}` }],
        ['p/m@v=1', { tag: 't/m:1', digest: D1 }],
        ['p/m@v=2', { tag: 't/m:2', digest: D2 }],
        ['p/removed', { tag: 'x', digest: D1 }],
      ],
      stages,
      probe,
    );
    expect(warnings).toEqual([]);
    expect(plans.map((p) => [p.stage, p.action])).toEqual([
      ['p/a', 'same'],
      ['p/b', 'pinned'],
      ['p/gone', 'unavailable'],
      ['p/m@v=1', 'not-pinned'],
      ['p/m@v=2', 'not-pinned'],
    ]);
    expect([...pins.entries()].map(([f, m]) => [f, [...m]])).toEqual([['pipelines/p.yaml', [['b', D2]]]]);
    mkdirSync(join(tmp, 'pipelines'), { recursive: true });
    writeFileSync(join(tmp, 'pipelines/p.yaml'), yaml);
    expect(await applyPins(tmp, pins)).toEqual([]);
    const pinned = parsePipelineFile(readFileSync(join(tmp, 'pipelines/p.yaml'), 'utf8'), 'pipelines/p.yaml', memContext({})).stages;
    expect(pinned.find((s) => s.id === 'p/b')?.image).toEqual({ kind: 'ref', ref: D2 });
    expect(pinned.find((s) => s.id === 'p/a')?.image).toEqual({ kind: 'ref', ref: 't/a:1' });
  });

  it('an engine that cannot be asked: a warning, nothing pinned', async () => {
    const broken: ImageProbe = { digestOf: async () => Promise.reject(new Error('connect ENOENT /var/run/docker.sock')) };
    const r = await planImages([['p/a', { tag: 't/a:1', digest: D1 }]], stages, broken);
    expect(r.plans.map((p) => p.action)).toEqual(['unknown']);
    expect(r.pins.size).toBe(0);
    expect(r.warnings).toEqual([expect.stringContaining('could not ask the container engine')]);
  });
});

describe('tolerance in the pipeline spec', () => {
  const parse = (tol: string) => parsePipelineFile(`stages:\n  s:\n    image: x\n    cmd: c\n    tolerance: ${tol}\n`, 'pipelines/p.yaml', memContext({}));
  it('resolves to rel and abs (default 0); absent means no tolerance', () => {
    expect(parse('{ rel: 1e-6 }').stages[0]?.tolerance).toEqual({ rel: 1e-6, abs: 0 });
    expect(parse('{ rel: 0.1, abs: 2 }').stages[0]?.tolerance).toEqual({ rel: 0.1, abs: 2 });
    expect(parse('{}').stages[0]?.tolerance).toEqual({ rel: 0, abs: 0 });
    const none = parsePipelineFile('stages:\n  s:\n    image: x\n    cmd: c\n', 'pipelines/p.yaml', memContext({})).stages[0];
    expect(none !== undefined && 'tolerance' in none).toBe(false);
  });
  it('negative, non-numeric and unknown keys are errors', () => {
    expect(parse('{ rel: -1 }').diagnostics.map((d) => d.message).join('\n')).toMatch(/must not be negative/);
    expect(parse('{ rel: lots }').diagnostics.map((d) => d.code)).toContain('HPCFLOW_SPEC_TYPE');
    expect(parse('{ relative: 1 }').diagnostics.map((d) => d.code)).toContain('HPCFLOW_SPEC_UNKNOWN_KEY');
    expect(parse('{ rel: .inf }').diagnostics.length).toBeGreaterThan(0);
  });
});

describe('componentsThatDiffer', () => {
  const e = (over: Partial<LockEntry> = {}): LockEntry => ({
    fingerprint: 'f',
    cmd: 'c',
    wdir: '',
    image: { tag: 't', digest: 'd' },
    deps: { a: { kind: 'file', hash: 'h', size: 1 } },
    params: { n: 1 },
    env: {},
    shape: { nodes: 1, tasksPerNode: 1, cpusPerTask: 1 },
    upstream: {},
    outs: ['o'],
    outRecords: [],
    ...over,
  });
  it('names the inputs that differ; the image tag alone (a pinned image) is not one', () => {
    expect(componentsThatDiffer(e(), e({ fingerprint: 'g', image: { tag: 'sha256:x', digest: 'd' } }))).toEqual([]);
    expect(componentsThatDiffer(e(), e({ cmd: 'x', params: { n: 2 }, image: { tag: 't', digest: 'e' } }))).toEqual(['cmd', 'image', 'params']);
    expect(componentsThatDiffer(e(), e({ deps: { a: { kind: 'file', hash: 'h2', size: 1 } }, shape: { nodes: 2, tasksPerNode: 1, cpusPerTask: 1 } }))).toEqual(['deps', 'resources']);
  });
});
