import { execa } from 'execa';
import fc from 'fast-check';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { hashFile } from '../../runner/fingerprint/hash-file.js';
import { linkWorkspace } from '../../runner/spec/link.js';
import { parsePipelineFile } from '../../runner/spec/parse.js';
import { events, hpcflow } from '../helpers/cli.js';
import { recordFaults } from '../helpers/fault-ledger.js';
import { memContext } from '../unit/spec/mem-context.js';
import { RUNS, SEED } from './fuzz-helpers.js';

/**
 * Path traversal and symlink escapes. Paths come from pipelines (deps, outs, metrics, wdir,
 * params files, image contexts, kernel sources), dataset version files, lockfiles and run
 * records; whatever they say — `..`, absolute, `~`, backslashes, NUL bytes, `${…}` that expands
 * to `..` — and whatever symlinks the workspace holds, nothing is read from or written to
 * outside the workspace, and the refusal says why, at file:line:col where there is one.
 */

let ws: string;
let outside: string;
const SECRET = `outside the workspace ${process.pid}\n`;

beforeAll(async () => {
  outside = await mkdtemp(join(tmpdir(), 'hpcflow-hostile-outside-'));
  await writeFile(join(outside, 'secret.txt'), SECRET);
});
afterAll(async () => {
  await rm(outside, { recursive: true, force: true });
  if (ws !== undefined) await rm(ws, { recursive: true, force: true });
});
beforeEach(async () => {
  if (ws !== undefined) await rm(ws, { recursive: true, force: true });
  ws = await mkdtemp(join(tmpdir(), 'hpcflow-hostile-paths-'));
  await mkdir(join(ws, 'pipelines'));
});

/** Nothing but the secret is in the outside directory. */
async function outsideUntouched(): Promise<void> {
  expect(await readdir(outside)).toEqual(['secret.txt']);
  expect(await readFile(join(outside, 'secret.txt'), 'utf8')).toBe(SECRET);
}

function expectNoTrace(stderr: string): void {
  expect(stderr).not.toMatch(/^\s+at .+[:(]/m);
  expect(stderr).not.toMatch(/internal error|TypeError|RangeError/);
}

/** Is `p` a normalised path inside the workspace ('' is the workspace itself)? */
const inside = (p: string): boolean => !p.includes('\0') && !p.includes('\\') && !p.startsWith('/') && (p === '' || p.split('/').every((s) => s !== '' && s !== '.' && s !== '..'));

describe('paths in pipelines, fuzzed', () => {
  it('every path the spec accepts or looks at is inside the workspace', () => {
    const segment = fc.constantFrom('..', '.', 'a', 'b c', '', '~', 'C:', '${up}', '${dot}', 'x\0y', 'é', '%2e%2e', '...', 'containers');
    const separator = fc.constantFrom('/', '\\', '//');
    const path = fc
      .tuple(fc.constantFrom('', '', '/', '~/', 'C:/', 'c:\\', '\\\\server\\', './'), fc.array(fc.tuple(separator, segment), { minLength: 1, maxLength: 6 }))
      .map(([prefix, parts]) => prefix + parts.map(([sep, seg], i) => (i === 0 ? '' : sep) + seg).join(''));
    const files = { 'containers/a/Dockerfile': 'FROM x\n', 'a/b': 'x', 'k/main.c': 'int main;\n', 'params.yaml': 'k: 1\n', 'a/params.yaml': 'k: 2\n' };
    let injected = 0;
    let recovered = 0;
    fc.assert(
      fc.property(fc.array(path, { minLength: 11, maxLength: 11 }), (p) => {
        injected++;
        const q = p.map((x) => JSON.stringify(x));
        const text = [
          `params_file: ${q[0]}`,
          'stages:',
          '  s:',
          `    image: { build: ${q[1]}, dockerfile: ${q[2]} }`,
          '    cmd: run',
          `    deps: [${q[3]}, ${q[4]}]`,
          `    outs: [${q[5]}]`,
          `    metrics: ${q[6]}`,
          `    wdir: ${q[7]}`,
          `    params: { up: "..", dot: ".", v: { from: ${q[8]}, key: k } }`,
          '  k:',
          `    kernel: { framework: openmp, source: ${q[9]}, project: ${q[10]} }`,
          '',
        ].join('\n');
        const ctx = memContext(files);
        const r = linkWorkspace([parsePipelineFile(text, 'pipelines/p.yaml', ctx)], ctx);
        for (const asked of ctx.asked) expect(inside(asked.replace(/^(read|exists) /, '')), `the spec looked at ${JSON.stringify(asked)}`).toBe(true);
        if (r.ok) {
          for (const s of r.pipeline.stages) {
            for (const d of s.deps) if (d.kind === 'path') expect(inside(d.path) && d.path !== '', d.path).toBe(true);
            for (const o of s.outs) expect(inside(o.path) && o.path !== '', o.path).toBe(true);
            if (s.metrics !== null) expect(inside(s.metrics), s.metrics).toBe(true);
            expect(inside(s.wdir), s.wdir).toBe(true);
          }
        } else {
          for (const d of r.diagnostics) {
            expect(d.code).toMatch(/^HPCFLOW_SPEC_[A-Z_]+$/);
            expect(d.pos?.line).toBeGreaterThanOrEqual(1);
          }
        }
        recovered++;
      }),
      { seed: SEED, numRuns: RUNS, endOnFailure: true },
    );
    recordFaults({ scenario: 'fuzzed paths in a pipeline', injected, recovered, lost: injected - recovered });
  });
});

describe('paths in pipelines through the CLI', () => {
  it('.., absolute, ~, backslashes, drive letters, NUL and ${…} expanding to .. are refused at file:line:col', async () => {
    const cases: [string, string][] = [
      ['d1', '{ deps: ["../secret.txt"] }'],
      ['d2', '{ deps: ["/etc/passwd"] }'],
      ['d3', '{ deps: ["~/.ssh/id_rsa"] }'],
      ['d4', '{ deps: ["data/../../secret.txt"] }'],
      ['d5', '{ deps: ["..\\\\..\\\\secret.txt"] }'],
      ['d6', '{ deps: ["C:/Windows/win.ini"] }'],
      ['d7', '{ deps: ["in\\0.txt"] }'],
      ['o1', '{ outs: ["../out.txt"] }'],
      ['o2', '{ outs: [{ path: "/tmp/out.txt" }] }'],
      ['o3', '{ outs: ["o\\0.txt"] }'],
      ['m1', '{ metrics: "../../m.json" }'],
      ['w1', '{ wdir: "../.." }'],
      ['i1', '{ deps: ["${up}/secret.txt"], params: { up: ".." } }'],
      ['x1', '{ outs: ["${d}/x"], matrix: { d: [".."] } }'],
      ['p1', '{ cmd: "echo ${p}", params: { p: { from: "../params.yaml", key: a } } }'],
      ['p2', '{ cmd: "echo ${p}", params: { p: { from: "p\\0.yaml", key: a } } }'],
      ['b1', '{ image: { build: "../../etc" } }'],
      ['b2', '{ image: { build: "x\\0" } }'],
      ['b3', '{ image: { build: x, dockerfile: "../../Dockerfile" } }'],
      ['k1', '{ kernel: { framework: openmp, source: "../k/a.c" } }'],
    ];
    const header = ['defaults:', '  image: hpcflow-test/busybox:1', '  cmd: "true"', 'stages:'];
    await writeFile(join(ws, 'pipelines/p.yaml'), `${[...header, ...cases.map(([n, body]) => `  ${n}: ${body}`)].join('\n')}\n`);
    await writeFile(join(ws, 'pipelines/q.yaml'), 'params_file: ../params.yaml\nstages:\n  a: { image: x, cmd: "echo ${v}", params: [v] }\n');
    const r = await hpcflow(['status'], ws);
    expect(r.code, r.stderr).toBe(3);
    expectNoTrace(r.stderr);
    cases.forEach(([name], i) => {
      expect(r.stderr, `stage ${name}`).toMatch(new RegExp(`^pipelines/p\\.yaml:${header.length + 1 + i}:\\d+: error HPCFLOW_SPEC_PATH_ESCAPE: `, 'm'));
    });
    expect(r.stderr).toMatch(/^pipelines\/q\.yaml:1:14: error HPCFLOW_SPEC_PATH_ESCAPE: params_file '\.\.\/params\.yaml' leads outside the workspace/m);
    expect(r.stderr).toContain("dep path 'in\\0.txt' contains a NUL byte".replace('\\0', '\0'));
    await outsideUntouched();
    recordFaults({ scenario: 'escaping paths in a pipeline (CLI)', injected: cases.length + 1, recovered: cases.length + 1, lost: 0 });
  });
});

describe('symlinks leading out of the workspace', () => {
  it('a dependency through a symlink (directory, file, dangling) is refused, naming the link', async () => {
    await symlink(outside, join(ws, 'data'));
    await symlink(join(outside, 'secret.txt'), join(ws, 'link.txt'));
    await symlink(join(outside, 'nothing-here'), join(ws, 'gone.txt'));
    let n = 0;
    for (const [dep, link] of [['data/secret.txt', 'data'], ['link.txt', 'link.txt'], ['gone.txt', 'gone.txt']] as const) {
      await writeFile(join(ws, 'pipelines/p.yaml'), `stages:\n  a:\n    image: hpcflow-test/busybox:1\n    cmd: cat ${dep} > copy.txt\n    deps: [${dep}]\n    outs: [copy.txt]\n`);
      for (const cmd of ['status', 'run']) {
        const r = await hpcflow([cmd], ws);
        expect(r.code, `${cmd} ${dep}: ${r.stdout}${r.stderr}`).not.toBe(0);
        expect(`${r.stdout}${r.stderr}`).toMatch(new RegExp(`symlink "${link.replace('.', '\\.')}" points to ".*", outside the workspace|dep '${dep.replace('.', '\\.')}' of stage p/a does not exist`));
        expectNoTrace(r.stderr);
        n++;
      }
      expect(existsSync(join(ws, 'copy.txt'))).toBe(false);
    }
    await outsideUntouched();
    recordFaults({ scenario: 'dependency through a symlink leading out', injected: n, recovered: n, lost: 0 });
  });

  it('an output the stage made a symlink leading out fails the stage; nothing from outside reaches the cache', async () => {
    await writeFile(
      join(ws, 'pipelines/p.yaml'),
      `stages:\n  file:\n    image: hpcflow-test/busybox:1\n    cmd: ln -s ${join(outside, 'secret.txt')} res.txt\n    outs: [res.txt]\n  dir:\n    image: hpcflow-test/busybox:1\n    cmd: ln -s ${outside} resdir\n    outs: [resdir]\n  metric:\n    image: hpcflow-test/busybox:1\n    cmd: ln -s ${join(outside, 'secret.txt')} m.json\n    metrics: m.json\n`,
    );
    const r = await hpcflow(['run', '--json', '--on-failure', 'continue'], ws);
    expect(r.code, r.stderr).toBe(1);
    const ends = events(r.stdout).filter((e) => e.type === 'stage-end');
    expect(ends).toHaveLength(3);
    for (const e of ends) {
      const o = e.outcome as { status: string; error: string };
      expect(o.status, JSON.stringify(e)).toBe('failed');
      expect(o.error).toMatch(/symlink "(res\.txt|resdir|m\.json)" points to ".*", outside the workspace/);
    }
    const secretHash = (await hashFile(join(outside, 'secret.txt'))).hash;
    const objects = join(ws, '.hpcflow/cache/objects');
    const stored = existsSync(objects) ? (await Promise.all((await readdir(objects)).map(async (s) => (await readdir(join(objects, s))).map((x) => s + x)))).flat() : [];
    expect(stored).not.toContain(secretHash);
    expect(existsSync(join(ws, 'hpcflow.lock')) ? await readFile(join(ws, 'hpcflow.lock'), 'utf8') : '').not.toMatch(/"p\/(file|dir|metric)"/);
    await outsideUntouched();
    recordFaults({ scenario: 'stage output is a symlink leading out', injected: 3, recovered: 3, lost: 0 });
  });

  it('an output directory replaced by a symlink leading out is not restored through', async () => {
    await writeFile(join(ws, 'pipelines/p.yaml'), 'stages:\n  a:\n    image: hpcflow-test/busybox:1\n    cmd: mkdir -p out && echo result > out/r.txt\n    outs: [out/r.txt]\n');
    expect((await hpcflow(['run'], ws)).code).toBe(0);
    await rm(join(ws, 'out'), { recursive: true });
    await symlink(outside, join(ws, 'out'));
    // The output is missing (its parent leads nowhere inside), so a restore is due — and refused.
    const r = await hpcflow(['run'], ws);
    expect(r.code, `${r.stdout}${r.stderr}`).toBe(1);
    expect(r.stdout).toMatch(/FAILED: cannot restore output "out\/r\.txt": its parent directory leads outside the workspace/);
    expectNoTrace(r.stderr);
    await outsideUntouched();
    recordFaults({ scenario: 'output parent replaced by a symlink leading out', injected: 1, recovered: 1, lost: 0 });
  });
});

describe('paths in dataset version files, lockfiles and run records', () => {
  it('dataset checkout never creates directories through a symlink leading out; a file or dangling link in the way is a clean error', async () => {
    await mkdir(join(ws, 'data/d'), { recursive: true });
    await writeFile(join(ws, 'data/d/a.txt'), 'a\n');
    expect((await hpcflow(['dataset', 'add', 'data/d', '--no-git'], ws)).code).toBe(0);
    const file = join(ws, 'datasets/d.yaml');
    await writeFile(file, (await readFile(file, 'utf8')).replace('path: "data/d"', 'path: "link/sub"'));
    const cases: [string, () => Promise<void>, number, RegExp][] = [
      ['symlink to outside', () => symlink(outside, join(ws, 'link')), 3, /symlink "link" points to ".*", outside the workspace/],
      ['dangling symlink to outside', () => symlink(join(outside, 'nowhere'), join(ws, 'link')), 3, /symlink "link" points to ".*nowhere", outside the workspace/],
      ['dangling symlink inside', () => symlink('nowhere', join(ws, 'link')), 2, /dataset directory link\/sub: link is a dangling symlink/],
      ['a file in the way', () => writeFile(join(ws, 'link'), 'x'), 2, /dataset directory link\/sub: link is a file, not a directory/],
    ];
    for (const [name, make, code, message] of cases) {
      await rm(join(ws, 'link'), { recursive: true, force: true });
      await make();
      const r = await hpcflow(['dataset', 'checkout', 'd'], ws);
      expect(r.code, `${name}: ${r.stderr}`).toBe(code);
      expect(r.stderr).toMatch(message);
      expectNoTrace(r.stderr);
      await outsideUntouched();
    }
    recordFaults({ scenario: 'dataset checkout through a symlink or file', injected: cases.length, recovered: cases.length, lost: 0 });
  });

  it('a lockfile whose output record points outside is refused before anything is restored', async () => {
    await writeFile(join(ws, 'pipelines/p.yaml'), 'stages:\n  a:\n    image: hpcflow-test/busybox:1\n    cmd: echo r > r.txt\n    outs: [r.txt]\n');
    expect((await hpcflow(['run'], ws)).code).toBe(0);
    const lock = JSON.parse(await readFile(join(ws, 'hpcflow.lock'), 'utf8')) as { stages: Record<string, { outRecords: { path: string }[] }> };
    let n = 0;
    for (const evil of ['../escape.txt', join(outside, 'escape.txt'), 'a/../../escape.txt', 'r\0.txt']) {
      (lock.stages['p/a'] as { outRecords: { path: string }[] }).outRecords[0] = { ...(lock.stages['p/a']?.outRecords[0] as { path: string }), path: evil };
      await writeFile(join(ws, 'hpcflow.lock'), JSON.stringify(lock));
      await rm(join(ws, 'r.txt'), { force: true });
      const r = await hpcflow(['run'], ws);
      expect(r.code, r.stderr).toBe(3);
      expect(r.stderr).toContain(`hpcflow.lock: entry for stage p/a is malformed: outRecords: output path ${JSON.stringify(evil)} is not a relative path inside the workspace`);
      expectNoTrace(r.stderr);
      n++;
    }
    await outsideUntouched();
    recordFaults({ scenario: 'lockfile output record leading out', injected: n, recovered: n, lost: 0 });
  });

  it('a run record naming metrics files outside the workspace: refused by the history commands, never read', async () => {
    const git = (...args: string[]) => execa('git', args, { cwd: ws, env: { GIT_AUTHOR_NAME: 't', GIT_AUTHOR_EMAIL: 't@x', GIT_COMMITTER_NAME: 't', GIT_COMMITTER_EMAIL: 't@x' } });
    // The workspace is a subdirectory of the repository; the repository holds a file outside it.
    const repoRoot = ws;
    const sub = join(repoRoot, 'ws');
    await mkdir(join(sub, 'pipelines'), { recursive: true });
    await mkdir(join(sub, 'runs'));
    await mkdir(join(sub, 'm'));
    await writeFile(join(repoRoot, 'secret.json'), '{"secret": 4242}\n');
    await writeFile(join(sub, 'pipelines/p.yaml'), 'stages: {}\n');
    await writeFile(join(sub, 'm/a.json'), '{"t": 1}\n');
    await git('init', '-q', '-b', 'main');
    await git('add', '-A');
    await git('commit', '-qm', 'input');
    const input = (await git('rev-parse', 'HEAD')).stdout;
    const metrics = { 'p/ok': 'm/a.json', 'p/up': '../secret.json', 'p/deep': 'm/../../secret.json', 'p/abs': join(repoRoot, 'secret.json'), 'p/nul': 'm/a\0.json', 'p/far': '../../../../../etc/passwd' };
    await writeFile(join(sub, 'runs/r1.json'), JSON.stringify({ schema: 1, runId: 'r1', ok: true, aborted: false, wallMs: 1, counts: { ran: 1 }, metrics }));
    await git('add', '-A');
    await git('commit', '-qm', `results\n\nHpcflow-Run: r1\nHpcflow-Input: ${input}`);
    const r = await hpcflow(['metrics', 'show'], sub);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/p\/ok\s+t\s+1/);
    expect(`${r.stdout}${r.stderr}`).not.toContain('4242');
    for (const stage of ['p/up', 'p/deep', 'p/far']) expect(r.stderr).toMatch(new RegExp(`${stage}: .*: the path leads outside the workspace \\(refused\\)`));
    expect(r.stderr).toMatch(/p\/abs: .*: the path is absolute \(refused\)/);
    expect(r.stderr).toMatch(/p\/nul: .*: the path contains a NUL byte \(refused\)/);
    expectNoTrace(r.stderr);
    const log = await hpcflow(['log'], sub);
    expect(log.code, log.stderr).toBe(0);
    recordFaults({ scenario: 'run record metrics paths leading out', injected: 5, recovered: 5, lost: 0 });
  });
});
