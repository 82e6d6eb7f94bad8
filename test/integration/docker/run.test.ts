import { chmod, mkdtemp, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DockerExecutor } from '../../../runner/executors/docker/docker-executor.js';
import { runContainer } from '../../../runner/executors/docker/run-container.js';
import { containerCreateOptions } from '../../../runner/executors/docker/container-spec.js';
import type { LogStream, ResolvedImage, StageRunResult, StageTask } from '../../../runner/executors/executor.js';
import {
  TEST_IMAGE,
  ensureDockerForTests,
  listContainersByLabel,
  makeStage,
  makeTask,
  testDocker,
  uniqueId,
} from '../../helpers/docker.js';

let ws: string;
let ex: DockerExecutor;
let image: ResolvedImage;
const never = new AbortController().signal;

beforeAll(async () => {
  await ensureDockerForTests();
  ws = await mkdtemp(path.join(os.tmpdir(), 'hpcflow-ws-'));
  await chmod(ws, 0o777); // stages run as other uids in some tests
  ex = new DockerExecutor();
  image = await ex.prepareImage({ kind: 'ref', ref: TEST_IMAGE }, ws, { onLog: () => {} }, never);
});
afterAll(async () => {
  await ex?.close();
  if (ws !== undefined) await rm(ws, { recursive: true, force: true });
});

interface Captured {
  result: StageRunResult;
  stdout: string[];
  stderr: string[];
  task: StageTask;
}

async function run(
  stageOverrides: Parameters<typeof makeStage>[0],
  opts: { signal?: AbortSignal; executor?: DockerExecutor; onLog?: (s: LogStream, l: string) => void } = {},
): Promise<Captured> {
  const task = makeTask({ stage: makeStage(stageOverrides), image, workspace: ws });
  const stdout: string[] = [];
  const stderr: string[] = [];
  const result = await (opts.executor ?? ex).run(
    task,
    {
      onLog: (s, l) => {
        (s === 'stdout' ? stdout : stderr).push(l);
        opts.onLog?.(s, l);
      },
    },
    opts.signal ?? never,
  );
  return { result, stdout, stderr, task };
}

async function expectNoContainers(task: StageTask): Promise<void> {
  expect(await listContainersByLabel('hpcflow.run-id', task.runId)).toEqual([]);
}

describe('DockerExecutor.run', () => {
  it('streams stdout lines in order and exits 0', async () => {
    const { result, stdout, stderr, task } = await run({ cmd: 'for i in $(seq 1 3000); do echo line$i; done; printf tail' });
    expect(result.exitCode).toBe(0);
    expect(result.signal).toBeNull();
    expect(result.engineError).toBeNull();
    expect(stdout).toEqual([...Array.from({ length: 3000 }, (_, i) => `line${i + 1}`), 'tail']);
    expect(stderr).toEqual([]);
    expect(result.nodes).toEqual([os.hostname()]);
    await expectNoContainers(task);
  });

  it('reports a nonzero exit code and keeps stderr apart', async () => {
    const { result, stdout, stderr, task } = await run({ cmd: 'echo out; echo err1 >&2; echo err2 >&2; exit 7' });
    expect(result.exitCode).toBe(7);
    expect(result.timedOut).toBe(false);
    expect(result.canceled).toBe(false);
    expect(stdout).toEqual(['out']);
    expect(stderr).toEqual(['err1', 'err2']);
    await expectNoContainers(task);
  });

  it('runs as the given uid:gid so outputs are not root-owned', async () => {
    const other = new DockerExecutor({ user: '1234:1234' });
    try {
      const { result, stdout } = await run({ cmd: 'id -u; id -g; echo data > owned.txt' }, { executor: other });
      expect(result.exitCode).toBe(0);
      expect(stdout).toEqual(['1234', '1234']);
      const st = await stat(path.join(ws, 'owned.txt'));
      expect([st.uid, st.gid]).toEqual([1234, 1234]);
    } finally {
      await other.close();
    }
  });

  it('applies env, wdir (created as the invoking user) and mounts the workspace at the same path', async () => {
    const { result, stdout, task } = await run({
      id: 'demo/env@n=2',
      cmd: 'echo "$FOO|$HPCFLOW_STAGE|$HPCFLOW_RUN_ID|$OMP_NUM_THREADS"; pwd',
      wdir: 'sub/dir',
      env: { FOO: 'bar baz' },
      resources: { cpusPerTask: 2 },
    });
    expect(result.exitCode).toBe(0);
    expect(stdout).toEqual([`bar baz|demo/env@n=2|${task.runId}|2`, path.join(ws, 'sub', 'dir')]);
    expect((await stat(path.join(ws, 'sub', 'dir'))).uid).toBe(process.getuid?.());
  });

  it('kills at the time limit: timedOut, no exit code, container gone', async () => {
    const t0 = Date.now();
    const { result, task } = await run({ cmd: 'echo started; sleep 30', resources: { timeLimitSec: 1 } });
    expect(result.timedOut).toBe(true);
    expect(result.canceled).toBe(false);
    expect(result.exitCode).toBeNull();
    expect(result.signal).toBe('SIGKILL');
    expect(Date.now() - t0).toBeLessThan(10_000);
    expect(result.commandMs).toBeGreaterThanOrEqual(900);
    await expectNoContainers(task);
  });

  it('reacts to abort mid-run: canceled, container gone', async () => {
    const ac = new AbortController();
    const t0 = Date.now();
    const { result, stdout, task } = await run(
      { cmd: 'echo started; sleep 30' },
      { signal: ac.signal, onLog: (_s, l) => l === 'started' && ac.abort() },
    );
    expect(stdout).toEqual(['started']);
    expect(result.canceled).toBe(true);
    expect(result.exitCode).toBeNull();
    expect(result.signal).toBe('SIGKILL');
    expect(Date.now() - t0).toBeLessThan(10_000);
    await expectNoContainers(task);
  });

  it('does not create anything when already aborted', async () => {
    const ac = new AbortController();
    ac.abort();
    const { result, task } = await run({ cmd: 'echo never' }, { signal: ac.signal });
    expect(result.canceled).toBe(true);
    expect(result.exitCode).toBeNull();
    await expectNoContainers(task);
  });

  it('reports an OOM kill at the memory limit with the exit code and a note on stderr', async () => {
    const { result, stderr, task } = await run({
      cmd: 'head -c 268435456 /dev/zero | tail -n1 >/dev/null',
      resources: { memoryBytes: 16 * 1024 * 1024 },
    });
    expect(result.exitCode).toBe(137);
    expect(result.signal).toBeNull();
    expect(stderr.at(-1)).toMatch(/killed: out of memory \(limit 16777216 bytes\)/);
    await expectNoContainers(task);
  });
});

describe('runContainer failures leave nothing behind', () => {
  it('create failure (unknown image id) → engineError, nothing created', async () => {
    const docker = await testDocker();
    const missing = `sha256:${'0'.repeat(64)}`;
    const task = makeTask({ stage: makeStage(), image: { ref: missing, digest: missing, tag: 'missing' }, workspace: ws });
    const createOpts = containerCreateOptions(task, {
      user: '0:0',
      network: 'host',
      name: uniqueId('hpcflow-test-create'),
      owner: { pid: process.pid, host: os.hostname() },
    });
    const r = await runContainer(docker, createOpts, { onLog: () => {}, signal: never, timeoutSec: null });
    expect(r.engineError).toMatch(/no such image/i);
    expect(r.exitCode).toBeNull();
    await expectNoContainers(task);
  });

  it('start failure (unknown user) → engineError, container removed', async () => {
    const docker = await testDocker();
    const task = makeTask({ stage: makeStage(), image, workspace: ws });
    const createOpts = containerCreateOptions(task, {
      user: 'no-such-user',
      network: 'host',
      name: uniqueId('hpcflow-test-start'),
      owner: { pid: process.pid, host: os.hostname() },
    });
    const created: string[] = [];
    const removed: string[] = [];
    const r = await runContainer(docker, createOpts, {
      onLog: () => {},
      signal: never,
      timeoutSec: null,
      onCreated: (id) => created.push(id),
      onRemoved: (id) => removed.push(id),
    });
    expect(r.engineError).toMatch(/no-such-user|no matching entries/i);
    expect(created).toHaveLength(1);
    expect(removed).toEqual(created);
    await expectNoContainers(task);
  });
});

describe('removeAllLive', () => {
  it('cancels the runs of this process and removes their containers; the run ends promptly', async () => {
    const { removeAllLive } = await import('../../../runner/executors/docker/docker-executor.js');
    let resolveStarted: () => void = () => {};
    const started = new Promise<void>((r) => (resolveStarted = r));
    const t0 = Date.now();
    const pending = run({ cmd: 'echo started; sleep 30' }, { onLog: (_s, l) => l === 'started' && resolveStarted() });
    await started;
    expect(await removeAllLive()).toBe(1);
    const { result, task } = await pending;
    expect(result.canceled).toBe(true);
    expect(result.exitCode).toBeNull();
    expect(result.signal).toBe('SIGKILL');
    expect(Date.now() - t0).toBeLessThan(10_000);
    await expectNoContainers(task);
    expect(await removeAllLive()).toBe(0);
  });
});
