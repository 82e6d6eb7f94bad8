import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { isHpcflowError } from '../../../../runner/errors.js';
import { openRemote } from '../../../../runner/datasets/remotes/index.js';
import type { RemoteConfig } from '../../../../runner/datasets/remotes/index.js';
import { FsRemote } from '../../../../runner/datasets/remotes/fs.js';
import { redactSecrets, S3Remote } from '../../../../runner/datasets/remotes/s3.js';

const ROOT = resolve('/work-root/project');

async function usageError(cfg: RemoteConfig): Promise<string> {
  const e = await openRemote('r', cfg, ROOT).then(
    () => null,
    (err: unknown) => err,
  );
  if (!isHpcflowError(e, 'HPCFLOW_USAGE')) throw new Error(`expected HPCFLOW_USAGE, got ${String(e)}`);
  return `${e.message}\n${e.hint ?? ''}`;
}

describe('openRemote', () => {
  it('opens a directory from a plain path (relative to the workspace) or a file:// url', async () => {
    const rel = await openRemote('shared', { url: '../store' }, ROOT);
    expect(rel).toBeInstanceOf(FsRemote);
    expect(rel.display).toBe(resolve(ROOT, '../store'));
    expect(rel.name).toBe('shared');
    const abs = await openRemote('shared', { url: '/lustre/proj/store/' }, ROOT);
    expect(abs.display).toBe('/lustre/proj/store');
    const url = await openRemote('shared', { url: pathToFileURL('/gpfs/a b/store').href }, ROOT);
    expect(url.display).toBe('/gpfs/a b/store');
  });

  it('opens an S3 remote with its bucket, prefix and endpoint, defaulting to path-style', async () => {
    const r = await openRemote('s3', { url: 's3://my-bucket/some/prefix/', endpoint: 'http://127.0.0.1:9000', partSize: 1024 }, ROOT);
    expect(r).toBeInstanceOf(S3Remote);
    const s3 = r as S3Remote;
    expect(s3.bucket).toBe('my-bucket');
    expect(s3.prefix).toBe('some/prefix');
    expect(s3.partSize).toBe(1024);
    expect(s3.key('a'.repeat(64))).toBe(`some/prefix/objects/aa/${'a'.repeat(62)}`);
    expect(r.display).toBe('s3://my-bucket/some/prefix at http://127.0.0.1:9000');
    const bare = (await openRemote('s3', { url: 's3://b1' }, ROOT)) as S3Remote;
    expect(bare.key('0'.repeat(64))).toBe(`objects/00/${'0'.repeat(62)}`);
    expect(bare.display).toBe('s3://b1');
    await r.close();
    await bare.close();
  });

  it('rejects unknown schemes, bad S3 urls and misplaced settings clearly', async () => {
    expect(await usageError({ url: 'gs://bucket/x' })).toMatch(/unsupported url scheme "gs:\/\/".*\n.*s3:\/\/bucket\/prefix/);
    expect(await usageError({ url: 'https://example.org/store' })).toContain('"https://"');
    expect(await usageError({ url: '' })).toContain('empty url');
    expect(await usageError({ url: 's3://' })).toContain('no valid bucket');
    expect(await usageError({ url: 's3://b/../x' })).toContain('invalid key prefix');
    expect(await usageError({ url: '/data/store', endpoint: 'http://x' })).toContain('endpoint only apply to s3://');
    expect(await usageError({ url: 's3://b', endpoint: 'ftp://x' })).toContain('http:// or https://');
    expect(await usageError({ url: 's3://b', partSize: 0 })).toContain('partSize');
  });

  it('refuses credentials in the endpoint without repeating them', async () => {
    const msg = await usageError({ url: 's3://b/p', endpoint: 'https://AKID:hunter2secret@s3.example.org' });
    expect(msg).toContain('contains credentials');
    expect(msg).not.toContain('hunter2secret');
    expect(msg).not.toContain('AKID');
  });
});

describe('redactSecrets', () => {
  const saved = { ...process.env };
  afterEach(() => {
    for (const k of ['AWS_SECRET_ACCESS_KEY', 'AWS_SESSION_TOKEN']) {
      if (saved[k] === undefined) delete process.env[k];
      else process.env[k] = saved[k];
    }
  });

  it('replaces every credential from the environment', () => {
    process.env.AWS_SECRET_ACCESS_KEY = 'wJalrXUtnFEMI/K7MDENG';
    process.env.AWS_SESSION_TOKEN = 'FwoGZXIvYXdzEJr';
    expect(redactSecrets('a wJalrXUtnFEMI/K7MDENG b FwoGZXIvYXdzEJr c wJalrXUtnFEMI/K7MDENG')).toBe('a *** b *** c ***');
    expect(redactSecrets('nothing here')).toBe('nothing here');
  });
});

describe('FsRemote object layout', () => {
  it('shards objects by the first two hex digits', () => {
    const r = new FsRemote('x', '/store');
    const h = 'ab'.padEnd(64, 'c');
    expect(r.objectPath(h)).toBe(join('/store', 'objects', 'ab', h.slice(2)));
    expect(() => r.objectPath('../../etc/passwd')).toThrow(/invalid object id/);
  });
});
