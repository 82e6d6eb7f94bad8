/**
 * The Docker engine goes away in the middle of a stage: stopped (SIGTERM, as a restart does) or
 * crashed (SIGKILL), then started again. The runner must say so for the stage (an engine error,
 * not a stack trace, not a silent exit), keep what finished before (cache and lockfile intact),
 * and the next run must complete and leave no container behind.
 *
 * The engine that fails is a private dockerd started by this file (its own data and exec roots,
 * socket, pid file and containerd; no bridge, no iptables), reached through DOCKER_HOST: the
 * machine's engine, which other tests use, is never touched.
 */
import { execa } from 'execa';
import type { ResultPromise } from 'execa';
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync, readdirSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BIN, events, hpcflow, outcomes } from '../helpers/cli.js';
import { TEST_IMAGE } from '../helpers/docker.js';
import { recordFaults } from '../helpers/fault-ledger.js';
import { STACK_TRACE, checkNothingCorrupt, stageLog, waitForEvent, waitUntil } from './fault-helpers.js';

/** A dockerd of this test's own, on a unix socket under a temp dir. */
class PrivateEngine {
  readonly dir: string;
  readonly sock: string;
  readonly env: Record<string, string>;
  private proc: ChildProcess | null = null;
  private exited: Promise<void> = Promise.resolve();

  constructor(dir: string) {
    this.dir = dir;
    this.sock = join(dir, 'docker.sock');
    this.env = { DOCKER_HOST: `unix://${this.sock}` };
  }

  async start(): Promise<void> {
    // A pid file survives a SIGKILL; a containerd the killed daemon started may still be exiting.
    await rm(join(this.dir, 'docker.pid'), { force: true });
    await waitUntil('the old containerd to exit', async () => !alive(pidIn(join(this.dir, 'exec/containerd/containerd.pid'))), 20_000);
    const log = openSync(join(this.dir, 'dockerd.log'), 'a');
    const args = [
      `--config-file=${join(this.dir, 'daemon.json')}`,
      `--data-root=${join(this.dir, 'data')}`,
      `--exec-root=${join(this.dir, 'exec')}`,
      `--pidfile=${join(this.dir, 'docker.pid')}`,
      `--host=unix://${this.sock}`,
      '--bridge=none',
      '--iptables=false',
      '--ip-masq=false',
      '--userland-proxy=false',
      '--shutdown-timeout=2',
    ];
    const p = spawn('dockerd', args, { detached: true, stdio: ['ignore', log, log] });
    closeSync(log);
    let spawnError: Error | null = null;
    p.once('error', (e) => (spawnError = e));
    this.proc = p;
    this.exited = new Promise((resolve) => {
      p.once('exit', () => resolve());
      p.once('error', () => resolve());
    });
    await waitUntil('the private dockerd to answer', async () => {
      if (spawnError !== null) throw new Error(`cannot start dockerd (Debian: apt-get install docker.io): ${(spawnError as Error).message}`);
      if (p.exitCode !== null) throw new Error(`dockerd exited with ${p.exitCode}:\n${this.logTail()}`);
      return ping(this.sock);
    }, 60_000);
  }

  /** Sends `signal` to the daemon and waits until it has exited. */
  async stop(signal: 'SIGTERM' | 'SIGKILL'): Promise<void> {
    const p = this.proc;
    if (p === null || p.exitCode !== null || p.signalCode !== null) return;
    p.kill(signal);
    await this.exited;
    this.proc = null;
  }

  async docker(args: readonly string[]): Promise<string> {
    return (await execa('docker', args, { env: this.env })).stdout;
  }

  /** hpcflow's containers in this engine (any run, running or not). */
  async hpcflowContainers(runId?: string): Promise<string[]> {
    const out = await this.docker(['ps', '-aq', '--filter', `label=hpcflow.run-id${runId === undefined ? '' : `=${runId}`}`]);
    return out.split('\n').filter(Boolean);
  }

  logTail(): string {
    try {
      return readFileSync(join(this.dir, 'dockerd.log'), 'utf8').split('\n').slice(-30).join('\n');
    } catch {
      return '';
    }
  }

  /**
   * Whatever happened: containers removed, daemon stopped (SIGKILL if it hangs), mounts and files
   * removed. A daemon a test left stopped is started again first: after a crash its containers
   * still run in their shims, and only the engine can stop and remove them.
   */
  async teardown(): Promise<void> {
    if (this.proc === null && existsSync(join(this.dir, 'data'))) await this.start().catch(() => undefined);
    if (this.proc !== null && (await ping(this.sock))) {
      const ids = (await this.docker(['ps', '-aq']).catch(() => '')).split('\n').filter(Boolean);
      if (ids.length > 0) await execa('docker', ['rm', '-f', ...ids], { env: this.env, reject: false });
    }
    const p = this.proc;
    if (p !== null && p.exitCode === null && p.signalCode === null) {
      p.kill('SIGTERM');
      const t = setTimeout(() => p.kill('SIGKILL'), 20_000);
      await this.exited;
      clearTimeout(t);
    }
    this.proc = null;
    // A containerd shim whose containerd died with a crashed daemon can outlive everything: the
    // shims this engine started (their address is under our directory), and their containers.
    const leftover = leftoverProcesses(this.dir);
    for (const pid of leftover) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // gone meanwhile
      }
    }
    if (leftover.length > 0) process.stderr.write(`engine-docker: killed ${leftover.length} process(es) the private engine left behind\n`);
    // dockerd leaves its data root bind-mounted on itself and the default netns mounted.
    for (const m of mountsUnder(this.dir)) await execa('umount', [m], { reject: false });
    await rm(this.dir, { recursive: true, force: true }).catch((e: unknown) => {
      process.stderr.write(`engine-docker: could not remove ${this.dir}: ${(e as Error).message}\n`);
    });
  }
}

/** Processes whose command line names `dir` (this engine's shims), then their children, children first. */
function leftoverProcesses(dir: string): number[] {
  const procs = readdirSync('/proc')
    .filter((n) => /^\d+$/.test(n))
    .map((n) => {
      try {
        const cmd = readFileSync(`/proc/${n}/cmdline`, 'utf8');
        const ppid = Number(readFileSync(`/proc/${n}/stat`, 'utf8').replace(/^.*\) /s, '').split(' ')[1]);
        return { pid: Number(n), ppid, cmd };
      } catch {
        return null;
      }
    })
    .filter((p): p is { pid: number; ppid: number; cmd: string } => p !== null);
  const owned = new Set(procs.filter((p) => p.cmd.includes(`${dir}/`) && p.pid !== process.pid).map((p) => p.pid));
  const children = procs.filter((p) => owned.has(p.ppid) && !owned.has(p.pid)).map((p) => p.pid);
  return [...children, ...owned];
}

/** Mount points under `dir`, deepest first (/proc/self/mountinfo: the 5th field, octal escapes). */
function mountsUnder(dir: string): string[] {
  const unescape = (p: string): string => p.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(Number.parseInt(o, 8)));
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((l) => unescape(l.split(' ')[4] ?? ''))
    .filter((m) => m === dir || m.startsWith(`${dir}/`))
    .sort((a, b) => b.length - a.length);
}

function pidIn(file: string): number | null {
  try {
    const n = Number(readFileSync(file, 'utf8').trim());
    return Number.isInteger(n) && n > 0 ? n : null;
  } catch {
    return null;
  }
}

function alive(pid: number | null): boolean {
  if (pid === null) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function ping(sock: string): Promise<boolean> {
  return new Promise((resolve) => {
    const req = request({ socketPath: sock, path: '/_ping', agent: false, timeout: 2000 }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode === 200));
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(false));
    req.end();
  });
}

/** `prep` finishes before the fault; `slow` is running when it comes (and stops on SIGTERM, as most programs do). */
const PIPELINE = `stages:
  prep:
    image: ${TEST_IMAGE}
    cmd: echo ready > out/prep.txt
    outs: [out/prep.txt]
  slow:
    image: ${TEST_IMAGE}
    cmd: trap 'echo stopped; exit 143' TERM; echo started; if [ -e .hold ]; then sleep 60 & wait; fi; cat out/prep.txt > out/slow.txt
    deps: [out/prep.txt]
    outs: [out/slow.txt]
`;

let root: string;
let engine: PrivateEngine;

beforeAll(async () => {
  // Short: the engine's sockets live under it (a unix socket path has at most 107 bytes).
  root = await mkdtemp(join(tmpdir().length <= 40 ? tmpdir() : '/tmp', 'hpcflow-engine-'));
  await writeFile(join(root, 'daemon.json'), '{}\n');
  engine = new PrivateEngine(root);
  await engine.start();
  await execa('bash', ['-c', `set -o pipefail; docker save ${TEST_IMAGE} | DOCKER_HOST=${engine.env.DOCKER_HOST} docker load -q`]);
}, 120_000);

afterAll(async () => {
  await engine?.teardown();
}, 60_000);

async function workspace(name: string): Promise<string> {
  const ws = join(root, 'ws', name);
  await mkdir(join(ws, 'pipelines'), { recursive: true });
  await mkdir(join(ws, 'out'));
  await writeFile(join(ws, 'pipelines/p.yaml'), PIPELINE);
  return ws;
}

describe('the Docker engine goes away mid-stage', () => {
  for (const signal of ['SIGTERM', 'SIGKILL'] as const) {
    it(`${signal === 'SIGTERM' ? 'stopped (SIGTERM)' : 'crashed (SIGKILL)'}: an engine error for the stage, finished work kept, the next run completes and leaves no container`, async () => {
      const ws = await workspace(signal.toLowerCase());
      await writeFile(join(ws, '.hold'), '');
      const child: ResultPromise<{ reject: false }> = execa('node', [BIN, 'run', '--json'], { cwd: ws, reject: false, env: { CI: '1', ...engine.env } });
      await waitForEvent(child, stageLog('p/slow', 'started'), 'p/slow to start');
      // hpcflow follows DOCKER_HOST: the stage's container is in the private engine.
      expect(await engine.hpcflowContainers()).toHaveLength(1);

      await engine.stop(signal);
      const r = await child;
      const out = `${String(r.stdout)}${String(r.stderr)}`;
      expect(r.exitCode, out).toBe(1);
      expect(out).not.toMatch(STACK_TRACE);
      expect(outcomes(String(r.stdout))).toEqual({ 'p/prep': 'ran', 'p/slow': 'failed' });
      const end = events(String(r.stdout)).find((e) => e.type === 'stage-end' && e.stage === 'p/slow') as { outcome: { error: string } };
      expect(end.outcome.error).toMatch(/^container engine error: the Docker engine at unix:\/\/\S+ went away while the stage was running/);
      // Nothing half-written: the finished stage is in the cache and the lockfile, the failed one is not.
      const before = await checkNothingCorrupt(ws);
      expect(Object.keys(before.lock?.stages ?? {})).toEqual(['p/prep']);
      expect(before.objects).toBeGreaterThan(0);

      // While it is down, a run says so at once (no stack trace) and touches nothing.
      const down = await hpcflow(['run', '--json'], ws, engine.env);
      expect(down.code, down.stdout + down.stderr).toBe(4);
      expect(down.stderr).toMatch(/^hpcflow: cannot reach the Docker engine at unix:\/\/\S+ \((ENOENT|ECONNREFUSED)\)/);
      expect(down.stderr).not.toMatch(STACK_TRACE);
      expect((await checkNothingCorrupt(ws)).lock).toEqual(before.lock);

      await engine.start();
      const runIdOfFault = (events(String(r.stdout)).find((e) => e.type === 'run-start') as { runId: string }).runId;
      // A crashed engine leaves the container (stopped when the engine came back); the next run removes it.
      if (signal === 'SIGKILL') expect(await engine.hpcflowContainers(runIdOfFault)).toHaveLength(1);
      await rm(join(ws, '.hold'));
      const again = await hpcflow(['run', '--json'], ws, engine.env);
      expect(again.code, again.stdout + again.stderr).toBe(0);
      expect(outcomes(again.stdout)).toEqual({ 'p/prep': 'up-to-date', 'p/slow': 'ran' });
      expect(await readFile(join(ws, 'out/slow.txt'), 'utf8')).toBe('ready\n');
      expect(await engine.hpcflowContainers()).toEqual([]);
      const after = await checkNothingCorrupt(ws);
      expect(Object.keys(after.lock?.stages ?? {}).sort()).toEqual(['p/prep', 'p/slow']);
      expect(existsSync(join(ws, '.hpcflow/tmp/run.lock'))).toBe(false);
      const lost = outcomes(again.stdout)['p/prep'] === 'ran' ? 1 : 0;
      recordFaults({ scenario: `Docker engine ${signal === 'SIGTERM' ? 'stopped (SIGTERM)' : 'crashed (SIGKILL)'} mid-stage`, injected: 1, recovered: 1, lost });
    }, 60_000);
  }
});
