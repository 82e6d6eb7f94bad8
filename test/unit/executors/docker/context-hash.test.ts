import { chmod, mkdir, mkdtemp, rm, symlink, utimes, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  contextImageTag,
  hashBuildContext,
  resolveBuildContext,
} from '../../../../runner/executors/docker/context-hash.js';
import type { BuildContext } from '../../../../runner/executors/docker/context-hash.js';

let dir: string;
let ctx: BuildContext;

beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'hpcflow-ctx-'));
  ctx = { dir, name: 'openmp', dockerfile: 'Dockerfile' };
  await writeFile(path.join(dir, 'Dockerfile'), 'FROM hpcflow-test/busybox:1\nCOPY run /run\n');
  await writeFile(path.join(dir, 'run'), '#!/bin/sh\necho hi\n');
  await mkdir(path.join(dir, 'src'));
  await writeFile(path.join(dir, 'src', 'main.c'), 'int main(){return 0;}\n');
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('hashBuildContext', () => {
  it('names the image hpcflow/<context>:<16 hex> and lists what is sent', async () => {
    const h = await hashBuildContext(ctx);
    expect(h.hash).toMatch(/^[0-9a-f]{64}$/);
    expect(h.tag).toBe(`hpcflow/openmp:${h.hash.slice(0, 16)}`);
    expect(h.entries).toBe(3);
    expect(h.paths).toEqual(['src', 'Dockerfile', 'run', 'src/main.c']);
  });

  it('is deterministic and ignores mtimes', async () => {
    const a = await hashBuildContext(ctx);
    await utimes(path.join(dir, 'run'), new Date(0), new Date(0));
    expect((await hashBuildContext(ctx)).hash).toBe(a.hash);
  });

  it('changes when a file changes, is added, renamed, or its exec bit flips', async () => {
    const seen = new Set([(await hashBuildContext(ctx)).hash]);
    const next = async (): Promise<void> => {
      const h = (await hashBuildContext(ctx)).hash;
      expect(seen.has(h)).toBe(false);
      seen.add(h);
    };
    await writeFile(path.join(dir, 'src', 'main.c'), 'int main(){return 1;}\n');
    await next();
    await writeFile(path.join(dir, 'extra.txt'), '');
    await next();
    await rm(path.join(dir, 'extra.txt'));
    await writeFile(path.join(dir, 'extra2.txt'), '');
    await next();
    await chmod(path.join(dir, 'run'), 0o755);
    await next();
    await symlink('src/main.c', path.join(dir, 'link'));
    await next();
  });

  it('depends on which Dockerfile is used', async () => {
    await writeFile(path.join(dir, 'Dockerfile.alt'), 'FROM hpcflow-test/busybox:1\n');
    const a = await hashBuildContext(ctx);
    const b = await hashBuildContext({ ...ctx, dockerfile: 'Dockerfile.alt' });
    expect(a.hash).not.toBe(b.hash);
  });

  it('honours .dockerignore: ignored files neither count nor are sent', async () => {
    await writeFile(path.join(dir, '.dockerignore'), 'build\n*.log\n');
    const before = await hashBuildContext(ctx);
    await mkdir(path.join(dir, 'build'));
    await writeFile(path.join(dir, 'build', 'big.bin'), 'x'.repeat(1000));
    await writeFile(path.join(dir, 'run.log'), 'noise');
    const after = await hashBuildContext(ctx);
    expect(after.hash).toBe(before.hash);
    expect(after.paths).not.toContain('build');
    expect(after.paths).not.toContain('run.log');
    expect(after.paths).toContain('.dockerignore');
  });

  it('fails with ENOENT for a missing context', async () => {
    await expect(hashBuildContext({ ...ctx, dir: path.join(dir, 'nope') })).rejects.toMatchObject({ code: 'ENOENT' });
  });
});

describe('resolveBuildContext / contextImageTag', () => {
  it('maps a context name to containers/<name>, a path to itself', () => {
    expect(resolveBuildContext('/ws', { kind: 'build', context: 'openmp', dockerfile: 'Dockerfile' })).toEqual({
      dir: '/ws/containers/openmp',
      name: 'openmp',
      dockerfile: 'Dockerfile',
    });
    expect(resolveBuildContext('/ws', { kind: 'build', context: 'tools/img', dockerfile: '' }).dir).toBe('/ws/tools/img');
  });
  it('sanitises names into valid repositories', () => {
    expect(contextImageTag('My Image_v2!', 'abcdef0123456789ff')).toBe('hpcflow/my-image_v2:abcdef0123456789');
    expect(contextImageTag('---', '00')).toBe('hpcflow/context:00');
  });
});
