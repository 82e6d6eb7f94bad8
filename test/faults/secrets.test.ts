import { execa } from 'execa';
import { randomBytes, randomInt, timingSafeEqual } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type * as NodeCrypto from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { signBody, verifySignature } from '../../runner/triggers/webhook.js';
import { events, hpcflow } from '../helpers/cli.js';
import type { CliResult } from '../helpers/cli.js';
import { startFakeGitHub } from '../helpers/fake-github.js';
import type { FakeGitHub } from '../helpers/fake-github.js';
import { recordFaults } from '../helpers/fault-ledger.js';
import { startGitServer } from '../helpers/git-server.js';
import type { GitServer } from '../helpers/git-server.js';
import { SLURM_CONF, ensureSlurmForTests } from '../helpers/slurm.js';
import { slurmRunArgs, slurmWorkspaces } from '../integration/slurm/slurm-ws.js';

// The webhook check must go through timingSafeEqual: spy on it (the real one still answers).
vi.mock('node:crypto', async (importOriginal) => {
  const actual = await importOriginal<typeof NodeCrypto>();
  return { ...actual, default: actual, timingSafeEqual: vi.fn(actual.timingSafeEqual) };
});

/**
 * Secrets under a full GitOps loop: tokens planted in the environment of every command — a GitHub
 * token (`ghp_…`), HPCFLOW_GIT_TOKEN, an AWS secret key and a webhook secret — through
 * `run --commit-results --push` to a token-protected git server (a stage fails, every stage prints
 * its environment), pushes that fail (a remote URL with the token in it, a server that refuses the
 * token), `report --pr` against the fake GitHub (and one whose token does not match). Then
 * everything is searched for them: the output and error messages of every command, every file of
 * the workspace (run records, logs, caches, outputs), every git object of the clone and of the
 * server's repository, the bodies GitHub received. A stage's environment is explicit: it sees
 * what the pipeline sets (a canary proves the scan sees stage output) and nothing of the runner's.
 */
const OWNER = 'octo-org';
const REPO = 'hpc-repo';
const PR = 7;
const ALNUM = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
const rand = (n: number): string => Array.from({ length: n }, () => ALNUM[randomInt(ALNUM.length)]).join('');

const SECRETS = {
  GITHUB_TOKEN: `ghp_${rand(36)}`,
  HPCFLOW_GIT_TOKEN: `hfgt_${rand(32)}`,
  AWS_SECRET_ACCESS_KEY: rand(40),
  HPCFLOW_WEBHOOK_SECRET: `whsec_${rand(30)}`,
} as const;
const CANARY = `canary-${rand(12)}`;
const GIT_ENV = { GIT_AUTHOR_NAME: 'dev', GIT_AUTHOR_EMAIL: 'dev@example.org', GIT_COMMITTER_NAME: 'dev', GIT_COMMITTER_EMAIL: 'dev@example.org', GIT_CONFIG_NOSYSTEM: '1', GIT_TERMINAL_PROMPT: '0' };

/** Where each needle occurs in the haystacks. */
function findLeaks(haystacks: readonly { where: string; bytes: Buffer }[]): string[] {
  const leaks: string[] = [];
  for (const n of needles()) for (const h of haystacks) if (h.bytes.includes(n.bytes)) leaks.push(`${n.name} in ${h.where}`);
  return leaks;
}

/** Each secret as it could leak: itself, a prefix, and base64 of the ways it goes into Basic auth. */
function needles(): { name: string; bytes: Buffer }[] {
  const out: { name: string; bytes: Buffer }[] = [];
  for (const [name, v] of Object.entries(SECRETS)) {
    out.push({ name, bytes: Buffer.from(v) });
    out.push({ name: `${name} (first 16 characters)`, bytes: Buffer.from(v.slice(0, 16)) });
    for (const basic of [`x-access-token:${v}`, `${v}:`, `${v}:x-oauth-basic`]) out.push({ name: `${name} (base64 in Basic auth)`, bytes: Buffer.from(Buffer.from(basic).toString('base64')) });
  }
  return out;
}

const PIPELINE = `params_file: params.yaml
defaults: { image: hpcflow-test/busybox:1 }
stages:
  solve:
    cmd: ${JSON.stringify('mkdir -p out metrics && env | sort > out/env.txt && env && echo "{\\"time\\": ${n}.5, \\"gflops\\": [5${n}, 5${n}.5, 4${n}]}" > metrics/solve.json')}
    params: [n]
    outs: [out/env.txt]
    metrics: metrics/solve.json
    env: { CANARY: ${CANARY} }
  flaky:
    cmd: env; echo "about to fail" >&2; exit 3
    params: [n]
`;

let tmp: string;
let server: GitServer;
let refusing: GitServer;
let gh: FakeGitHub;
let ghOther: FakeGitHub;

beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'hpcflow-secrets-'));
  server = await startGitServer({ token: SECRETS.HPCFLOW_GIT_TOKEN });
  refusing = await startGitServer({ token: `another-${rand(20)}` });
  gh = await startFakeGitHub({ owner: OWNER, repo: REPO, token: SECRETS.GITHUB_TOKEN });
  ghOther = await startFakeGitHub({ owner: OWNER, repo: REPO });
});
afterAll(async () => {
  await Promise.all([server?.close(), refusing?.close(), gh?.close(), ghOther?.close()]);
  await rm(tmp, { recursive: true, force: true });
});

async function git(dir: string, args: readonly string[], extraEnv: Record<string, string> = {}): Promise<string> {
  return (await execa('git', args, { cwd: dir, env: { ...GIT_ENV, ...extraEnv } })).stdout.trim();
}

/** Every file below `dir`, except `skip` (relative paths). */
async function allFiles(dir: string, skip: ReadonlySet<string>): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (!e.isFile()) continue;
    const abs = join(e.parentPath, e.name);
    if (!skip.has(abs.slice(dir.length + 1))) out.push(abs);
  }
  return out;
}

/** The content of every object of a repository (loose and packed), decompressed. */
async function allGitObjects(dir: string): Promise<Buffer> {
  const r = await execa('git', ['cat-file', '--batch-all-objects', '--batch'], { cwd: dir, encoding: 'buffer', env: GIT_ENV });
  return Buffer.from(r.stdout);
}

describe('planted secrets through the whole loop', () => {
  it('appear in no output, error message, file, git object or GitHub request body', async () => {
    const env: Record<string, string> = { ...GIT_ENV, ...SECRETS };
    const bare = await server.createBare('loop.git', {
      initialFiles: { 'pipelines/p.yaml': PIPELINE, 'params.yaml': 'n: 1\n', '.gitignore': '/.hpcflow\n' },
    });
    await refusing.createBare('loop.git', { initialFiles: { 'README.md': 'x\n' } });
    const ws = join(tmp, 'ws');
    // The clone authenticates once on git's command line (not stored): the token is not in .git/config.
    const basic = Buffer.from(`x-access-token:${SECRETS.HPCFLOW_GIT_TOKEN}`).toString('base64');
    await execa('git', ['-c', `http.extraHeader=Authorization: Basic ${basic}`, 'clone', '--quiet', server.url('loop.git'), ws], { env: GIT_ENV });
    await git(ws, ['config', 'user.name', 'Runner']);
    await git(ws, ['config', 'user.email', 'runner@example.org']);

    const outputs: { what: string; r: CliResult }[] = [];
    const cli = async (what: string, args: string[], extra: Record<string, string> = {}): Promise<CliResult> => {
      const r = await hpcflow(args, ws, { ...env, ...extra });
      outputs.push({ what, r });
      return r;
    };
    const RUN = ['run', '--commit-results', '--push', '--on-failure', 'continue', '--json'];

    // 1. The base: a run on main, one stage failing; results committed and pushed with the token.
    const base = await cli('run on main', RUN);
    expect(base.code, base.stderr).toBe(1);
    expect(base.stdout).toMatch(/results: pushed [0-9a-f]{12} to origin/);
    const baseInput = await git(ws, ['rev-parse', 'HEAD^']);
    const flaky = events(base.stdout).find((e) => e.type === 'stage-end' && e.stage === 'p/flaky') as { outcome: { status: string; error: string } };
    expect(flaky.outcome).toMatchObject({ status: 'failed', error: 'exit code 3' });
    // The stages printed their environment: the pipeline's variable is there, the runner's are not.
    const stageLines = events(base.stdout).filter((e) => e.type === 'stage-log').map((e) => String(e.line));
    expect(stageLines).toContain(`CANARY=${CANARY}`);
    expect(stageLines.some((l) => l.startsWith('HPCFLOW_STAGE='))).toBe(true);
    for (const name of Object.keys(SECRETS)) expect(stageLines.filter((l) => l.startsWith(`${name}=`)), name).toEqual([]);
    expect(await readFile(join(ws, 'out/env.txt'), 'utf8')).toContain(`CANARY=${CANARY}`);

    // 2. The head: a pull request branch with another parameter, run and pushed the same way.
    await git(ws, ['checkout', '-q', '-b', 'pr']);
    await execa('sh', ['-c', 'echo "n: 2" > params.yaml'], { cwd: ws });
    await git(ws, ['commit', '-q', '-am', 'n = 2']);
    const headInput = await git(ws, ['rev-parse', 'HEAD']);
    const head = await cli('run on the pr branch', RUN);
    expect(head.code, head.stderr).toBe(1);
    expect(head.stdout).toMatch(/results: pushed [0-9a-f]{12} to origin/);
    expect(await git(bare, ['rev-parse', 'pr'])).toBe(await git(ws, ['rev-parse', 'pr']));

    // 3. Pushes that fail: a remote URL carrying the token (to a repository that does not exist),
    //    and a server that refuses the token.
    await git(ws, ['remote', 'add', 'withcreds', server.url('missing.git').replace('http://', `http://x-access-token:${SECRETS.HPCFLOW_GIT_TOKEN}@`)]);
    await git(ws, ['remote', 'add', 'refused', refusing.url('loop.git')]);
    for (const remote of ['withcreds', 'refused']) {
      const r = await cli(`push to ${remote}`, [...RUN.filter((a) => a !== '--json'), '--force', '--remote', remote]);
      expect(r.code, r.stdout + r.stderr).not.toBe(0);
      expect(r.stderr).toMatch(/pushing the results of run \S+ to \S+ .*failed/);
      if (remote === 'refused') expect(r.stderr).toContain('authentication failed (HTTP 401): the token in HPCFLOW_GIT_TOKEN was refused');
    }

    // 4. The report on the pull request, a check run with it, and one against a GitHub that
    //    does not know the token.
    gh.state.addPullRequest({ number: PR, headSha: headInput, headRef: 'pr', baseSha: baseInput, baseRef: 'main' });
    const REPORT = ['report', '--pr', String(PR), '--repo', `${OWNER}/${REPO}`, '--head', 'pr', '--base', 'main', '--pipeline', 'p', '--check-run'];
    const report = await cli('report', REPORT, { GITHUB_API_URL: gh.url });
    expect(report.code, report.stderr).toBe(0);
    expect(report.stdout).toMatch(/comment created/);
    expect(gh.state.commentsOf(PR)).toHaveLength(1);
    expect(gh.requests().some((r) => r.headers.authorization?.endsWith(SECRETS.GITHUB_TOKEN))).toBe(true); // it was used
    ghOther.state.addPullRequest({ number: PR, headSha: headInput, headRef: 'pr', baseSha: baseInput, baseRef: 'main' });
    const refusedReport = await cli('report with a refused token', REPORT, { GITHUB_API_URL: ghOther.url });
    expect(refusedReport.code).not.toBe(0);
    expect(refusedReport.stderr).toContain('GitHub rejected the token (401');
    const dry = await cli('report --dry-run', [...REPORT, '--dry-run'], { GITHUB_API_URL: gh.url });
    expect(dry.code, dry.stderr).toBe(0);

    // 5. Search everything.
    const haystacks: { where: string; bytes: Buffer }[] = [];
    for (const { what, r } of outputs) {
      haystacks.push({ where: `stdout of ${what}`, bytes: Buffer.from(r.stdout) });
      haystacks.push({ where: `stderr of ${what}`, bytes: Buffer.from(r.stderr) });
    }
    // Every file of the workspace — run records, .hpcflow/ (runs, caches, stored outputs, temp
    // files), outputs, git metadata — except the config where this test itself put a token in a URL.
    const files = await allFiles(ws, new Set(['.git/config']));
    expect((await readFile(join(ws, '.git/config'))).includes(SECRETS.HPCFLOW_GIT_TOKEN), 'control: the search finds a planted token').toBe(true);
    expect(files.some((f) => f.includes('/.hpcflow/runs/'))).toBe(true);
    expect(files.some((f) => f.includes('/.hpcflow/cache/objects/'))).toBe(true);
    expect(existsSync(join(ws, 'runs'))).toBe(true);
    for (const f of files) haystacks.push({ where: f.slice(ws.length + 1), bytes: await readFile(f) });
    haystacks.push({ where: 'git objects of the clone', bytes: await allGitObjects(ws) });
    haystacks.push({ where: 'git objects of the server repository', bytes: await allGitObjects(bare) });
    for (const f of await allFiles(bare, new Set())) if (!f.includes('/objects/')) haystacks.push({ where: `server repository ${f.slice(bare.length + 1)}`, bytes: await readFile(f) });
    for (const c of [...gh.state.comments, ...ghOther.state.comments]) haystacks.push({ where: `comment ${c.id}`, bytes: Buffer.from(c.body) });
    for (const s of gh.state.statuses) haystacks.push({ where: `status ${s.id}`, bytes: Buffer.from(JSON.stringify(s)) });
    for (const c of gh.state.checkRuns.values()) haystacks.push({ where: `check run ${c.id}`, bytes: Buffer.from(JSON.stringify(c.fields)) });
    for (const r of [...gh.requests(), ...ghOther.requests()]) {
      haystacks.push({ where: `GitHub request ${r.method} ${r.path}`, bytes: Buffer.from(JSON.stringify({ path: r.path, query: r.query, body: r.body })) });
    }
    for (const s of [server, refusing]) haystacks.push({ where: 'git server request log', bytes: Buffer.from(JSON.stringify(s.requests())) });
    // The scan sees what stages printed and stored: the canary is there.
    expect(haystacks.some((h) => h.where.startsWith('stdout of run') && h.bytes.includes(CANARY))).toBe(true);
    expect(haystacks.some((h) => h.where === 'git objects of the server repository' && h.bytes.includes(CANARY))).toBe(true);
    expect(haystacks.some((h) => h.where.includes('.hpcflow/cache/objects/') && h.bytes.includes(CANARY))).toBe(true);

    const leaks = findLeaks(haystacks);
    const scanned = haystacks.reduce((s, h) => s + h.bytes.length, 0);
    console.log(`secrets: ${Object.keys(SECRETS).length} planted, ${haystacks.length} places (${(scanned / 1e6).toFixed(1)} MB) searched, ${leaks.length} leaks`);
    expect(leaks).toEqual([]);
    recordFaults({ scenario: 'planted tokens through run/push/report', injected: Object.keys(SECRETS).length, recovered: 1, lost: leaks.length });
  }, 300_000);
});

describe('planted secrets and the Slurm executor', () => {
  const spaces = slurmWorkspaces();
  beforeAll(async () => {
    await ensureSlurmForTests();
  }, 600_000);
  afterAll(() => spaces.cleanup());

  it('a job sees none of the runner\'s environment; job scripts and logs under .hpcflow/ hold no secret', async () => {
    const ws = await spaces.make(`stages:
  show:
    image: hpcflow-test/busybox:1
    cmd: mkdir -p out && env | sort > out/env.txt && env
    env: { CANARY: ${CANARY} }
    outs: [out/env.txt]
  fail:
    image: hpcflow-test/busybox:1
    cmd: env; exit 4
`);
    const r = await hpcflow(slurmRunArgs(ws, '--on-failure', 'continue'), ws, { SLURM_CONF, ...SECRETS });
    expect(r.code, r.stdout + r.stderr).toBe(1);
    const ends = Object.fromEntries(events(r.stdout).filter((e) => e.type === 'stage-end').map((e) => [e.stage, (e.outcome as { status: string }).status]));
    expect(ends).toEqual({ 'p/show': 'ran', 'p/fail': 'failed' });
    const env = await readFile(join(ws, 'out/env.txt'), 'utf8');
    expect(env).toContain(`CANARY=${CANARY}`);
    for (const name of Object.keys(SECRETS)) expect(env, name).not.toContain(`${name}=`);
    const files = await allFiles(ws, new Set());
    expect(files.some((f) => f.includes('/.hpcflow/slurm/'))).toBe(true); // job scripts and logs were searched
    const haystacks = [
      { where: 'stdout', bytes: Buffer.from(r.stdout) },
      { where: 'stderr', bytes: Buffer.from(r.stderr) },
      ...(await Promise.all(files.map(async (f) => ({ where: f.slice(ws.length + 1), bytes: await readFile(f) })))),
    ];
    expect(haystacks.some((h) => h.where.includes('.hpcflow/slurm/') && h.bytes.includes(CANARY))).toBe(true);
    const leaks = findLeaks(haystacks);
    expect(leaks).toEqual([]);
    recordFaults({ scenario: 'planted tokens through a Slurm run', injected: Object.keys(SECRETS).length, recovered: 1, lost: leaks.length });
  }, 300_000);
});

describe('webhook signatures', () => {
  it('are compared in constant time: every well-formed signature, right or wrong anywhere, goes through one timingSafeEqual of the full digests', () => {
    const spy = vi.mocked(timingSafeEqual);
    const secret = SECRETS.HPCFLOW_WEBHOOK_SECRET;
    const body = Buffer.from(JSON.stringify({ ref: 'refs/heads/main', nonce: randomBytes(8).toString('hex') }));
    const good = signBody(secret, body);
    const hex = good.slice('sha256='.length);
    const flip = (i: number): string => `sha256=${hex.slice(0, i)}${hex[i] === '0' ? '1' : '0'}${hex.slice(i + 1)}`;
    const cases: [string, boolean][] = [
      [good, true],
      [good.toUpperCase().replace('SHA256=', 'sha256='), true],
      [flip(0), false],
      [flip(31), false],
      [flip(63), false],
      [`sha256=${'0'.repeat(64)}`, false],
      [signBody(`${secret}x`, body), false],
    ];
    for (const [header, expected] of cases) {
      spy.mockClear();
      expect(verifySignature(secret, body, header), header).toBe(expected);
      expect(spy, header).toHaveBeenCalledTimes(1);
      const [a, b] = spy.mock.calls[0] as [Buffer, Buffer];
      expect([a.length, b.length]).toEqual([32, 32]);
    }
    // Malformed headers are refused on their form alone (nothing secret-dependent is compared).
    for (const header of [undefined, '', 'sha256=abc', `sha1=${'0'.repeat(40)}`, `${good}0`]) {
      spy.mockClear();
      expect(verifySignature(secret, body, header)).toBe(false);
      expect(spy).not.toHaveBeenCalled();
    }
    expect(verifySignature('', body, good)).toBe(false); // no secret: nothing verifies
  });
});
