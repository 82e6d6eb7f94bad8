import { execa } from 'execa';
import type { ResultPromise } from 'execa';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { cp, mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openRemote } from '../../runner/datasets/remotes/index.js';
import { readVersionFile } from '../../runner/datasets/version-file.js';
import { hashFile } from '../../runner/fingerprint/hash-file.js';
import { BIN, REPO_ROOT, hpcflow, outcomes } from '../helpers/cli.js';
import type { CliResult } from '../helpers/cli.js';
import { recordFaults } from '../helpers/fault-ledger.js';
import { S3RVER_CREDENTIALS, startS3Server } from '../helpers/s3-server.js';
import type { S3TestServer } from '../helpers/s3-server.js';

/**
 * Concurrency: runs contending for one workspace (the lock, through the real CLI and in a stampede
 * of processes on the lock module itself), two runners in different workspaces sharing one cache
 * directory, and concurrent `dataset push`es to one remote (filesystem and S3). After every round
 * nothing may be corrupt: every object hashes to its name, every run-cache entry parses, and no
 * temp file is left behind.
 */
const temps: string[] = [];
const tempDir = async (prefix: string): Promise<string> => {
  const d = await mkdtemp(join(tmpdir(), `hpcflow-conc-${prefix}-`));
  temps.push(d);
  return d;
};
afterAll(async () => {
  for (const d of temps) await rm(d, { recursive: true, force: true });
});

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function until<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 60_000): Promise<T> {
  const t0 = Date.now();
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

/** A pid that is certainly not running (a process that has exited). */
function deadPid(): number {
  const r = spawnSync('true');
  return r.pid as number;
}

const spawnRun = (args: readonly string[], cwd: string): ResultPromise<{ cwd: string; reject: false; env: { CI: string } }> =>
  execa('node', [BIN, ...args], { cwd, reject: false, env: { CI: '1' } });

async function lockHolder(file: string): Promise<number | undefined> {
  try {
    return (JSON.parse(await readFile(file, 'utf8')) as { pid: number }).pid;
  } catch {
    return undefined;
  }
}

async function containersOf(pid: number): Promise<string[]> {
  const r = await execa('docker', ['ps', '-aq', '--filter', `label=hpcflow.owner-pid=${pid}`, '--filter', `label=hpcflow.owner-host=${hostname()}`]);
  return r.stdout.split('\n').filter(Boolean);
}

/** Every file below `dir` (relative paths), sorted. */
async function filesBelow(dir: string): Promise<string[]> {
  if (!existsSync(dir)) return [];
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (e.isFile()) out.push(join(e.parentPath, e.name).slice(dir.length + 1));
  }
  return out.sort();
}

/**
 * A content store or filesystem remote: every object under objects/ hashes to its name, nothing
 * else (temp files, dotfiles) is left in objects/, runs/ or tmp/, and every run-cache entry parses
 * and names its own fingerprint. Returns the counts; `corrupt` lists the bad objects.
 */
async function checkStore(root: string): Promise<{ objects: number; entries: number; corrupt: string[]; strays: string[] }> {
  const corrupt: string[] = [];
  const strays: string[] = [];
  let objects = 0;
  for (const rel of await filesBelow(join(root, 'objects'))) {
    const m = /^([0-9a-f]{2})\/([0-9a-f]{62})$/.exec(rel);
    if (m === null) {
      strays.push(`objects/${rel}`);
      continue;
    }
    objects += 1;
    const { hash } = await hashFile(join(root, 'objects', rel));
    if (hash !== `${m[1]}${m[2]}`) corrupt.push(`${m[1]}${m[2]}`);
  }
  let entries = 0;
  for (const rel of await filesBelow(join(root, 'runs'))) {
    const m = /^([0-9a-f]{2})\/([0-9a-f]+)\.json$/.exec(rel);
    if (m === null) {
      strays.push(`runs/${rel}`);
      continue;
    }
    entries += 1;
    const e = JSON.parse(await readFile(join(root, 'runs', rel), 'utf8')) as { fingerprint: string };
    expect(e.fingerprint, rel).toBe(`${m[1]}${m[2]}`);
  }
  for (const rel of await filesBelow(join(root, 'tmp'))) strays.push(`tmp/${rel}`);
  return { objects, entries, corrupt, strays };
}

// ---------------------------------------------------------------------------------------------
// The workspace lock

describe('the workspace lock', () => {
  const SLOW = (secs: number): string => `stages:\n  slow:\n    image: hpcflow-test/busybox:1\n    cmd: sleep ${secs}; echo done > slow.txt\n    outs: [slow.txt]\n`;

  it('a second run (and commit) on a busy workspace fails at once naming the holder; the lock of a SIGKILLed runner is taken over', async () => {
    const ws = await tempDir('lock');
    await mkdir(join(ws, 'pipelines'));
    await writeFile(join(ws, 'pipelines/l.yaml'), SLOW(4));
    const lockFile = join(ws, '.hpcflow/tmp/run.lock');

    const first = spawnRun(['run', '--force', '--json'], ws);
    await until('the first run to take the lock', async () => ((await lockHolder(lockFile)) === first.pid ? true : undefined));
    const second = await hpcflow(['run'], ws);
    const commit = await hpcflow(['commit'], ws);
    for (const r of [second, commit]) {
      expect(r.code, r.stderr).toBe(5);
      expect(r.stderr).toContain(`another hpcflow run (pid ${first.pid} on ${hostname()}, since `);
      expect(r.stderr).toContain('hint: wait for it to finish');
    }
    const done = await first;
    expect(done.exitCode, done.stderr).toBe(0);
    expect(outcomes(done.stdout)).toEqual({ 'l/slow': 'ran' });
    expect(existsSync(lockFile)).toBe(false);

    // A runner killed outright leaves its lock (and its container) behind.
    const killed = spawnRun(['run', '--force', '--json'], ws);
    const pid = killed.pid as number;
    await until('the run to take the lock', async () => ((await lockHolder(lockFile)) === pid ? true : undefined));
    await until('its stage container', async () => ((await containersOf(pid)).length > 0 ? true : undefined));
    killed.kill('SIGKILL');
    expect((await killed).signal).toBe('SIGKILL');
    expect(await lockHolder(lockFile)).toBe(pid);

    const next = await hpcflow(['run', '--json'], ws);
    expect(next.code, next.stderr).toBe(0);
    // What the killed run had started is not trusted: the output comes back from the cache (or is
    // still intact), never from running again.
    expect(['up-to-date', 'restored']).toContain(outcomes(next.stdout)['l/slow']);
    expect(existsSync(lockFile)).toBe(false);
    expect(await containersOf(pid)).toEqual([]); // the orphan was removed by the run that took over
    expect((await readdir(join(ws, '.hpcflow/tmp'))).filter((n) => n.startsWith('run.lock'))).toEqual([]);
    recordFaults({ scenario: 'run/commit on a busy workspace; SIGKILLed lock holder', injected: 3, recovered: 1, lost: 0 });
  }, 180_000);

  it('several runs started together, with and without a stale lock: exactly one runs, the others name it', async () => {
    const ws = await tempDir('stampede-cli');
    await mkdir(join(ws, 'pipelines'));
    await writeFile(join(ws, 'pipelines/l.yaml'), SLOW(6));
    const lockFile = join(ws, '.hpcflow/tmp/run.lock');
    await mkdir(join(ws, '.hpcflow/tmp'), { recursive: true });
    const N = 4;
    let contenders = 0;
    for (const stale of [true, false]) {
      if (stale) await writeFile(lockFile, JSON.stringify({ pid: deadPid(), host: hostname(), since: 'earlier' }));
      const runs = Array.from({ length: N }, () => spawnRun(['run', '--force', '--json'], ws));
      contenders += N;
      const results = await Promise.all(runs);
      const winners = results.filter((r) => r.exitCode === 0);
      expect(winners.length, results.map((r) => `${r.exitCode}: ${r.stderr}`).join('\n')).toBe(1);
      const winner = runs[results.indexOf(winners[0] as (typeof results)[number])]?.pid as number;
      for (const r of results.filter((x) => x.exitCode !== 0)) {
        expect(r.exitCode, r.stderr).toBe(5);
        expect(r.stderr).toContain(`(pid ${winner} on ${hostname()}`);
      }
      expect(existsSync(lockFile)).toBe(false);
    }
    recordFaults({ scenario: 'runs started together on one workspace', injected: contenders, recovered: 2, lost: 0 });
  }, 180_000);

  it('a stampede on the lock module: many processes, many rounds, half of them over a stale lock — never two holders', async () => {
    const dir = await tempDir('stampede');
    const lockFile = join(dir, 'tmp/run.lock');
    await mkdir(join(dir, 'tmp'));
    const log = join(dir, 'log.jsonl');
    const child = join(dir, 'child.mts');
    const lockModule = pathToFileURL(join(REPO_ROOT, 'runner/engine/workspace-lock.ts')).href;
    // Each child waits for the same instants (spinning the last milliseconds, so that they collide
    // within microseconds), tries to take the lock, holds it for a while, and logs when.
    await writeFile(
      child,
      `import { appendFileSync } from 'node:fs';
import { acquireWorkspaceLock } from ${JSON.stringify(lockModule)};
const [file, log, t0s, roundsS, gapS, holdS] = process.argv.slice(2);
const now = () => performance.timeOrigin + performance.now();
const t0 = Number(t0s), rounds = Number(roundsS), gap = Number(gapS), hold = Number(holdS);
for (let r = 0; r < rounds; r++) {
  const at = t0 + r * gap;
  if (at - now() > 4) await new Promise((res) => setTimeout(res, at - now() - 4));
  while (now() < at) { /* spin */ }
  let rec;
  try {
    const release = acquireWorkspaceLock(file);
    const s = now();
    await new Promise((res) => setTimeout(res, hold));
    const e = now();
    release();
    rec = { r, pid: process.pid, won: true, s, e };
  } catch (err) {
    rec = { r, pid: process.pid, won: false, code: err.code, message: err.message };
  }
  appendFileSync(log, JSON.stringify(rec) + '\\n');
}
`,
    );
    const K = 6;
    const ROUNDS = 40;
    const GAP = 120;
    const HOLD = 25;
    const t0 = Date.now() + 8000; // time for every child to start (tsx compiles the module)
    const kids = Array.from({ length: K }, () =>
      spawn('node', ['--import', 'tsx', child, lockFile, log, String(t0), String(ROUNDS), String(GAP), String(HOLD)], { cwd: REPO_ROOT, stdio: ['ignore', 'ignore', 'pipe'] }),
    );
    const stderr: string[] = [];
    for (const k of kids) k.stderr?.on('data', (b: Buffer) => stderr.push(b.toString()));
    // Before every odd round, a stale lock of a dead process (unless a holder is still there).
    const dead = deadPid();
    let staleInjected = 0;
    const timers = Array.from({ length: ROUNDS / 2 }, (_, i) => {
      const r = 2 * i + 1;
      return setTimeout(() => {
        writeFile(lockFile, JSON.stringify({ pid: dead, host: hostname(), since: 'earlier' }), { flag: 'wx' }).then(
          () => void (staleInjected += 1),
          () => undefined,
        );
      }, t0 + r * GAP - GAP / 2 - Date.now());
    });
    const codes = await Promise.all(kids.map((k) => new Promise<number | null>((res) => k.on('exit', res))));
    for (const t of timers) clearTimeout(t);
    expect(codes, stderr.join('')).toEqual(Array.from({ length: K }, () => 0));

    type Rec = { r: number; pid: number; won: boolean; s: number; e: number; code?: string; message?: string };
    const recs = (await readFile(log, 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as Rec);
    expect(recs).toHaveLength(K * ROUNDS);
    const wins = recs.filter((x) => x.won).sort((a, b) => a.s - b.s);
    const overlaps = wins.filter((w, i) => i > 0 && w.s < (wins[i - 1] as Rec).e);
    expect(overlaps, 'two processes held the lock at the same time').toEqual([]);
    expect(recs.filter((x) => !x.won && x.code !== 'HPCFLOW_WORKSPACE_LOCKED')).toEqual([]);
    // Every round had its winner (a late child may win a round on its own instead: still one at a time).
    expect(wins.length).toBeGreaterThanOrEqual(ROUNDS - 2);
    expect(staleInjected).toBeGreaterThanOrEqual(ROUNDS / 4);
    expect(existsSync(lockFile)).toBe(false);
    expect(await readdir(join(dir, 'tmp'))).toEqual([]); // no guard or temp file left
    console.log(`lock stampede: ${K} processes × ${ROUNDS} rounds, ${staleInjected} stale locks, ${wins.length} acquisitions, 0 overlaps`);
    recordFaults({ scenario: 'lock stampede (processes × rounds, stale locks)', injected: K * ROUNDS + staleInjected, recovered: wins.length, lost: overlaps.length });
  }, 120_000);
});

// ---------------------------------------------------------------------------------------------
// One cache directory, two workspaces

describe('two workspaces sharing one cache directory', () => {
  const q = JSON.stringify;
  const PIPELINE = `params_file: params.yaml
defaults: { image: hpcflow-test/busybox:1 }
stages:
  a:
    cmd: ${q('mkdir -p out && yes "a ${round}" | head -c 3000000 > out/a.bin')}
    params: [round]
    outs: [out/a.bin]
  b:
    cmd: ${q('mkdir -p out && yes "b ${round}" | head -c 5000000 > out/b.bin')}
    params: [round]
    outs: [out/b.bin]
  tree:
    cmd: ${q('mkdir -p out/tree && for i in $(seq 1 40); do echo "${round} $i" > out/tree/f$i.txt; done')}
    params: [round]
    outs: [out/tree]
  const:
    cmd: ${q('mkdir -p out && echo constant > out/const.txt')}
    outs: [out/const.txt]
  join:
    cmd: ${q('cat out/a.bin out/b.bin | head -c 1000000 > out/join.bin')}
    deps: [out/a.bin, out/b.bin]
    outs: [out/join.bin]
`;
  const STAGES = ['c/a', 'c/b', 'c/const', 'c/join', 'c/tree'];

  it('runs of the same stages at the same time, round after round, never corrupt it; the other workspace restores from it', async () => {
    const base = await tempDir('shared');
    const cache = join(base, 'cache');
    const wss = [join(base, 'ws1'), join(base, 'ws2')];
    for (const ws of wss) {
      await mkdir(join(ws, 'pipelines'), { recursive: true });
      await writeFile(join(ws, 'pipelines/c.yaml'), PIPELINE);
    }
    const ROUNDS = 6;
    let runs = 0;
    let last = { objects: 0, entries: 0 };
    for (let round = 0; round < ROUNDS; round++) {
      for (const ws of wss) await writeFile(join(ws, 'params.yaml'), `round: ${round}\n`);
      // Every stage runs in both workspaces at once; -j differs so that they interleave differently.
      const results = await Promise.all(wss.map((ws, i) => spawnRun(['run', '--force', '--json', '-j', String(2 + i), '--cache-dir', cache], ws)));
      for (const r of results) {
        expect(r.exitCode, r.stderr).toBe(0);
        expect(Object.keys(outcomes(r.stdout)).sort()).toEqual(STAGES);
        runs += 1;
      }
      const check = await checkStore(cache);
      expect(check.corrupt).toEqual([]);
      expect(check.strays).toEqual([]);
      expect(check.objects).toBeGreaterThan(last.objects); // each round stores new content
      last = check;
    }
    // Both workspaces produced the same bytes; the first one gets them back from the shared cache.
    await rm(join(wss[0] as string, 'out'), { recursive: true, force: true });
    const restore = await hpcflow(['run', '--json', '--cache-dir', cache], wss[0] as string);
    expect(restore.code, restore.stderr).toBe(0);
    expect(new Set(Object.values(outcomes(restore.stdout)))).toEqual(new Set(['restored']));
    const files = await filesBelow(join(wss[1] as string, 'out'));
    expect(files.length).toBe(44);
    for (const f of files) {
      expect((await hashFile(join(wss[0] as string, 'out', f))).hash, f).toBe((await hashFile(join(wss[1] as string, 'out', f))).hash);
    }
    console.log(`shared cache: ${ROUNDS} rounds × 2 concurrent runners, ${last.objects} objects and ${last.entries} run-cache entries intact`);
    recordFaults({ scenario: 'two workspaces, one cache, concurrent runs', injected: ROUNDS * 2, recovered: runs, lost: 0 });
  }, 300_000);
});

// ---------------------------------------------------------------------------------------------
// Concurrent pushes to one dataset remote

/** Round `r`'s files: one large file new each round, one large constant, small ones that alternate, one new name. */
async function writeDataset(dir: string, r: number): Promise<void> {
  await rm(dir, { recursive: true, force: true });
  await mkdir(join(dir, 's'), { recursive: true });
  const big = Buffer.alloc(4 * 1024 * 1024);
  for (let i = 0; i < big.length; i += 4) big.writeUInt32LE((i * 2654435761 + r * 40503) >>> 0, i);
  await writeFile(join(dir, 'big.bin'), big);
  await writeFile(join(dir, 'constant.bin'), Buffer.alloc(2 * 1024 * 1024, 7));
  for (let i = 0; i < 60; i++) await writeFile(join(dir, `s/f${i}.txt`), `${r % 2} ${i}\n`);
  await writeFile(join(dir, `round-${r}.txt`), `${r}\n`);
}

async function pushRounds(opts: {
  readonly label: string;
  readonly remoteYaml: string;
  readonly env: Record<string, string>;
  readonly rounds: number;
  /** Checks the remote after each round; `hashes` are the objects of the version just pushed. */
  readonly check: (hashes: readonly string[]) => Promise<void>;
}): Promise<{ pushes: number; workspaces: string[] }> {
  const base = await tempDir(opts.label);
  const wss = [join(base, 'a'), join(base, 'b')];
  for (const ws of wss) {
    await mkdir(join(ws, 'pipelines'), { recursive: true });
    await writeFile(join(ws, 'hpcflow.yaml'), opts.remoteYaml);
  }
  const ok = async (args: string[], ws: string): Promise<string> => {
    const r: CliResult = await hpcflow(args, ws, opts.env);
    expect(r.code, `${args.join(' ')}\n${r.stdout}\n${r.stderr}`).toBe(0);
    return r.stdout;
  };
  let pushes = 0;
  for (let r = 0; r < opts.rounds; r++) {
    const versions: string[] = [];
    for (const ws of wss) {
      await writeDataset(join(ws, 'data/ds'), r);
      const out = JSON.parse(await ok(r === 0 ? ['dataset', 'add', 'data/ds', '--no-git', '--json'] : ['dataset', 'commit', 'ds', '--no-git', '--json'], ws)) as { version: string } | { version: string }[];
      versions.push(Array.isArray(out) ? (out[0] as { version: string }).version : out.version);
    }
    expect(versions[0]).toBe(versions[1]); // same files, same objects: the pushes race for them
    // Three pushes at once: both workspaces, and the first one twice.
    const results = await Promise.all([wss[0], wss[1], wss[0]].map((ws) => execa('node', [BIN, 'dataset', 'push', '--json'], { cwd: ws as string, reject: false, env: { ...opts.env, CI: '1' } })));
    for (const res of results) {
      expect(res.exitCode, res.stderr).toBe(0);
      pushes += 1;
    }
    const v = readVersionFile(wss[0] as string, 'ds');
    expect(v?.version).toBe(versions[0]);
    await opts.check([...new Set([v?.version as string, ...(v?.entries ?? []).map((e) => e.hash)])]);
  }
  return { pushes, workspaces: wss };
}

describe('concurrent dataset pushes to one remote', () => {
  it('filesystem remote: three pushes at once, round after round; every object intact, nothing left in tmp/, a fresh clone pulls and verifies', async () => {
    const remote = join(await tempDir('fsremote'), 'store');
    const ROUNDS = 6;
    const { pushes, workspaces } = await pushRounds({
      label: 'fspush',
      remoteYaml: `remotes:\n  shared: { url: ${JSON.stringify(remote)} }\n`,
      env: {},
      rounds: ROUNDS,
      check: async (hashes) => {
        const c = await checkStore(remote);
        expect(c.corrupt).toEqual([]);
        expect(c.strays).toEqual([]);
        for (const h of hashes) expect(existsSync(join(remote, 'objects', h.slice(0, 2), h.slice(2))), h).toBe(true);
      },
    });
    const final = await checkStore(remote);
    // A third workspace with only the version file gets the same files from the remote.
    const c = join(await tempDir('fsclone'), 'c');
    await mkdir(join(c, 'pipelines'), { recursive: true });
    await cp(join(workspaces[0] as string, 'hpcflow.yaml'), join(c, 'hpcflow.yaml'));
    await cp(join(workspaces[0] as string, 'datasets'), join(c, 'datasets'), { recursive: true });
    const pull = await hpcflow(['dataset', 'pull'], c);
    expect(pull.code, pull.stderr).toBe(0);
    const verify = await hpcflow(['dataset', 'verify', '--store'], c);
    expect(verify.code, verify.stdout).toBe(0);
    for (const f of await filesBelow(join(workspaces[0] as string, 'data/ds'))) {
      expect((await hashFile(join(c, 'data/ds', f))).hash, f).toBe((await hashFile(join(workspaces[0] as string, 'data/ds', f))).hash);
    }
    console.log(`fs remote: ${ROUNDS} rounds × 3 concurrent pushes, ${final.objects} objects intact`);
    recordFaults({ scenario: 'concurrent dataset pushes (fs remote)', injected: pushes, recovered: 1, lost: final.corrupt.length });
  }, 300_000);

  describe('S3 remote', () => {
    let server: S3TestServer;
    beforeAll(async () => {
      server = await startS3Server();
    });
    afterAll(async () => {
      await server?.stop();
    });

    it('three pushes at once (multipart uploads of the same objects), round after round; every object downloads and verifies', async () => {
      const env = {
        AWS_ACCESS_KEY_ID: S3RVER_CREDENTIALS.accessKeyId,
        AWS_SECRET_ACCESS_KEY: S3RVER_CREDENTIALS.secretAccessKey,
        AWS_REGION: 'us-east-1',
        AWS_EC2_METADATA_DISABLED: 'true',
        AWS_CONFIG_FILE: join(tmpdir(), 'hpcflow-no-aws-config'),
        AWS_SHARED_CREDENTIALS_FILE: join(tmpdir(), 'hpcflow-no-aws-credentials'),
      };
      const url = `s3://${server.bucket}/conc`;
      // Files over 1 MiB go up in 256 KiB parts: three pushes upload the same large objects at once.
      const remoteYaml = `remotes:\n  bucket: { url: ${url}, endpoint: ${JSON.stringify(server.endpoint)}, multipart_threshold: 1048576, part_size: 262144 }\n`;
      const saved = { ...process.env };
      Object.assign(process.env, env);
      const work = await tempDir('s3get');
      const remote = await openRemote('bucket', { url, endpoint: server.endpoint }, work);
      let verified = 0;
      try {
        const ROUNDS = 3;
        const { pushes } = await pushRounds({
          label: 's3push',
          remoteYaml,
          env,
          rounds: ROUNDS,
          check: async (hashes) => {
            // get() checks the BLAKE3 of what arrives: a damaged object is an error naming it.
            for (const h of hashes) {
              const dest = join(work, `${h}.got`);
              await remote.get(h, dest);
              await rm(dest);
              verified += 1;
            }
          },
        });
        console.log(`s3 remote: ${ROUNDS} rounds × 3 concurrent pushes, ${verified} object downloads verified`);
        recordFaults({ scenario: 'concurrent dataset pushes (S3 remote)', injected: pushes, recovered: ROUNDS, lost: 0 });
      } finally {
        await remote.close();
        for (const k of Object.keys(env)) {
          if (saved[k] === undefined) delete process.env[k];
          else process.env[k] = saved[k];
        }
      }
    }, 300_000);
  });
});
