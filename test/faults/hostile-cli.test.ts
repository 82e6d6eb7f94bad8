import { execa } from 'execa';
import { mkdtemp, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BIN, hpcflow } from '../helpers/cli.js';
import { recordFaults } from '../helpers/fault-ledger.js';

/**
 * Broken and hostile input files through the real CLI: every one ends with a non-zero exit
 * code, a message pointing at the file (file:line:col for YAML and version files) and no stack
 * trace. YAML bombs and runaway nesting end in seconds with bounded memory (the CLI's peak
 * resident set size, measured in the process itself at exit).
 */
let ws: string;
let tools: string;

const GOOD_PIPELINE = 'stages:\n  a:\n    image: hpcflow-test/busybox:1\n    cmd: echo ${n} > out.txt\n    params: [n]\n    outs: [out.txt]\n';
const GOOD_PARAMS = 'n: 3\n';
/** Peak RSS allowed for a CLI refusing a bomb (a bare `status` peaks around 90 MB here). */
const RSS_BOUND_MB = 200;

beforeAll(async () => {
  ws = await mkdtemp(join(tmpdir(), 'hpcflow-hostile-cli-'));
  tools = await mkdtemp(join(tmpdir(), 'hpcflow-hostile-tools-'));
  await mkdir(join(ws, 'pipelines'));
  // Records the process's peak resident set size (kB) when it exits.
  await writeFile(join(tools, 'peak-rss.mjs'), "import { writeFileSync } from 'node:fs';\nprocess.on('exit', () => writeFileSync(process.env.PEAK_RSS_FILE, String(process.resourceUsage().maxRSS)));\n");
});
afterAll(async () => {
  await rm(ws, { recursive: true, force: true });
  await rm(tools, { recursive: true, force: true });
});

async function reset(files: Record<string, string | Buffer>): Promise<void> {
  await rm(ws, { recursive: true, force: true });
  await mkdir(join(ws, 'pipelines'), { recursive: true });
  for (const [rel, text] of Object.entries(files)) {
    await mkdir(join(ws, rel, '..'), { recursive: true });
    await writeFile(join(ws, rel), text);
  }
}

/** The CLI, with its wall time and peak RSS. */
async function measured(args: readonly string[]): Promise<{ code: number; stderr: string; ms: number; peakMB: number }> {
  const rssFile = join(tools, `rss-${Date.now()}`);
  const t0 = Date.now();
  const r = await execa('node', ['--import', join(tools, 'peak-rss.mjs'), BIN, ...args], { cwd: ws, reject: false, env: { CI: '1', PEAK_RSS_FILE: rssFile }, timeout: 120_000 });
  const ms = Date.now() - t0;
  const peakMB = Number(await readFile(rssFile, 'utf8')) / 1024;
  return { code: r.exitCode ?? -1, stderr: r.stderr, ms, peakMB };
}

/** No stack trace, no "internal error": the error was foreseen. */
function expectNoTrace(stderr: string): void {
  expect(stderr).not.toMatch(/^\s+at .+[:(]/m);
  expect(stderr).not.toMatch(/internal error|TypeError|RangeError|ReferenceError|SyntaxError/);
}

describe('broken files through the CLI', () => {
  const cases: [string, Record<string, string | Buffer>, string[], number, RegExp][] = [
    ['YAML syntax error', { 'pipelines/p.yaml': 'stages:\n  a:\n    image: x\n    cmd: [echo, "unterminated\n' }, ['status'], 3, /^pipelines\/p\.yaml:\d+:\d+: error HPCFLOW_SPEC_YAML: YAML syntax error/m],
    ['values of the wrong type', { 'pipelines/p.yaml': 'stages:\n  a:\n    image: 5\n    cmd: echo\n    resources: { nodes: many, memory: [1] }\n' }, ['status'], 3, /^pipelines\/p\.yaml:3:12: error HPCFLOW_SPEC_TYPE: stages\.a\.image: .*\n[\s\S]*^pipelines\/p\.yaml:5:25: error HPCFLOW_SPEC_TYPE: stages\.a\.resources\.nodes: expected a whole number ≥ 1, got string "many"/m],
    ['binary garbage with NUL bytes', { 'pipelines/p.yaml': Buffer.from([0x73, 0x74, 0x00, 0xff, 0xfe, 0x3a, 0x0a, 0x5b, 0x00, 0x7b, 0x0a, 0x09, 0x2d, 0x80]) }, ['status'], 3, /^pipelines\/p\.yaml:\d+:\d+: error HPCFLOW_SPEC_/m],
    ['a valid file cut short inside a quoted string', { 'pipelines/p.yaml': GOOD_PIPELINE.replace('cmd: echo ${n} > out.txt', 'cmd: "echo ${n} > ou'), 'params.yaml': GOOD_PARAMS }, ['status'], 3, /^pipelines\/p\.yaml:\d+:\d+: error HPCFLOW_SPEC_YAML/m],
    ['a huge number and a lone surrogate', { 'pipelines/p.yaml': 'stages:\n  a:\n    image: "\\ud800"\n    cmd: echo\n    resources: { nodes: 1e999, cpus_per_task: 99999999999999999999 }\n' }, ['status'], 3, /^pipelines\/p\.yaml:5:25: error HPCFLOW_SPEC_TYPE: stages\.a\.resources\.nodes: expected a whole number ≥ 1, got number Infinity/m],
    ['a params file whose alias contains itself', { 'pipelines/p.yaml': GOOD_PIPELINE, 'params.yaml': 'n: &n [1, *n]\n' }, ['status'], 3, /^params\.yaml:1:11: error HPCFLOW_SPEC_PARAMS_FILE: params file params\.yaml is not valid YAML: YAML alias \*n is inside the node it refers to/m],
    ['a lockfile that is not JSON', { 'pipelines/p.yaml': GOOD_PIPELINE, 'params.yaml': GOOD_PARAMS, 'hpcflow.lock': '{"schema": 1, "stages": {"p/a": {"fingerp' }, ['status'], 3, /hpcflow\.lock is not valid JSON/],
    ['a lockfile entry without its image', { 'pipelines/p.yaml': GOOD_PIPELINE, 'params.yaml': GOOD_PARAMS, 'hpcflow.lock': JSON.stringify({ schema: 1, stages: { 'p/a': { fingerprint: 'a'.repeat(64), cmd: 'echo 3 > out.txt', wdir: '', deps: {}, params: { n: 3 }, env: {}, shape: { nodes: 1, tasksPerNode: 1, cpusPerTask: 1 }, upstream: {}, outs: ['out.txt'], outRecords: [] } } }) }, ['status'], 3, /hpcflow\.lock: entry for stage p\/a is malformed: image is missing/],
    ['a lockfile whose params are a string', { 'pipelines/p.yaml': GOOD_PIPELINE, 'params.yaml': GOOD_PARAMS, 'hpcflow.lock': JSON.stringify({ schema: 1, stages: { 'p/a': { fingerprint: 'a'.repeat(64), cmd: 'x', wdir: '', image: { tag: 't', digest: 'd' }, deps: {}, params: 'n=3', env: {}, shape: { nodes: 1, tasksPerNode: 1, cpusPerTask: 1 }, upstream: {}, outs: [], outRecords: [] } } }) }, ['status'], 3, /entry for stage p\/a is malformed: params is not a mapping/],
    ['a dataset version file with a damaged header', { 'datasets/d.yaml': 'name: d\npath: [1, 2]\nversion: x\nfiles: 0\nbytes: 0\nmanifest: |2\n' }, ['dataset', 'status', 'd'], 3, /^datasets\/d\.yaml:2:7: error HPCFLOW_DATASET_INVALID: "path" must be a workspace-relative directory/m],
    ['a dataset version file cut short', { 'datasets/d.yaml': 'name: d\npath: "data/d"\nversion: ' }, ['dataset', 'status', 'd'], 3, /^datasets\/d\.yaml:3:1: error HPCFLOW_DATASET_INVALID: no "manifest: \|2" block/m],
    ['a workspace config nested 10,000 deep', { 'pipelines/p.yaml': GOOD_PIPELINE, 'params.yaml': GOOD_PARAMS, 'hpcflow.yaml': `remotes: ${'['.repeat(10_000)}${']'.repeat(10_000)}\n` }, ['dataset', 'status'], 3, /hpcflow\.yaml:1:\d+: .*YAML nesting is deeper than 100 levels/],
  ];

  it.each(cases)('%s: a non-zero exit, a message at the file, no stack trace', async (name, files, args, code, message) => {
    await reset(files);
    const r = await hpcflow(args, ws);
    expect(r.code, r.stderr).toBe(code);
    expect(r.stderr).toMatch(message);
    expectNoTrace(r.stderr);
    recordFaults({ scenario: `CLI, broken input: ${name}`, injected: 1, recovered: 1, lost: 0 });
  });
});

describe('YAML bombs through the CLI: fast, bounded memory', () => {
  const laughs = (levels: number, width: number): string => {
    const lines = [`l0: &l0 [${Array(width).fill('"lol"').join(', ')}]`];
    for (let i = 1; i < levels; i++) lines.push(`l${i}: &l${i} [${Array(width).fill(`*l${i - 1}`).join(', ')}]`);
    return lines.join('\n');
  };
  const bombs: [string, Record<string, string>, RegExp][] = [
    ['billion laughs in a pipeline file', { 'pipelines/p.yaml': `${laughs(9, 9)}\n${GOOD_PIPELINE}` }, /^pipelines\/p\.yaml:\d+:\d+: error HPCFLOW_SPEC_YAML: YAML aliases expand to more than 100000 nodes/m],
    ['billion laughs in the params file', { 'pipelines/p.yaml': GOOD_PIPELINE, 'params.yaml': `${laughs(12, 12)}\nn: 3\n` }, /^params\.yaml:\d+:\d+: error HPCFLOW_SPEC_PARAMS_FILE: .*YAML aliases expand to more than 100000 nodes/m],
    ['1,000,000 nested [', { 'pipelines/p.yaml': '['.repeat(1_000_000) }, /^pipelines\/p\.yaml:1:101: error HPCFLOW_SPEC_YAML: YAML nesting is deeper than 100 levels/m],
    ['200,000 nested { a: in the params file', { 'pipelines/p.yaml': GOOD_PIPELINE, 'params.yaml': `n: ${'{a: '.repeat(200_000)}1${'}'.repeat(200_000)}\n` }, /^params\.yaml:1:\d+: error HPCFLOW_SPEC_PARAMS_FILE: .*YAML nesting is deeper than 100 levels/m],
  ];
  it.each(bombs)('%s', async (name, files, message) => {
    await reset(files);
    const r = await measured(['status']);
    console.log(`${name}: exit ${r.code} in ${r.ms} ms, peak RSS ${r.peakMB.toFixed(0)} MB`);
    expect(r.code, r.stderr).toBe(3);
    expect(r.stderr).toMatch(message);
    expectNoTrace(r.stderr);
    expect(r.ms).toBeLessThan(15_000);
    expect(r.peakMB).toBeLessThan(RSS_BOUND_MB);
    recordFaults({ scenario: `CLI, YAML bomb: ${name}`, injected: 1, recovered: 1, lost: 0 });
  });
});

describe('after the refusals the workspace still works', () => {
  it('a fixed pipeline runs', async () => {
    await reset({ 'pipelines/p.yaml': GOOD_PIPELINE, 'params.yaml': GOOD_PARAMS });
    const r = await hpcflow(['run'], ws);
    expect(r.code, r.stderr).toBe(0);
    expect(await readFile(join(ws, 'out.txt'), 'utf8')).toBe('3\n');
    // The lockfile hpcflow wrote reads back complete.
    expect((await hpcflow(['status', '--check'], ws)).code).toBe(0);
    recordFaults({ scenario: 'CLI, recovery after hostile input', injected: 1, recovered: 1, lost: 0 });
  });
});
