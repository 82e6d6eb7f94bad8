import fc from 'fast-check';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { diffComponents, fingerprintWithLock } from '../../runner/dag/decide.js';
import { formatReason } from '../../runner/dag/reasons.js';
import { formatVersionFile, makeVersion, parseVersionFile } from '../../runner/datasets/version-file.js';
import { writeRunRecord } from '../../runner/engine/run-record.js';
import type { RunSummary } from '../../runner/engine/events.js';
import { isHpcflowError } from '../../runner/errors.js';
import { hashBytes } from '../../runner/fingerprint/hash-file.js';
import type { StageComponents } from '../../runner/fingerprint/stage.js';
import { mergeLockfiles } from '../../runner/git/push.js';
import { logJson, renderLog } from '../../runner/history/log-view.js';
import { isSafeRunId, parseRunRecord } from '../../runner/history/record.js';
import type { LockEntry } from '../../runner/lockfile/lockfile.js';
import { parseLockfile, serializeLockfile } from '../../runner/lockfile/lockfile.js';
import { recordFaults } from '../helpers/fault-ledger.js';
import { fuzz, replaceAt, valuePaths } from './fuzz-helpers.js';

/**
 * Hostile lockfiles, run records and dataset version files: random bytes, random JSON, valid
 * files truncated, spliced, or with a field of the wrong type, huge numbers, NUL bytes, deep
 * nesting. Each either loads — and then what loaded is usable: decisions can be explained from
 * a lockfile, a run record rendered — or fails with an HpcflowError naming the file (and, for
 * version files, file:line:col). Never a raw TypeError or RangeError.
 *
 * Deterministic (HPCFLOW_FUZZ_SEED and HPCFLOW_FUZZ_RUNS override); fast-check prints the seed
 * and the shrunk input of a failure.
 */
const RAW_ERROR = /\[object Object\]|Maximum call stack|is not a function|Cannot read propert|Cannot convert|undefined \(reading|Invalid string length/;

// ---------------------------------------------------------------------------------------------
// Generators shared by the three formats

const EVIL_STRINGS = ['../x', '../../etc/passwd', '/etc/passwd', 'a/../../b', '', '.', '..', 'x\0y', '\0', '\ufeff', '\ud800', '\u2028', 'a'.repeat(3000), '1e999', '-1', '__proto__', 'constructor'];
const hostileString = fc.oneof(fc.string({ unit: 'binary', maxLength: 30 }), fc.constantFrom(...EVIL_STRINGS));
const hostileNumber = fc.oneof(fc.integer(), fc.double({ noNaN: true, noDefaultInfinity: true }), fc.constantFrom(2 ** 53, 2 ** 53 + 2, -1, 0, 0.5, 1e308, -1e308, 1e21, -0));
const hostileKey = fc.oneof(fc.constantFrom('__proto__', 'constructor', 'toString', 'fingerprint', 'stages', 'path', ''), fc.string({ maxLength: 8 }));
const nest = (n: number): unknown => {
  let v: unknown = 1;
  for (let i = 0; i < n; i++) v = i % 2 === 0 ? [v] : { k: v };
  return v;
};
const { hostileJson } = fc.letrec((tie) => ({
  hostileJson: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    hostileString,
    hostileNumber,
    fc.boolean(),
    fc.constant(null),
    fc.array(tie('hostileJson'), { maxLength: 4 }),
    fc.dictionary(hostileKey, tie('hostileJson'), { maxKeys: 4 }),
    fc.integer({ min: 40, max: 600 }).map(nest),
  ),
}));
const randomBytes = fc.uint8Array({ maxLength: 600 }).map((b) => Buffer.from(b).toString('utf8'));

/** A JSON document with one to four nodes replaced by hostile values (or removed). */
const jsonMutated = (doc: unknown): fc.Arbitrary<string> =>
  fc.tuple(fc.nat(), fc.oneof(hostileJson, fc.constant(undefined)), fc.nat(3)).map(([pick, value, times]) => {
    let d = doc;
    for (let t = 0; t <= times; t++) {
      const paths = valuePaths(d, 30);
      d = replaceAt(d, paths[(pick * (t + 1) + t) % paths.length] as (string | number)[], value);
    }
    return JSON.stringify(d) ?? '';
  });
/** Text cut, spliced or damaged at random places. */
const textMutated = (text: string): fc.Arbitrary<string> =>
  fc.oneof(
    fc.nat(text.length).map((n) => text.slice(0, n)),
    fc.tuple(fc.nat(text.length), hostileString).map(([i, s]) => text.slice(0, i) + s + text.slice(i)),
    fc.tuple(fc.nat(text.length), fc.nat(text.length)).map(([a, b]) => text.slice(0, Math.min(a, b)) + text.slice(Math.max(a, b))),
    fc.tuple(fc.nat(text.length), fc.constantFrom('\0', '\t', '\n', ' ', '"', '{', '[', '}', ':', '9', '-')).map(([i, c]) => text.slice(0, i) + c + text.slice(i + 1)),
  );


/** `fn` returns, or throws an HpcflowError with `code` whose message passes `message`. */
function cleanly<T>(fn: () => T, code: string, message: RegExp): T | null {
  try {
    return fn();
  } catch (e) {
    if (!isHpcflowError(e)) throw new Error(`raw ${(e as Error).name}: ${(e as Error).message}`, { cause: e });
    expect(e.code).toBe(code);
    expect(e.message).toMatch(message);
    expect(e.message).not.toMatch(RAW_ERROR);
    return null;
  }
}

// ---------------------------------------------------------------------------------------------
// Lockfile

const H = (c: string): string => c.repeat(64);
const COMPONENTS: StageComponents = {
  cmd: 'run 1',
  wdir: '',
  image: { tag: 'img:1', digest: `sha256:${H('a')}` },
  deps: { 'in.txt': { kind: 'file', hash: H('b'), size: 3 }, data: { kind: 'dir', hash: H('c'), size: 10 } },
  params: { n: 3, list: [1, { a: 'b' }] },
  env: { OMP_NUM_THREADS: '4' },
  shape: { nodes: 1, tasksPerNode: 2, cpusPerTask: 4 },
  upstream: { 'p/gen': H('d') },
  outs: ['out.bin', 'metrics.json'],
};
const GOOD_LOCK = {
  fingerprintVersion: 1,
  schema: 1,
  stages: {
    'p/a': { ...COMPONENTS, fingerprint: H('e'), outRecords: [{ path: 'out.bin', kind: 'file', hash: H('f'), size: 3, exec: false }, { path: 'res', kind: 'dir', hash: H('1'), size: 9, files: 2 }] },
    'p/b@n=2': { ...COMPONENTS, cmd: 'run 2', fingerprint: H('2'), outRecords: [] },
  },
};
const GOOD_LOCK_TEXT = serializeLockfile(GOOD_LOCK as never);

/** A lockfile that loaded must be usable: every decision explained, re-serialised, merged. */
function useLockfile(text: string): void {
  const lock = cleanly(() => parseLockfile(text, 'hpcflow.lock', { complete: true }), 'HPCFLOW_LOCKFILE_INVALID', /^hpcflow\.lock[ :]/);
  if (lock === null) return;
  for (const entry of Object.values(lock.stages) as LockEntry[]) {
    for (const r of diffComponents(entry, COMPONENTS)) expect(formatReason(r).length).toBeGreaterThan(0);
    expect(fingerprintWithLock(COMPONENTS, entry)).toMatch(/^([0-9a-f]{64})?$/);
  }
  const again = serializeLockfile(lock);
  expect(serializeLockfile(parseLockfile(again))).toBe(again);
  cleanly(() => mergeLockfiles(GOOD_LOCK_TEXT, again, GOOD_LOCK_TEXT), 'HPCFLOW_LOCKFILE_INVALID', /hpcflow\.lock/);
}

describe('hostile lockfiles', () => {
  const cases: [string, fc.Arbitrary<string>][] = [
    ['random bytes', randomBytes],
    ['random JSON', hostileJson.map((v) => JSON.stringify(v) ?? '')],
    ['valid lockfile with fields of other types', jsonMutated(GOOD_LOCK)],
    ['valid lockfile with an entry field of another type', fc.tuple(fc.constantFrom(...Object.keys(GOOD_LOCK.stages['p/a']), 'outRecords'), fc.oneof(hostileJson, fc.constant(undefined))).map(([k, v]) => JSON.stringify(replaceAt(GOOD_LOCK, ['stages', 'p/a', k], v)))],
    ['valid lockfile truncated or spliced', textMutated(GOOD_LOCK_TEXT)],
  ];
  it.each(cases)('%s: loads into something usable, or HPCFLOW_LOCKFILE_INVALID naming the file', (name, arb) => {
    const t0 = Date.now();
    const n = fuzz(arb, useLockfile);
    console.log(`lockfile fuzz, ${name}: ${n.injected} inputs in ${Date.now() - t0} ms`);
    recordFaults({ scenario: `hostile lockfile: ${name}`, injected: n.injected, recovered: n.recovered, lost: n.injected - n.recovered });
  });

  it('each damaged component is named: missing, wrong type, bad output record, nesting', () => {
    const bad = (path: (string | number)[], v: unknown): string => {
      try {
        parseLockfile(JSON.stringify(replaceAt(GOOD_LOCK, path, v)), 'hpcflow.lock', { complete: true });
      } catch (e) {
        if (isHpcflowError(e, 'HPCFLOW_LOCKFILE_INVALID')) return e.message;
        throw e;
      }
      return 'loaded';
    };
    expect(bad(['stages', 'p/a', 'image'], undefined)).toBe('hpcflow.lock: entry for stage p/a is malformed: image is missing (expected { tag, digest } strings)');
    expect(bad(['stages', 'p/a', 'params'], null)).toBe('hpcflow.lock: entry for stage p/a is malformed: params is not a mapping');
    expect(bad(['stages', 'p/a', 'shape', 'nodes'], '2')).toMatch(/shape is not \{ nodes, tasksPerNode, cpusPerTask \} counts/);
    expect(bad(['stages', 'p/a', 'outRecords', 0], 7)).toMatch(/outRecords: not an object/);
    expect(bad(['stages', 'p/a', 'outRecords', 0, 'hash'], 'x')).toMatch(/outRecords: output out.bin: hash is not 64 hex digits/);
    expect(bad(['stages', 'p/a', 'params', 'n'], nest(200))).toMatch(/nested deeper than 64 levels/);
    // A partial entry (only fingerprints matter to a merge) is still accepted where completeness is not asked for.
    expect(parseLockfile(JSON.stringify({ schema: 1, stages: { 'p/a': { fingerprint: 'f', deps: {}, outRecords: [] } } })).stages['p/a']?.fingerprint).toBe('f');
    recordFaults({ scenario: 'lockfile damage named', injected: 7, recovered: 7, lost: 0 });
  });
});

// ---------------------------------------------------------------------------------------------
// Run records

const GOOD_RECORD = {
  schema: 1,
  runId: '20261125T000000Z-abcdef',
  ok: true,
  aborted: false,
  wallMs: 1234,
  counts: { ran: 2, restored: 1, 'up-to-date': 0 },
  inputCommit: 'a'.repeat(40),
  environment: { hpcflow: '0.1.0', node: 'v20', executor: 'docker' },
  metrics: { 'p/a': 'metrics/a.json' },
  stages: { 'p/a': { status: 'ran', fingerprint: H('e'), reasons: ['new'], upstream: [] } },
};

describe('hostile run records', () => {
  const cases: [string, fc.Arbitrary<string>][] = [
    ['random bytes', randomBytes],
    ['random JSON', hostileJson.map((v) => JSON.stringify(v) ?? '')],
    ['valid record with fields of other types', jsonMutated(GOOD_RECORD)],
    ['valid record truncated or spliced', textMutated(JSON.stringify(GOOD_RECORD, null, 2))],
  ];
  it.each(cases)('%s: null or a well-typed record, which renders', (name, arb) => {
    const t0 = Date.now();
    const n = fuzz(arb, (text) => {
      const r = parseRunRecord(text);
      if (r === null) return;
      expect(typeof r.runId).toBe('string');
      expect(r.ok === null || typeof r.ok === 'boolean').toBe(true);
      expect(r.wallMs === null || Number.isFinite(r.wallMs)).toBe(true);
      for (const v of Object.values(r.counts)) expect(Number.isFinite(v)).toBe(true);
      for (const v of [...Object.values(r.environment), ...Object.values(r.metrics)]) expect(typeof v).toBe('string');
      const entry = { commit: 'c'.repeat(40), timestamp: 1_700_000_000, runId: r.runId, inputTrailer: null, record: r, recordPath: `runs/${r.runId}.json` };
      expect(renderLog([entry]).length).toBeGreaterThan(0);
      expect(() => JSON.stringify(logJson(entry))).not.toThrow();
    });
    console.log(`run record fuzz, ${name}: ${n.injected} inputs in ${Date.now() - t0} ms`);
    recordFaults({ scenario: `hostile run record: ${name}`, injected: n.injected, recovered: n.recovered, lost: n.injected - n.recovered });
  });

  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'hpcflow-hostile-rec-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('a run id that could name a file outside the runs directory is refused, hostile strings in a record round-trip', async () => {
    const summary = (runId: string): RunSummary => ({ runId, ok: true, aborted: false, wallMs: 1, counts: { ran: 0 }, outcomes: new Map() }) as unknown as RunSummary;
    const graph = { upstream: new Map() } as never;
    let refused = 0;
    for (const id of ['../../escape', '/tmp/x', '..', 'a/b', '.hidden', 'x\0y', '']) {
      await expect(writeRunRecord(dir, summary(id), graph)).rejects.toMatchObject({ code: 'HPCFLOW_PATH_ESCAPE' });
      expect(isSafeRunId(id)).toBe(false);
      refused++;
    }
    const file = await writeRunRecord(dir, summary('r1'), graph, { environment: { host: 'n\0de\ud800\u2028' }, metrics: { 'p/a': '../m\0.json' } });
    const back = parseRunRecord(await readFile(file, 'utf8'));
    expect(back?.environment.host).toBe('n\0de\ud800\u2028');
    expect(back?.metrics['p/a']).toBe('../m\0.json');
    recordFaults({ scenario: 'run record ids and hostile strings', injected: refused + 1, recovered: refused + 1, lost: 0 });
  });
});

// ---------------------------------------------------------------------------------------------
// Dataset version files

const ENTRIES = [
  { path: 'a.txt', size: 3, hash: H('a'), exec: false },
  { path: 'dir/b.nc', size: 1_000_000, hash: H('b'), exec: true },
  { path: 'odd\tname\nhere', size: 0, hash: H('c'), exec: false },
];
const GOOD_VERSION = formatVersionFile(makeVersion('climate', 'data/climate', ENTRIES));

/** A header value replaced by a hostile one (YAML-quoted so it survives as that value). */
const headerMutated = fc.tuple(fc.constantFrom('name', 'path', 'version', 'files', 'bytes'), fc.oneof(hostileString, hostileNumber, fc.constantFrom('[1, 2]', '{ a: 1 }', '~', '&a x', '*a', '!!binary aGk=', '1e999', '99999999999999999999'))).map(([key, v]) => {
  const text = typeof v === 'string' && /^[[{~&*!0-9]/.test(v) ? v : JSON.stringify(v);
  return GOOD_VERSION.replace(new RegExp(`^${key}: .*$`, 'm'), `${key}: ${text}`);
});

/**
 * Manifest lines damaged, then the header made consistent again (version = hash of the new
 * manifest, counts recomputed), so the parser has to judge the lines themselves.
 */
const manifestMutated = fc
  .tuple(
    fc.nat(ENTRIES.length - 1),
    fc.constantFrom('path', 'size', 'hash', 'flag', 'extra', 'order', 'dup'),
    fc.oneof(hostileString, fc.constantFrom('../../etc/passwd', '/abs', 'a//b', 'a/./b', 'x\\q', '99999999999999999999', '-1', '1.5', 'X')),
  )
  .map(([i, field, v]) => {
    const lines = makeVersion('climate', 'data/climate', ENTRIES).text.slice(0, -1).split('\n');
    const f = (lines[i] as string).split('\t');
    const at = { path: 0, size: 1, hash: 2, flag: 3 }[field as 'path'];
    if (at !== undefined) f[at] = v.replace(/\n/g, ' ');
    if (field === 'extra') f.push(v.replace(/\n/g, ' '));
    lines[i] = f.join('\t');
    if (field === 'order') lines.reverse();
    if (field === 'dup') lines.push(lines[i] as string);
    const manifest = `${lines.join('\n')}\n`;
    const sizes = lines.map((l) => Number(l.split('\t')[1]));
    const bytes = sizes.every(Number.isSafeInteger) ? sizes.reduce((a, b) => a + b, 0) : 0;
    const indented = `  ${manifest.slice(0, -1).split('\n').join('\n  ')}\n`;
    return GOOD_VERSION.replace(/^version: .*$/m, `version: ${hashBytes(manifest)}`)
      .replace(/^files: .*$/m, `files: ${lines.length}`)
      .replace(/^bytes: .*$/m, `bytes: ${bytes}`)
      .replace(/manifest: \|2\n[\s\S]*$/, `manifest: |2\n${indented}`);
  });

describe('hostile dataset version files', () => {
  const cases: [string, fc.Arbitrary<string>][] = [
    ['random bytes', randomBytes],
    ['random bytes after a valid header', randomBytes.map((b) => `${GOOD_VERSION.slice(0, GOOD_VERSION.indexOf('manifest:'))}manifest: |2\n${b}`)],
    ['valid file truncated or spliced', textMutated(GOOD_VERSION)],
    ['header values of other types', headerMutated],
    ['manifest lines damaged, header consistent', manifestMutated],
  ];
  it.each(cases)('%s: a version, or HPCFLOW_SPEC_INVALID at file:line:col', (name, arb) => {
    const t0 = Date.now();
    const n = fuzz(arb, (text) => {
      const lines = text.split('\n').length;
      for (const headerOnly of [true, false]) {
        try {
          const v = parseVersionFile(text, 'datasets/climate.yaml', { headerOnly, expectName: 'climate' });
          if (!headerOnly) {
            // What loaded writes back out and reads in identically.
            const again = parseVersionFile(formatVersionFile(v), 'datasets/climate.yaml');
            expect(again.entries).toEqual(v.entries);
            expect(again.version).toBe(v.version);
          }
        } catch (e) {
          if (!isHpcflowError(e)) throw new Error(`raw ${(e as Error).name}: ${(e as Error).message}`, { cause: e });
          expect(e.code).toBe('HPCFLOW_SPEC_INVALID');
          expect(e.message).toMatch(/^datasets\/climate\.yaml:/);
          expect(e.message).not.toMatch(RAW_ERROR);
          const pos = e.diagnostics[0]?.pos;
          expect(pos).toBeDefined();
          expect(pos?.line).toBeGreaterThanOrEqual(1);
          expect(pos?.line).toBeLessThanOrEqual(lines + 1);
          expect(pos?.col).toBeGreaterThanOrEqual(1);
        }
      }
    });
    console.log(`version file fuzz, ${name}: ${n.injected} inputs in ${Date.now() - t0} ms`);
    recordFaults({ scenario: `hostile dataset version file: ${name}`, injected: n.injected, recovered: n.recovered, lost: n.injected - n.recovered });
  });
});
