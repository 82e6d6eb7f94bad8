import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildImage } from '../../../runner/executors/docker/build.js';
import { hashBuildContext } from '../../../runner/executors/docker/context-hash.js';
import { isHpcflowError } from '../../../runner/errors.js';
import { ensureDockerForTests, listContainersByCommand, testDocker, uniqueId } from '../../helpers/docker.js';

const dirs: string[] = [];
const tags: string[] = [];
const never = new AbortController().signal;

async function context(dockerfile: string): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'hpcflow-build-'));
  dirs.push(dir);
  await writeFile(path.join(dir, 'Dockerfile'), dockerfile);
  return dir;
}

async function tagFor(dir: string): Promise<{ tag: string; paths: readonly string[] }> {
  const h = await hashBuildContext({ dir, name: 'buildtest', dockerfile: 'Dockerfile' });
  tags.push(h.tag);
  return h;
}

beforeAll(async () => {
  await ensureDockerForTests();
});
afterAll(async () => {
  const docker = await testDocker();
  for (const t of tags) await docker.getImage(t).remove({ force: true }).catch(() => undefined);
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

describe('buildImage', () => {
  it('builds from a context dir, then again from cache with the same tag and id', async () => {
    const marker = uniqueId('marker');
    const dir = await context(`FROM hpcflow-test/busybox:1\nRUN echo ${marker} > /hello\n`);
    await writeFile(path.join(dir, 'data.txt'), 'payload\n');
    const { tag, paths } = await tagFor(dir);
    const lines: string[] = [];
    const t0 = performance.now();
    const first = await buildImage(await testDocker(), {
      contextDir: dir,
      dockerfile: 'Dockerfile',
      tag,
      paths,
      onLog: (l) => lines.push(l),
      signal: never,
    });
    const firstMs = performance.now() - t0;
    expect(first.id).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(first.tag).toBe(tag);
    expect(lines.some((l) => l.startsWith('Step 2/2 : RUN echo'))).toBe(true);

    const again: string[] = [];
    const t1 = performance.now();
    const second = await buildImage(await testDocker(), {
      contextDir: dir,
      dockerfile: 'Dockerfile',
      tag,
      onLog: (l) => again.push(l),
      signal: never,
    });
    const secondMs = performance.now() - t1;
    expect(second).toEqual(first);
    expect(again.some((l) => l.includes('Using cache'))).toBe(true);
    expect(secondMs).toBeLessThan(Math.max(firstMs, 2000));
    expect(await listContainersByCommand(marker)).toEqual([]);
  });

  it('turns a failing step into HPCFLOW_IMAGE_BUILD_FAILED with the last lines, leaving no container', async () => {
    const marker = uniqueId('boom');
    const dir = await context(`FROM hpcflow-test/busybox:1\nRUN echo ${marker}; exit 3\n`);
    const { tag } = await tagFor(dir);
    const err = await buildImage(await testDocker(), {
      contextDir: dir,
      dockerfile: 'Dockerfile',
      tag,
      onLog: () => {},
      signal: never,
    }).catch((e: unknown) => e);
    expect(isHpcflowError(err, 'HPCFLOW_IMAGE_BUILD_FAILED')).toBe(true);
    const msg = (err as Error).message;
    expect(msg).toContain('returned a non-zero code: 3');
    expect(msg).toContain(marker);
    expect(await listContainersByCommand(marker)).toEqual([]);
  });

  it('aborts a running build: HPCFLOW_ABORTED, and the build container goes away', async () => {
    const marker = uniqueId('slow');
    const dir = await context(`FROM hpcflow-test/busybox:1\nRUN echo ${marker} && sleep 30\n`);
    const { tag } = await tagFor(dir);
    const ac = new AbortController();
    const t0 = Date.now();
    const err = await buildImage(await testDocker(), {
      contextDir: dir,
      dockerfile: 'Dockerfile',
      tag,
      onLog: (l) => l === marker && ac.abort(),
      signal: ac.signal,
    }).catch((e: unknown) => e);
    expect(isHpcflowError(err, 'HPCFLOW_ABORTED')).toBe(true);
    expect(Date.now() - t0).toBeLessThan(15_000);
    // The daemon cancels the build when the connection closes; its cleanup is asynchronous.
    for (let i = 0; i < 50 && (await listContainersByCommand(marker)).length > 0; i++) {
      await new Promise((r) => setTimeout(r, 200));
    }
    expect(await listContainersByCommand(marker)).toEqual([]);
  });
});
