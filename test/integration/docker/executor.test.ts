import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DockerExecutor } from '../../../runner/executors/docker/docker-executor.js';
import { LABELS } from '../../../runner/executors/docker/container-spec.js';
import { isHpcflowError } from '../../../runner/errors.js';
import type { ImageSpec } from '../../../runner/model/pipeline.js';
import {
  TEST_IMAGE,
  ensureDockerForTests,
  listContainersByLabel,
  removeContainersByLabel,
  testDocker,
  uniqueId,
} from '../../helpers/docker.js';

let ws: string;
let ex: DockerExecutor;
const builtTags: string[] = [];
const testRun = uniqueId('orphan-run');
const never = new AbortController().signal;
const noLog = { onLog: () => {} };

beforeAll(async () => {
  await ensureDockerForTests();
  ws = await mkdtemp(path.join(os.tmpdir(), 'hpcflow-exws-'));
  ex = new DockerExecutor();
});
afterAll(async () => {
  await removeContainersByLabel(LABELS.runId, testRun);
  const docker = await testDocker();
  for (const t of builtTags) await docker.getImage(t).remove({ force: true }).catch(() => undefined);
  await ex?.close();
  if (ws !== undefined) await rm(ws, { recursive: true, force: true });
});

describe('imageState / prepareImage for refs', () => {
  it('resolves a present image to its id', async () => {
    const st = await ex.imageState({ kind: 'ref', ref: TEST_IMAGE }, ws);
    expect(st.state).toBe('present');
    if (st.state !== 'present') return;
    expect(st.image.digest).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(st.image.ref).toBe(st.image.digest);
    expect(st.image.tag).toBe(TEST_IMAGE);
  });

  it('reports a missing ref, and prepareImage refuses it with HPCFLOW_IMAGE_NOT_FOUND', async () => {
    const spec: ImageSpec = { kind: 'ref', ref: 'hpcflow-test/does-not-exist:1' };
    expect(await ex.imageState(spec, ws)).toMatchObject({ state: 'missing', tag: spec.ref });
    const err = await ex.prepareImage(spec, ws, noLog, never).catch((e: unknown) => e);
    expect(isHpcflowError(err, 'HPCFLOW_IMAGE_NOT_FOUND')).toBe(true);
    expect((err as { hint?: string }).hint).toMatch(/registry/);
  });

  it('fails with HPCFLOW_ENGINE_UNAVAILABLE when no engine listens', async () => {
    const off = new DockerExecutor({ socketPath: path.join(ws, 'no.sock') });
    const err = await off.imageState({ kind: 'ref', ref: TEST_IMAGE }, ws).catch((e: unknown) => e);
    expect(isHpcflowError(err, 'HPCFLOW_ENGINE_UNAVAILABLE')).toBe(true);
  });
});

describe('imageState / prepareImage for build contexts', () => {
  it('needs-build → build → present; the tag follows the context content', async () => {
    const ctxDir = path.join(ws, 'containers', 'tiny');
    await mkdir(ctxDir, { recursive: true });
    await writeFile(path.join(ctxDir, 'Dockerfile'), `FROM hpcflow-test/busybox:1\nRUN echo hi > /hello\n`);
    await writeFile(path.join(ctxDir, 'marker'), uniqueId('ctx'));
    const spec: ImageSpec = { kind: 'build', context: 'tiny', dockerfile: 'Dockerfile' };

    const before = await ex.imageState(spec, ws);
    expect(before.state).toBe('needs-build');
    if (before.state !== 'needs-build') return;
    expect(before.tag).toMatch(/^hpcflow\/tiny:[0-9a-f]{16}$/);
    expect(before.reason).toBe(`image ${before.tag} not built yet`);
    builtTags.push(before.tag);

    const logs: string[] = [];
    const img = await ex.prepareImage(spec, ws, { onLog: (_s, l) => logs.push(l) }, never);
    expect(img.tag).toBe(before.tag);
    expect(img.digest).toMatch(/^sha256:/);
    expect(logs.join('\n')).toContain('RUN echo hi');
    expect(await ex.imageState(spec, ws)).toEqual({ state: 'present', image: img });

    // Runs from the built image.
    const out: string[] = [];
    const { makeStage, makeTask } = await import('../../helpers/docker.js');
    const r = await ex.run(makeTask({ stage: makeStage({ cmd: 'cat /hello' }), image: img, workspace: ws }), { onLog: (_s, l) => out.push(l) }, never);
    expect(r.exitCode).toBe(0);
    expect(out).toEqual(['hi']);

    await writeFile(path.join(ctxDir, 'marker'), uniqueId('changed'));
    const after = await ex.imageState(spec, ws);
    expect(after).toMatchObject({ state: 'needs-build' });
    expect(after.state === 'needs-build' && after.tag).not.toBe(before.tag);
  });

  it('reports a missing context', async () => {
    const st = await ex.imageState({ kind: 'build', context: 'nope', dockerfile: 'Dockerfile' }, ws);
    expect(st).toMatchObject({ state: 'missing' });
    const err = await ex
      .prepareImage({ kind: 'build', context: 'nope', dockerfile: 'Dockerfile' }, ws, noLog, never)
      .catch((e: unknown) => e);
    expect(isHpcflowError(err, 'HPCFLOW_IMAGE_BUILD_FAILED')).toBe(true);
  });
});

describe('cleanupOrphans', () => {
  it('removes containers of dead owners on this host, and only those', async () => {
    const child = execa('true');
    const deadPid = child.pid;
    await child;
    expect(deadPid).toBeTypeOf('number');
    const docker = await testDocker();
    const make = async (pid: number, host: string): Promise<string> => {
      const c = await docker.createContainer({
        Image: TEST_IMAGE,
        Cmd: ['sleep', '60'],
        Labels: { [LABELS.runId]: testRun, [LABELS.ownerPid]: String(pid), [LABELS.ownerHost]: host },
        HostConfig: { NetworkMode: 'none', LogConfig: { Type: 'none', Config: {} } },
      });
      await c.start();
      return c.id;
    };
    const orphan = await make(deadPid as number, os.hostname());
    const mine = await make(process.pid, os.hostname());
    const otherHost = await make(deadPid as number, 'some-other-login-node');

    // Test files run in parallel, and every `hpcflow run` cleans up orphans first: another one may
    // have removed this orphan a moment earlier, so the count is not checked; what is left is.
    await ex.cleanupOrphans();
    const left = (await listContainersByLabel(LABELS.runId, testRun)).map((c) => c.id).sort();
    expect(left).toEqual([mine, otherHost].sort());
    expect(left).not.toContain(orphan);
  });
});
