import fc from 'fast-check';
import { readdirSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml, stringify as stringifyYaml } from 'yaml';
import type { Diagnostic } from '../../runner/model/diagnostic.js';
import { formatDiagnostic } from '../../runner/model/diagnostic.js';
import { linkWorkspace } from '../../runner/spec/link.js';
import { loadWorkspace } from '../../runner/spec/load.js';
import { parsePipelineFile } from '../../runner/spec/parse.js';
import type { LoadResult } from '../../runner/spec/types.js';
import { MAX_ALIAS_EXPANSION, MAX_NESTING_DEPTH, parseYamlSource } from '../../runner/spec/yaml-source.js';
import { recordFaults } from '../helpers/fault-ledger.js';
import { memContext } from '../unit/spec/mem-context.js';
import { FUZZ, RUNS, fuzz, replaceAt, valuePaths } from './fuzz-helpers.js';

/**
 * Hostile pipeline files and params files: random bytes, random YAML, token soup, and valid
 * pipelines mutated (truncated, values swapped for other types, huge numbers, NUL bytes, lone
 * surrogates, `..` paths, deep nesting). Whatever the input, loading returns the model or
 * diagnostics with our codes at file:line:col — it never throws. YAML bombs (aliases of aliases,
 * deep nesting) end fast with a diagnostic.
 *
 * Deterministic: a fixed seed (HPCFLOW_FUZZ_SEED overrides it, HPCFLOW_FUZZ_RUNS the number of
 * inputs per property); on a failure fast-check prints the seed and the shrunk input.
 */

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const FIXTURES = join(ROOT, 'test/fixtures/pipelines/valid');

/** Every file of a directory tree, by path relative to `root`. */
function readTree(root: string, dir = root, out: Record<string, string> = {}): Record<string, string> {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const abs = join(dir, e.name);
    if (e.isDirectory()) readTree(root, abs, out);
    else if (e.isFile()) out[relative(root, abs)] = readFileSync(abs, 'utf8');
  }
  return out;
}

interface Base {
  readonly text: string;
  readonly files: Record<string, string>;
}

/** The valid pipelines this repository has (fixtures and the demo), with the files they refer to. */
const BASES: Base[] = [
  ...readdirSync(FIXTURES).flatMap((ws) => {
    const files = readTree(join(FIXTURES, ws));
    return Object.keys(files)
      .filter((f) => f.startsWith('pipelines/'))
      .map((f) => ({ text: files[f] as string, files }));
  }),
  { text: readFileSync(join(ROOT, 'pipelines/heat.yaml'), 'utf8'), files: { 'params.yaml': readFileSync(join(ROOT, 'params.yaml'), 'utf8') } },
];

// ---------------------------------------------------------------------------------------------
// Generators

const EVIL_STRINGS = [
  '../x', '../../etc/passwd', '/etc/passwd', '~/x', 'a/../../b', '..\\..\\x', 'C:/x', '.', '', '..',
  '${x}', '$${x}', '${', '${}', '${ }', 'x\0y', '\0', '\u202e', '\ufeff', '\ud800', '\u2028', 'containers/../../x',
  '.hpcflow/x', '.git/config', 'a'.repeat(5000), '1e999', '0x1F', '-1', '2G', '99999999999999999999T', '25:00:00',
  '@', ',', '=', ' ', '\t', '\n', 'out/${n}.bin', '{ stage: x }', '*a', '&a', '!!binary', '---', '...',
];

const hostileString = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 40 }),
  fc.string({ unit: 'grapheme', maxLength: 20 }),
  fc.constantFrom(...EVIL_STRINGS),
);
const hostileNumber = fc.oneof(
  fc.integer(),
  fc.double(),
  fc.constantFrom(2 ** 53, 2 ** 53 + 2, -1, 0, 0.5, 1e308, -1e308, Number.MAX_VALUE, Number.MIN_VALUE, 1e21, Number.NaN, Infinity),
);
const hostileLeaf = fc.oneof(hostileString, hostileNumber, fc.boolean(), fc.constant(null));
/** Lists nested `n` deep around a value. */
const nest = (n: number, inner: unknown = 1): unknown => {
  let v = inner;
  for (let i = 0; i < n; i++) v = [v];
  return v;
};
const hostileKey = fc.oneof(fc.constantFrom('stages', 'image', 'cmd', 'deps', 'outs', 'path', 'key', 'from', '__proto__', 'constructor', 'toString', ''), fc.string({ maxLength: 8 }));
const { hostileValue } = fc.letrec((tie) => ({
  hostileValue: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    hostileLeaf,
    fc.array(tie('hostileValue'), { maxLength: 4 }),
    fc.dictionary(hostileKey, tie('hostileValue'), { maxKeys: 4 }),
    fc.integer({ min: 20, max: 150 }).map((n) => nest(n)),
  ),
}));

/** Plain YAML text from a value (non-finite numbers as .nan/.inf, strings quoted as needed). */
const toYaml = (v: unknown): string => (stringifyYaml(v, { aliasDuplicateObjects: false }) as string | undefined) ?? '';

const TOKENS = [
  '[', ']', '{', '}', ':', ': ', '- ', ',', ' ', '  ', '\n', '\n  ', '\n    ', '\t', '&a ', '*a', '&b ', '*b', '!!str ', '!!map ',
  '!!binary ', '!!set ', '? ', '|', '>-', '"', "'", '#', '---\n', '...\n', '%YAML 1.2\n', 'stages', 'image', 'cmd', 'deps', 'outs',
  'params', 'matrix', 'x', '${x}', '\0', '\ufeff', '\u2028', '\ud800', '\\', '~', 'null', '1e999', '<<: ',
];

/** Random bytes read as UTF-8 (invalid sequences become U+FFFD, NUL stays NUL). */
const randomBytes = fc.uint8Array({ maxLength: 600 }).map((b) => Buffer.from(b).toString('utf8'));
/** Random YAML-looking token sequences: mostly syntax errors of every kind. */
const tokenSoup = fc.array(fc.constantFrom(...TOKENS), { maxLength: 80 }).map((a) => a.join(''));
/** Valid YAML of random JSON-like values. */
const randomYaml = fc.jsonValue({ maxDepth: 5 }).map(toYaml);

/** Pipeline-shaped documents whose every value may be of the wrong type or hostile. */
const stageShaped = fc.record(
  {
    image: fc.oneof(hostileValue, fc.record({ build: hostileValue, dockerfile: hostileValue }, { requiredKeys: [] })),
    cmd: fc.oneof(hostileValue, fc.array(hostileString, { maxLength: 3 })),
    deps: fc.array(fc.oneof(hostileValue, fc.record({ stage: hostileValue }), fc.record({ dataset: hostileValue, version: hostileValue }, { requiredKeys: ['dataset'] })), { maxLength: 4 }),
    outs: fc.array(fc.oneof(hostileValue, fc.record({ path: hostileValue, cache: hostileValue, dataset: hostileValue }, { requiredKeys: ['path'] })), { maxLength: 4 }),
    metrics: hostileValue,
    wdir: hostileValue,
    params: fc.oneof(fc.array(hostileValue, { maxLength: 3 }), fc.dictionary(hostileKey, fc.oneof(hostileValue, fc.record({ from: hostileValue, key: hostileValue }, { requiredKeys: [] })), { maxKeys: 3 })),
    matrix: fc.dictionary(hostileKey, fc.oneof(hostileValue, fc.array(hostileLeaf, { maxLength: 4 })), { maxKeys: 3 }),
    resources: fc.record(
      { nodes: hostileValue, tasks_per_node: hostileValue, cpus_per_task: hostileValue, memory: hostileValue, time: hostileValue, partition: hostileValue },
      { requiredKeys: [] },
    ),
    env: fc.dictionary(hostileKey, hostileValue, { maxKeys: 3 }),
    kernel: fc.record({ framework: fc.oneof(fc.constantFrom('openmp', 'chapel', 'julia', 'python'), hostileValue), source: hostileValue, launch: hostileValue, args: hostileValue }, { requiredKeys: [] }),
    tolerance: fc.record({ rel: hostileValue, abs: hostileValue }, { requiredKeys: [] }),
  },
  { requiredKeys: [] },
);
const pipelineShaped = fc
  .record(
    {
      params_file: hostileValue,
      defaults: fc.oneof(hostileValue, stageShaped),
      stages: fc.oneof(hostileValue, fc.dictionary(fc.oneof(fc.constantFrom('a', 'b', 'gen', '__proto__', '-x', 'a b', ''), fc.string({ maxLength: 6 })), stageShaped, { maxKeys: 3 })),
    },
    { requiredKeys: ['stages'] },
  )
  .map(toYaml);

/**
 * YAML in flow style with anchors and aliases placed at random: aliases to later or missing
 * anchors, aliases inside their own anchor (cyclic values), aliases of aliases, odd keys.
 */
type Tree = { kind: 'scalar'; text: string } | { kind: 'alias'; name: string } | { kind: 'seq'; anchor: string | null; items: Tree[] } | { kind: 'map'; anchor: string | null; entries: [string, Tree][] };
const anchorName = fc.constantFrom('a', 'b', 'c');
const { tree } = fc.letrec<{ tree: Tree }>((tie) => ({
  tree: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.oneof(hostileLeaf.map((v) => JSON.stringify(v) ?? 'null'), fc.constantFrom('~', 'x', '1', '../x', '${p}')).map((text): Tree => ({ kind: 'scalar', text })),
    anchorName.map((name): Tree => ({ kind: 'alias', name })),
    fc.record({ anchor: fc.option(anchorName), items: fc.array(tie('tree'), { maxLength: 4 }) }).map((x): Tree => ({ kind: 'seq', ...x })),
    fc.record({ anchor: fc.option(anchorName), entries: fc.array(fc.tuple(fc.constantFrom('k', 'image', 'cmd', 'deps', 'outs', 'params', '~', '""', '1', 'true', '__proto__', '"a b"'), tie('tree')), { maxLength: 4 }) }).map((x): Tree => ({ kind: 'map', ...x })),
  ),
}));
const emit = (t: Tree): string => {
  if (t.kind === 'scalar') return t.text;
  if (t.kind === 'alias') return `*${t.name}`;
  const anchor = t.anchor === null ? '' : `&${t.anchor} `;
  if (t.kind === 'seq') return `${anchor}[${t.items.map(emit).join(', ')}]`;
  return `${anchor}{${t.entries.map(([k, v]) => `${k}: ${emit(v)}`).join(', ')}}`;
};
const aliasedPipeline = fc
  .tuple(tree, tree, tree)
  .map(([a, c, d]) => `x: ${emit(a)}\nstages:\n  s: { image: x, cmd: "run \${p}", params: { p: ${emit(c)} } }\n  t: ${emit(d)}\n`);
/** A params file of such trees (the fuzzed pipeline reads `a` and `b.c`). */
const aliasedParams = fc.tuple(tree, tree).map(([a, b]) => `a: ${emit(a)}\nb: ${emit(b)}\n`);


/** A valid pipeline with one node swapped for a hostile value, or removed, or a key renamed. */
const structurallyMutated = (base: Base): fc.Arbitrary<string> =>
  fc.tuple(fc.nat(), fc.oneof(hostileValue, fc.constant(undefined)), fc.nat(3)).map(([pick, value, times]) => {
    let doc = parseYaml(base.text) as unknown;
    for (let t = 0; t <= times; t++) {
      const paths = valuePaths(doc);
      doc = replaceAt(doc, paths[(pick * (t + 1)) % paths.length] as (string | number)[], value);
    }
    return toYaml(doc);
  });

/** A valid text cut, spliced or damaged at random places. */
const textMutated = (text: string): fc.Arbitrary<string> =>
  fc.oneof(
    fc.nat(text.length).map((n) => text.slice(0, n)),
    fc.tuple(fc.nat(text.length), fc.oneof(hostileString, tokenSoup)).map(([i, s]) => text.slice(0, i) + s + text.slice(i)),
    fc.tuple(fc.nat(text.length), fc.nat(text.length)).map(([a, b]) => text.slice(0, Math.min(a, b)) + text.slice(Math.max(a, b))),
    fc.tuple(fc.nat(text.length), fc.nat(200)).map(([i, n]) => text.slice(0, i) + text.slice(i, i + n).repeat(3) + text.slice(i)),
    fc.tuple(fc.nat(text.length), fc.constantFrom('\0', '\t', '[', '{', ':', '&a ', '*a', '"', '\n', '\ufffd')).map(([i, c]) => text.slice(0, i) + c + text.slice(i + 1)),
  );

const mutatedPipeline = fc.constantFrom(...BASES).chain((b) => fc.oneof(structurallyMutated(b).map((text) => ({ text, files: b.files })), textMutated(b.text).map((text) => ({ text, files: b.files }))));

// ---------------------------------------------------------------------------------------------
// The property

const FILE = 'pipelines/fuzz.yaml';
const RAW_ERROR = /\[object Object\]|Maximum call stack|is not a function|Cannot read propert|Cannot convert|undefined \(reading|Invalid string length/;

function load(text: string, files: Record<string, string>): LoadResult {
  const ctx = memContext(files);
  return linkWorkspace([parsePipelineFile(text, FILE, ctx)], ctx);
}

/** A clean answer: a model that serialises, or diagnostics with our codes at real positions. */
function expectClean(r: LoadResult, text: string, files: Record<string, string>): void {
  if (r.ok) {
    expect(() => JSON.stringify(r.pipeline)).not.toThrow();
    return;
  }
  expect(r.diagnostics.length).toBeGreaterThan(0);
  for (const d of r.diagnostics as Diagnostic[]) {
    expect(d.code).toMatch(/^HPCFLOW_[A-Z_]+$/);
    expect(d.message.length).toBeGreaterThan(0);
    expect(d.message).not.toMatch(RAW_ERROR);
    if (d.pos !== null) {
      const source = d.pos.file === FILE ? text : files[d.pos.file];
      expect(source, `diagnostic points at an unknown file ${d.pos.file}`).toBeDefined();
      expect(d.pos.line).toBeGreaterThanOrEqual(1);
      expect(d.pos.line).toBeLessThanOrEqual((source as string).split('\n').length);
      expect(d.pos.col).toBeGreaterThanOrEqual(1);
    }
    expect(formatDiagnostic(d).length).toBeGreaterThan(0);
  }
}


describe('hostile pipeline files', () => {
  const cases: [string, fc.Arbitrary<{ text: string; files: Record<string, string> }>][] = [
    ['random bytes', randomBytes.map((text) => ({ text, files: {} }))],
    ['YAML token soup', tokenSoup.map((text) => ({ text, files: {} }))],
    ['random YAML values', randomYaml.map((text) => ({ text, files: {} }))],
    ['pipeline-shaped documents with hostile values', pipelineShaped.map((text) => ({ text, files: { 'params.yaml': 'a: 1\n' } }))],
    ['valid pipelines mutated (truncated, spliced, values of other types)', mutatedPipeline],
    ['anchors and aliases at random (cycles, dangling, aliases of aliases)', aliasedPipeline.map((text) => ({ text, files: { 'params.yaml': 'a: 1\n' } }))],
  ];
  it.each(cases)('%s: a model or clean diagnostics, never a raw error', (name, arb) => {
    const t0 = Date.now();
    const n = fuzz(arb, ({ text, files }) => expectClean(load(text, files), text, files));
    console.log(`pipeline fuzz, ${name}: ${n.injected} inputs in ${Date.now() - t0} ms`);
    expect(n.recovered).toBe(n.injected);
    recordFaults({ scenario: `hostile pipeline: ${name}`, injected: n.injected, recovered: n.recovered, lost: n.injected - n.recovered });
  });

  it('hostile params files: the stages that read them get diagnostics at the params file, never a raw error', () => {
    const pipeline = 'params_file: params.yaml\nstages:\n  a:\n    image: x\n    cmd: run ${a} ${b.c} ${d}\n    params:\n      a: { key: a }\n      b.c: { key: b.c }\n      d: { from: other.yaml, key: d }\n';
    const paramsText = fc.oneof(randomBytes, tokenSoup, randomYaml, hostileValue.map(toYaml), aliasedParams, textMutated('a: 1\nb:\n  c: [1, 2]\n'));
    const t0 = Date.now();
    const n = fuzz(fc.tuple(paramsText, paramsText), ([p, o]) => {
      const files = { 'params.yaml': p, 'other.yaml': o };
      expectClean(load(pipeline, files), pipeline, files);
    });
    console.log(`params fuzz: ${n.injected} input pairs in ${Date.now() - t0} ms`);
    recordFaults({ scenario: 'hostile params files', injected: n.injected, recovered: n.recovered, lost: n.injected - n.recovered });
  });
});

describe('hostile pipeline files through the file system loader', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'hpcflow-hostile-spec-'));
    await mkdir(join(dir, 'pipelines'));
    await mkdir(join(dir, 'containers/a'), { recursive: true });
    await writeFile(join(dir, 'containers/a/Dockerfile'), 'FROM x\n');
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('loadWorkspace (real files, real stat calls) never throws on hostile pipeline or params files', async () => {
    const t0 = Date.now();
    let injected = 0;
    let recovered = 0;
    await fc.assert(
      fc.asyncProperty(fc.oneof(pipelineShaped, aliasedPipeline, mutatedPipeline.map((b) => b.text)), fc.oneof(randomYaml, hostileValue.map(toYaml), aliasedParams), async (text, params) => {
        injected++;
        await writeFile(join(dir, 'pipelines/p.yaml'), text);
        await writeFile(join(dir, 'params.yaml'), params);
        const r = await loadWorkspace(dir);
        expectClean(r, text, { 'params.yaml': params, 'pipelines/p.yaml': text });
        recovered++;
      }),
      { ...FUZZ, numRuns: Math.ceil(RUNS / 2) },
    );
    console.log(`file system loader fuzz: ${injected} inputs in ${Date.now() - t0} ms`);
    recordFaults({ scenario: 'hostile pipeline: through the file system loader', injected, recovered, lost: injected - recovered });
  });
});

describe('YAML bombs and runaway nesting', () => {
  /** Parses `text` as a pipeline: must end within `ms` with one YAML diagnostic matching `message`. */
  function refused(text: string, message: RegExp, ms = 3000): Diagnostic {
    const t0 = Date.now();
    const r = load(text, {});
    const took = Date.now() - t0;
    expect(took, `took ${took} ms`).toBeLessThan(ms);
    expect(r.ok).toBe(false);
    const d = (r.ok ? [] : r.diagnostics).find((x) => x.code === 'HPCFLOW_SPEC_YAML');
    expect(d, r.ok ? 'loaded' : r.diagnostics.map(formatDiagnostic).join('\n')).toBeDefined();
    expect((d as Diagnostic).message).toMatch(message);
    expect((d as Diagnostic).pos).not.toBeNull();
    return d as Diagnostic;
  }

  const laughs = (levels: number, width: number): string => {
    const lines = [`l0: &l0 [${Array(width).fill('"lol"').join(', ')}]`];
    for (let i = 1; i < levels; i++) lines.push(`l${i}: &l${i} [${Array(width).fill(`*l${i - 1}`).join(', ')}]`);
    return `${lines.join('\n')}\nstages: {}\n`;
  };

  const bombs: [string, () => string, RegExp][] = [
    ['billion laughs (9 levels of 9 aliases: 387 million nodes)', () => laughs(9, 9), /aliases expand to more than 100000 nodes/],
    ['billion laughs, 30 levels of 30', () => laughs(30, 30), /aliases expand to more than 100000 nodes/],
    ['one large anchor aliased a thousand times', () => `big: &big [${Array.from({ length: 2000 }, (_, i) => i).join(', ')}]\nuse: [${Array(1000).fill('*big').join(', ')}]\nstages: {}\n`, /aliases expand to more than 100000 nodes/],
    ['aliases that nest deeper and deeper', () => {
      const lines = ['- &a0 [x]'];
      for (let i = 1; i < 60; i++) lines.push(`- &a${i} [[[*a${i - 1}]]]`);
      return `x:\n${lines.map((l) => `  ${l}`).join('\n')}\nstages: {}\n`;
    }, /makes the nesting deeper than 100 levels/],
    ['an alias inside its own anchor (a cyclic value)', () => 'stages:\n  a:\n    image: x\n    cmd: run ${p}\n    params: { p: &l [1, *l] }\n', /inside the node it refers to/],
    ['100,000 nested [', () => '['.repeat(100_000), /nesting is deeper than 100 levels/],
    ['100,000 nested [ ] closed', () => `${'['.repeat(100_000)}${']'.repeat(100_000)}`, /nesting is deeper than 100 levels/],
    ['50,000 nested { a: ', () => `${'{a: '.repeat(50_000)}1${'}'.repeat(50_000)}`, /nesting is deeper than 100 levels/],
    ['100,000 nested "- "', () => `${'- '.repeat(100_000)}x\n`, /nesting is deeper than 100 levels/],
    ['100,000 nested "? " keys', () => `${'? '.repeat(100_000)}x\n`, /nesting is deeper than 100 levels/],
    ['3,000 levels of block indentation', () => Array.from({ length: 3000 }, (_, i) => `${' '.repeat(i)}k:`).join('\n'), /nesting is deeper than 100 levels/],
  ];

  it.each(bombs)('%s: a clear diagnostic, fast', (name, make, message) => {
    const text = make();
    const d = refused(text, message);
    expect(formatDiagnostic(d)).toMatch(/^pipelines\/fuzz\.yaml:\d+:\d+: error HPCFLOW_SPEC_YAML: /);
    recordFaults({ scenario: `YAML bomb: ${name}`, injected: 1, recovered: 1, lost: 0 });
  });

  it('nesting up to the limit is fine, one level more is refused (lists, mappings and aliases)', () => {
    const ok = parseYamlSource(`v: ${'['.repeat(MAX_NESTING_DEPTH - 1)}${']'.repeat(MAX_NESTING_DEPTH - 1)}\n`, 'f.yaml');
    expect(ok.diagnostics).toEqual([]);
    const deep = parseYamlSource(`v: ${'['.repeat(MAX_NESTING_DEPTH)}${']'.repeat(MAX_NESTING_DEPTH)}\n`, 'f.yaml');
    expect(deep.value).toBeUndefined();
    expect(deep.diagnostics.map((x) => `${x.pos?.line}:${x.pos?.col} ${x.message}`)).toEqual([`1:${MAX_NESTING_DEPTH + 3} YAML nesting is deeper than ${MAX_NESTING_DEPTH} levels`]);
    // Anchors reused a few hundred times (a real pipeline's defaults) stay well under the expansion limit.
    const reuse = parseYamlSource(`r: &r { nodes: 2, memory: 4G, env: { A: 1, B: 2 } }\nuse: [${Array(500).fill('*r').join(', ')}]\n`, 'f.yaml');
    expect(reuse.diagnostics).toEqual([]);
    expect(MAX_ALIAS_EXPANSION).toBeGreaterThan(500 * 6);
    recordFaults({ scenario: 'YAML nesting limit exact', injected: 2, recovered: 2, lost: 0 });
  });

  it('after a refused bomb, YAML still parses (a stack overflow inside the parser used to break every later parse)', () => {
    for (let i = 0; i < 3; i++) {
      refused(`${'['.repeat(5000)}${']'.repeat(5000)}`, /nesting is deeper/);
      const r = load('stages:\n  a:\n    image: x\n    cmd: echo [a, b] {c}\n', {});
      expect(r.ok, r.ok ? '' : r.diagnostics.map(formatDiagnostic).join('\n')).toBe(true);
    }
    recordFaults({ scenario: 'YAML parses again after a refused bomb', injected: 3, recovered: 3, lost: 0 });
  });

  it('thousands of near-miss references: diagnostics in seconds ("did you mean" stays bounded)', () => {
    // Every stage depends on a path one character away from another stage's output, and on an
    // unknown stage: each unknown reference used to be compared with every candidate, at a cost
    // of length² each — minutes for a 140 KB file.
    const long = (i: number): string => `results/${i}/${'a'.repeat(180)}`;
    const lines = ['stages:'];
    for (let i = 0; i < 300; i++) lines.push(`  s${i}: { image: x, cmd: y, deps: ["${long(i + 1)}y", { stage: "t${i}" }], outs: ["${long(i)}"] }`);
    const text = `${lines.join('\n')}\n`;
    const t0 = Date.now();
    const r = load(text, {});
    const took = Date.now() - t0;
    expect(took, `took ${took} ms`).toBeLessThan(10_000);
    expect(r.ok ? 0 : r.diagnostics.filter((d) => d.code === 'HPCFLOW_SPEC_UNKNOWN_DEP').length).toBe(600);
    recordFaults({ scenario: 'near-miss reference storm', injected: 600, recovered: 600, lost: 0 });
  });

  it('a syntax error on a line of 200,000 brackets is reported fast (no quadratic hint lookup)', () => {
    const text = `stages:\n  a: ${'['.repeat(50)}${'x, '.repeat(60_000)}\n  b: c\n`;
    const t0 = Date.now();
    const r = load(text, {});
    expect(Date.now() - t0).toBeLessThan(3000);
    expect(r.ok).toBe(false);
    recordFaults({ scenario: 'syntax error on a huge line', injected: 1, recovered: 1, lost: 0 });
  });
});
