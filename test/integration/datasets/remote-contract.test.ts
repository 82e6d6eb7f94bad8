/**
 * One contract (runner/datasets/remotes/remote.ts) checked against every remote: a directory,
 * and an S3 server (s3rver on 127.0.0.1) both as it is and with the multipart-listing calls it
 * lacks added by the test helper, so both the fallback and the resumable multipart path run.
 */
import { CreateMultipartUploadCommand, HeadObjectCommand, PutObjectCommand, S3Client, UploadPartCommand } from '@aws-sdk/client-s3';
import { execFileSync } from 'node:child_process';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, open, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isHpcflowError } from '../../../runner/errors.js';
import { hashBytes } from '../../../runner/fingerprint/hash-file.js';
import { openRemote } from '../../../runner/datasets/remotes/index.js';
import type { RemoteConfig } from '../../../runner/datasets/remotes/index.js';
import type { Remote } from '../../../runner/datasets/remotes/remote.js';
import { S3Remote } from '../../../runner/datasets/remotes/s3.js';
import { S3RVER_CREDENTIALS, startS3Server } from '../../helpers/s3-server.js';
import type { RecordedRequest, S3TestServer } from '../../helpers/s3-server.js';

const PART = 64 * 1024;
/** Small limits so a 300 KiB file is a 5-part multipart upload. */
const LIMITS = { multipartThreshold: 4 * PART, partSize: PART };
const PREFIX = 'team/store';

// Hermetic S3 credentials: the ones s3rver accepts, no profile, no instance metadata lookups.
const savedEnv = { ...process.env };
function useTestCredentials(): void {
  for (const k of Object.keys(process.env)) if (k.startsWith('AWS_')) delete process.env[k];
  process.env.AWS_ACCESS_KEY_ID = S3RVER_CREDENTIALS.accessKeyId;
  process.env.AWS_SECRET_ACCESS_KEY = S3RVER_CREDENTIALS.secretAccessKey;
  process.env.AWS_EC2_METADATA_DISABLED = 'true';
  process.env.AWS_CONFIG_FILE = join(tmpdir(), 'hpcflow-no-aws-config');
  process.env.AWS_SHARED_CREDENTIALS_FILE = join(tmpdir(), 'hpcflow-no-aws-credentials');
}

interface Blob {
  readonly hash: string;
  readonly bytes: Buffer;
  readonly path: string;
}

/** Everything a contract test needs to know about one kind of remote. */
interface Harness {
  readonly kind: string;
  /** A new remote instance on the same store (instances share nothing in memory). */
  open(): Promise<Remote>;
  /** Replaces the stored bytes of `hash`, bypassing the remote. */
  corrupt(hash: string, bytes: Buffer): Promise<void>;
  /** Whether `hash` is visible under its final name, bypassing the remote. */
  visible(hash: string): Promise<boolean>;
  /** Resolves once an upload of `hash` has sent at least `bytes` bytes (not yet published). */
  uploaded(hash: string, bytes: number): Promise<void>;
  /** The requests the server answered so far (S3 only). */
  readonly requests?: () => Promise<RecordedRequest[]>;
  /** Whether interrupted multipart uploads are found again (S3 with listing). */
  readonly resumesMultipart?: boolean;
  /** S3 only: a client on the test server. */
  readonly s3?: { client: S3Client; bucket: string; key(hash: string): string };
}

async function until(what: string, check: () => Promise<boolean> | boolean, ms = 20_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

let work: string;
let counter = 0;

async function blob(bytes: Buffer): Promise<Blob> {
  const path = join(work, `src-${++counter}`);
  await writeFile(path, bytes);
  return { hash: hashBytes(bytes), bytes, path };
}
const dest = (): string => join(work, 'out', `dest-${++counter}`);

/** Files next to `path` left by a transfer (`<name>.part`, `<name>.part.<owner>`). */
async function leftovers(path: string): Promise<string[]> {
  const dir = join(path, '..');
  const base = path.slice(dir.length + 1);
  const names = await readdir(dir).catch(() => [] as string[]);
  return names.filter((n) => n.startsWith(`${base}.`));
}

async function expectCode(p: Promise<unknown>, code: string): Promise<Error> {
  const e = await p.then(
    () => null,
    (err: unknown) => err,
  );
  expect(e, `expected ${code}`).not.toBeNull();
  if (!isHpcflowError(e)) throw e;
  expect(e.code, e.message).toBe(code);
  return e;
}

/** The requests `fn` caused, for S3 harnesses (undefined for the others). */
async function requestsDuring(h: Harness, fn: () => Promise<void>): Promise<RecordedRequest[] | undefined> {
  if (h.requests === undefined) {
    await fn();
    return undefined;
  }
  const before = (await h.requests()).length;
  await fn();
  return (await h.requests()).slice(before);
}

function mkfifo(path: string): void {
  execFileSync('mkfifo', [path]);
}

const servers: S3TestServer[] = [];

beforeAll(async () => {
  useTestCredentials();
  work = await mkdtemp(join(tmpdir(), 'hpcflow-remote-contract-'));
  await mkdir(join(work, 'out'));
});

afterAll(async () => {
  for (const s of servers) await s.stop();
  await rm(work, { recursive: true, force: true });
  for (const k of Object.keys(process.env)) if (!(k in savedEnv)) delete process.env[k];
  Object.assign(process.env, savedEnv);
});

function fsHarness(): () => Promise<Harness> {
  return async () => {
    const root = join(work, `fs-remote-${++counter}`);
    const objectPath = (h: string): string => join(root, 'objects', h.slice(0, 2), h.slice(2));
    return {
      kind: 'fs',
      open: () => openRemote('shared', { url: root }, work),
      async corrupt(hash, bytes) {
        await chmod(objectPath(hash), 0o644);
        await writeFile(objectPath(hash), bytes);
      },
      visible: async (hash) => existsSync(objectPath(hash)),
      async uploaded(hash, bytes) {
        await until(`${bytes} bytes of ${hash} in tmp/`, async () => {
          const names = await readdir(join(root, 'tmp')).catch(() => [] as string[]);
          for (const n of names.filter((x) => x.startsWith(`${hash}.part.`))) {
            if (((await stat(join(root, 'tmp', n)).catch(() => null))?.size ?? 0) >= bytes) return true;
          }
          return false;
        });
      },
    };
  };
}

function s3Harness(multipartListing: boolean): () => Promise<Harness> {
  return async () => {
    const server = await startS3Server({ multipartListing });
    servers.push(server);
    const cfg: RemoteConfig = { url: `s3://${server.bucket}/${PREFIX}`, endpoint: server.endpoint, ...LIMITS };
    const client = new S3Client({
      endpoint: server.endpoint,
      region: 'us-east-1',
      forcePathStyle: true,
      credentials: S3RVER_CREDENTIALS,
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
    });
    const key = (h: string): string => `${PREFIX}/objects/${h.slice(0, 2)}/${h.slice(2)}`;
    const isPart = (r: RecordedRequest, h: string): boolean => r.method === 'PUT' && r.path.endsWith(key(h)) && 'partNumber' in r.query && r.status === 200;
    return {
      kind: multipartListing ? 's3 (with multipart listing)' : 's3',
      open: () => openRemote('bucket', cfg, work),
      async corrupt(hash, bytes) {
        await client.send(new PutObjectCommand({ Bucket: server.bucket, Key: key(hash), Body: bytes, Metadata: { blake3: hash } }));
      },
      async visible(hash) {
        try {
          await client.send(new HeadObjectCommand({ Bucket: server.bucket, Key: key(hash) }));
          return true;
        } catch {
          return false;
        }
      },
      async uploaded(hash, bytes) {
        await until(`${bytes / PART} parts of ${hash} uploaded`, async () => (await server.requests()).filter((r) => isPart(r, hash)).length * PART >= bytes);
      },
      requests: () => server.requests(),
      resumesMultipart: multipartListing,
      s3: { client, bucket: server.bucket, key },
    };
  };
}

const kinds: Array<[string, () => Promise<Harness>]> = [
  ['fs', fsHarness()],
  ['s3', s3Harness(false)],
  ['s3+listing', s3Harness(true)],
];

describe.each(kinds)('remote contract: %s', (_name, make) => {
  let h: Harness;
  let remote: Remote;

  beforeAll(async () => {
    h = await make();
    remote = await h.open();
  });
  afterAll(async () => {
    await remote.close();
  });

  it('round-trips small, empty and multipart-sized objects; has/hasMany see them', async () => {
    const blobs = [await blob(randomBytes(1000)), await blob(Buffer.alloc(0)), await blob(randomBytes(5 * PART + 123))];
    const absent = hashBytes(randomBytes(8));
    for (const b of blobs) {
      expect(await remote.has(b.hash)).toBe(false);
      await remote.put(b.hash, b.path, b.bytes.length);
      expect(await remote.has(b.hash)).toBe(true);
    }
    expect(await remote.has(absent)).toBe(false);
    expect(await remote.hasMany([...blobs.map((b) => b.hash), absent])).toEqual(new Set(blobs.map((b) => b.hash)));
    expect(await remote.hasMany([])).toEqual(new Set());
    for (const b of blobs) {
      const d = dest();
      await remote.get(b.hash, d);
      expect((await readFile(d)).equals(b.bytes)).toBe(true);
      expect(await leftovers(d)).toEqual([]);
    }
  });

  it('hasMany answers for many hashes in one shard (the listing path) and across shards', async () => {
    const b = await blob(randomBytes(333));
    await remote.put(b.hash, b.path, b.bytes.length);
    const shard = b.hash.slice(0, 2);
    // Fakes on both sides of the real one within its shard, plus absent hashes elsewhere.
    const fakes = Array.from({ length: 40 }, (_, i) => `${shard}${i.toString(16).padStart(2, '0')}${hashBytes(String(i)).slice(4)}`);
    const elsewhere = Array.from({ length: 20 }, (_, i) => hashBytes(`elsewhere ${i}`));
    const got = await remote.hasMany([...fakes, b.hash, ...elsewhere, b.hash]);
    expect(got).toEqual(new Set([b.hash]));
  });

  it('put is idempotent and safe to run concurrently for the same object', async () => {
    const b = await blob(randomBytes(5 * PART + 7));
    await remote.put(b.hash, b.path, b.bytes.length);
    const during = await requestsDuring(h, () => remote.put(b.hash, b.path, b.bytes.length));
    // Only a HEAD: nothing sent again.
    if (during !== undefined) expect(during.map((r) => r.method)).toEqual(['HEAD']);

    const c = await blob(randomBytes(5 * PART + 99));
    const d = await blob(randomBytes(2000));
    const others = [await h.open(), await h.open()];
    await Promise.all([
      ...[remote, remote, remote, ...others].map((r) => r.put(c.hash, c.path, c.bytes.length)),
      ...[remote, remote, ...others].map((r) => r.put(d.hash, d.path, d.bytes.length)),
    ]);
    for (const r of others) await r.close();
    for (const x of [c, d]) {
      const p = dest();
      await remote.get(x.hash, p);
      expect((await readFile(p)).equals(x.bytes)).toBe(true);
    }
  });

  it('get of a missing object fails clearly and leaves nothing', async () => {
    const missing = hashBytes(randomBytes(16));
    const p = dest();
    const e = await expectCode(remote.get(missing, p), 'HPCFLOW_CACHE_CORRUPT');
    expect(e.message).toContain(missing);
    expect(e.message).toContain('missing');
    expect(e.message).toContain(remote.display);
    expect(existsSync(p)).toBe(false);
    expect(await leftovers(p)).toEqual([]);
  });

  it('rejects object ids that are not BLAKE3 hashes', async () => {
    await expectCode(remote.has('../../etc/passwd'), 'HPCFLOW_CACHE_CORRUPT');
    await expectCode(remote.get('ABC', dest()), 'HPCFLOW_CACHE_CORRUPT');
  });

  it.each([
    ['same size', (b: Buffer) => Buffer.from(b.map((x, i) => (i === 10 ? x ^ 0xff : x)))],
    ['truncated', (b: Buffer) => b.subarray(0, b.length - 100)],
  ])('a damaged object on the remote (%s) is detected and named on get; nothing is left', async (_label, damage) => {
    const b = await blob(randomBytes(3000));
    await remote.put(b.hash, b.path, b.bytes.length);
    await h.corrupt(b.hash, damage(b.bytes));
    const p = dest();
    const e = await expectCode(remote.get(b.hash, p), 'HPCFLOW_CACHE_CORRUPT');
    expect(e.message).toContain(b.hash);
    expect(e.message).toContain(remote.display);
    expect(e.message).toContain(remote.name);
    expect(existsSync(p)).toBe(false);
    expect(await leftovers(p)).toEqual([]);
  });

  it.each([
    ['small', 2000],
    ['multipart', 5 * PART + 1],
  ])('a put whose local file does not match the hash fails and publishes nothing (%s)', async (_label, size) => {
    const b = await blob(randomBytes(size));
    const claimed = hashBytes(randomBytes(size));
    const e = await expectCode(remote.put(claimed, b.path, size), 'HPCFLOW_CACHE_CORRUPT');
    expect(e.message).toContain(claimed);
    expect(await h.visible(claimed)).toBe(false);
    expect(await remote.has(claimed)).toBe(false);
    // Also when only the size is wrong.
    await expectCode(remote.put(b.hash, b.path, size + 1), 'HPCFLOW_CACHE_CORRUPT');
    expect(await h.visible(b.hash)).toBe(false);
  });

  it('an upload interrupted midway is never visible and completes when run again', async () => {
    const b = await blob(randomBytes(6 * PART + 500));
    const fifo = join(work, `fifo-${++counter}`);
    mkfifo(fifo);
    const ac = new AbortController();
    const p = remote.put(b.hash, fifo, b.bytes.length, ac.signal);
    const settled = p.then(
      () => null,
      (e: unknown) => e,
    );
    const w = await open(fifo, 'w');
    try {
      await w.write(b.bytes.subarray(0, 3 * PART));
      await h.uploaded(b.hash, 2 * PART);
      expect(await h.visible(b.hash)).toBe(false);
      ac.abort();
    } finally {
      await w.close();
    }
    const err = await settled;
    expect(isHpcflowError(err, 'HPCFLOW_ABORTED'), String(err)).toBe(true);
    expect(await h.visible(b.hash)).toBe(false);
    expect(await remote.has(b.hash)).toBe(false);
    if (h.kind === 'fs') {
      // The partial upload is parked for the next run, and only there.
      const root = remote.display;
      expect(existsSync(join(root, 'tmp', `${b.hash}.part`))).toBe(true);
      expect((await stat(join(root, 'tmp', `${b.hash}.part`))).size).toBeGreaterThanOrEqual(2 * PART);
    }

    const during = await requestsDuring(h, () => remote.put(b.hash, b.path, b.bytes.length));
    if (h.resumesMultipart === true && during !== undefined) {
      // Part 1 reached the server before the interruption and was not sent again.
      const again = during.filter((r) => r.method === 'PUT' && 'partNumber' in r.query);
      expect(again.map((r) => r.query.partNumber)).not.toContain('1');
      expect(again.length).toBeLessThan(7);
    }
    const out = dest();
    await remote.get(b.hash, out);
    expect((await readFile(out)).equals(b.bytes)).toBe(true);
    if (h.kind === 'fs') expect(await readdir(join(remote.display, 'tmp'))).toEqual([]);
  });

  it('a download resumes from a parked .part, and restarts when that prefix is wrong', async () => {
    const b = await blob(randomBytes(5 * PART + 3));
    await remote.put(b.hash, b.path, b.bytes.length);

    const p1 = dest();
    await writeFile(`${p1}.part`, b.bytes.subarray(0, 2 * PART));
    const during = await requestsDuring(h, () => remote.get(b.hash, p1));
    expect((await readFile(p1)).equals(b.bytes)).toBe(true);
    expect(await leftovers(p1)).toEqual([]);
    if (during !== undefined) {
      const gets = during.filter((r) => r.method === 'GET');
      expect(gets.map((r) => r.range)).toEqual([`bytes=${2 * PART}-`]);
    }

    const p2 = dest();
    await writeFile(`${p2}.part`, randomBytes(PART));
    await remote.get(b.hash, p2);
    expect((await readFile(p2)).equals(b.bytes)).toBe(true);
    expect(await leftovers(p2)).toEqual([]);

    // A parked part that already holds everything is verified and used.
    const p3 = dest();
    await writeFile(`${p3}.part`, b.bytes);
    await remote.get(b.hash, p3);
    expect((await readFile(p3)).equals(b.bytes)).toBe(true);
    expect(await leftovers(p3)).toEqual([]);
  });

  it('two instances on one store agree (nothing is cached per instance)', async () => {
    const b = await blob(randomBytes(100));
    const other = await h.open();
    try {
      await other.put(b.hash, b.path, b.bytes.length);
      expect(await remote.has(b.hash)).toBe(true);
    } finally {
      await other.close();
    }
  });
});

describe('filesystem remote specifics', () => {
  it('resumes an upload from a parked tmp/<hash>.part, and restarts when that prefix is wrong', async () => {
    const root = join(work, 'fs-resume');
    const remote = await openRemote('shared', { url: `file://${root}` }, work);
    const b = await blob(randomBytes(3 * PART));
    await mkdir(join(root, 'tmp'), { recursive: true });
    await writeFile(join(root, 'tmp', `${b.hash}.part`), b.bytes.subarray(0, PART));
    await remote.put(b.hash, b.path, b.bytes.length);
    const c = await blob(randomBytes(3 * PART));
    await writeFile(join(root, 'tmp', `${c.hash}.part`), randomBytes(PART));
    await remote.put(c.hash, c.path, c.bytes.length);
    for (const x of [b, c]) {
      const out = dest();
      await remote.get(x.hash, out);
      expect((await readFile(out)).equals(x.bytes)).toBe(true);
    }
    expect(await readdir(join(root, 'tmp'))).toEqual([]);
    const st = await stat(join(root, 'objects', b.hash.slice(0, 2), b.hash.slice(2)));
    expect(st.mode & 0o777).toBe(0o444);
  });

  it('adopts the private file of a transfer whose process is gone', async () => {
    const root = join(work, 'fs-orphan');
    const remote = await openRemote('shared', { url: root }, work);
    const b = await blob(randomBytes(2 * PART));
    await mkdir(join(root, 'tmp'), { recursive: true });
    const orphan = join(root, 'tmp', `${b.hash}.part.some-host-12345-0123456789ab`);
    await writeFile(orphan, b.bytes.subarray(0, PART));
    const old = new Date(Date.now() - 2 * 60 * 60 * 1000);
    const { utimes } = await import('node:fs/promises');
    await utimes(orphan, old, old);
    await remote.put(b.hash, b.path, b.bytes.length);
    expect(await readdir(join(root, 'tmp'))).toEqual([]);
  });

  it('a download interrupted midway leaves no file at destPath, parks its bytes, and resumes', async () => {
    const root = join(work, 'fs-get-abort');
    const remote = await openRemote('shared', { url: root }, work);
    const b = await blob(randomBytes(4 * PART));
    await remote.put(b.hash, b.path, b.bytes.length);
    // Swap the object for a pipe we feed by hand, to stop the download halfway.
    const obj = join(root, 'objects', b.hash.slice(0, 2), b.hash.slice(2));
    const saved = join(work, `saved-${++counter}`);
    await writeFile(saved, await readFile(obj));
    await rm(obj, { force: true });
    mkfifo(obj);
    const out = dest();
    const ac = new AbortController();
    const settled = remote.get(b.hash, out, ac.signal).then(
      () => null,
      (e: unknown) => e,
    );
    const w = await open(obj, 'w');
    try {
      await w.write(b.bytes.subarray(0, 2 * PART));
      await until('half the object downloaded', async () => {
        for (const n of await leftovers(out)) if ((await stat(join(out, '..', n))).size >= 2 * PART) return true;
        return false;
      });
      expect(existsSync(out)).toBe(false);
      ac.abort();
    } finally {
      await w.close();
    }
    expect(isHpcflowError(await settled, 'HPCFLOW_ABORTED')).toBe(true);
    expect(existsSync(out)).toBe(false);
    expect(await leftovers(out)).toEqual([`${out.slice(out.lastIndexOf('/') + 1)}.part`]);
    await rm(obj);
    await writeFile(obj, await readFile(saved));
    await remote.get(b.hash, out);
    expect((await readFile(out)).equals(b.bytes)).toBe(true);
    expect(await leftovers(out)).toEqual([]);
  });

  it('refuses to create a remote whose parent directory does not exist', async () => {
    const remote = await openRemote('shared', { url: join(work, 'not-mounted', 'store') }, work);
    const b = await blob(randomBytes(10));
    await expectCode(remote.put(b.hash, b.path, 10), 'HPCFLOW_USAGE');
    expect(await remote.has(b.hash)).toBe(false);
  });
});

describe('S3 remote specifics', () => {
  let server: S3TestServer;
  beforeAll(async () => {
    server = await startS3Server({ multipartListing: true });
    servers.push(server);
  });

  it('resumes a pre-created multipart upload, reusing only the parts that match', async () => {
    const remote = await openRemote('bucket', { url: `s3://${server.bucket}/${PREFIX}`, endpoint: server.endpoint, ...LIMITS }, work);
    const client = new S3Client({ endpoint: server.endpoint, region: 'us-east-1', forcePathStyle: true, credentials: S3RVER_CREDENTIALS });
    const b = await blob(randomBytes(5 * PART + 10));
    const key = `${PREFIX}/objects/${b.hash.slice(0, 2)}/${b.hash.slice(2)}`;
    const { UploadId } = await client.send(new CreateMultipartUploadCommand({ Bucket: server.bucket, Key: key, Metadata: { blake3: b.hash } }));
    const part = (n: number): Buffer => b.bytes.subarray((n - 1) * PART, n * PART);
    const send = (n: number, body: Buffer) =>
      client.send(new UploadPartCommand({ Bucket: server.bucket, Key: key, UploadId, PartNumber: n, Body: body, ContentLength: body.length }));
    await send(1, part(1)); // right
    await send(2, randomBytes(PART)); // right size, wrong bytes (an older version of the file)
    await send(3, part(3).subarray(0, 100)); // cut short
    await send(4, part(4)); // right
    const before = (await server.requests()).length;
    await remote.put(b.hash, b.path, b.bytes.length);
    const after = (await server.requests()).slice(before);
    const sent = after
      .filter((r) => r.method === 'PUT' && 'partNumber' in r.query)
      .map((r) => Number(r.query.partNumber));
    expect(sent.sort()).toEqual([2, 3, 5, 6]);
    expect(after.some((r) => r.method === 'POST' && r.query.uploadId === UploadId)).toBe(true);
    const out = dest();
    await remote.get(b.hash, out);
    expect((await readFile(out)).equals(b.bytes)).toBe(true);
    client.destroy();
    await remote.close();
  });

  it('hasMany pages through a shard listing', async () => {
    const remote = new S3Remote('bucket', { bucket: server.bucket, prefix: 'paged', endpoint: server.endpoint, listPageSize: 2 });
    // Contents whose hashes share a shard.
    const shard = hashBytes('shard seed').slice(0, 2);
    const inShard: Blob[] = [];
    for (let i = 0; inShard.length < 6; i++) {
      const bytes = Buffer.from(`object ${i}`);
      if (hashBytes(bytes).startsWith(shard)) inShard.push(await blob(bytes));
    }
    for (const b of inShard) await remote.put(b.hash, b.path, b.bytes.length);
    const present = inShard.slice(0, 4).map((b) => b.hash);
    // Absent ones around and between them, including both ends of the shard: 20 hashes, so up
    // to 3 pages of 2 keys are listed before the rest are looked up one by one.
    const fakes = ['01', '20', '3f', '55', '7f', '80', 'a0', 'c3', 'e0', 'fe'].map((p) => `${shard}${p}${'0'.repeat(60)}`);
    const queried = [...present, ...fakes, `${shard}${'f'.repeat(62)}`, `${shard}${'0'.repeat(62)}`, ...present.map((h) => `${h.slice(0, -1)}${h.endsWith('0') ? '1' : '0'}`)];
    const before = (await server.requests()).length;
    expect(await remote.hasMany(queried)).toEqual(new Set(present));
    const lists = (await server.requests()).slice(before).filter((r) => r.query['list-type'] === '2');
    expect(queried.length).toBe(20);
    expect(lists.length).toBe(3);
    expect(lists.slice(1).every((r) => 'continuation-token' in r.query)).toBe(true);
    expect(await remote.hasMany(inShard.map((b) => b.hash))).toEqual(new Set(inShard.map((b) => b.hash)));
    await remote.close();
  });

  it('never puts the secret key into an error message', async () => {
    const secret = 'fake-secret-Kq7vX2pLm9';
    const saved = { id: process.env.AWS_ACCESS_KEY_ID, secret: process.env.AWS_SECRET_ACCESS_KEY };
    // s3rver does not check SigV4 signatures, only key ids: an unknown id makes it refuse.
    process.env.AWS_ACCESS_KEY_ID = 'AKIDNOTKNOWNHERE';
    process.env.AWS_SECRET_ACCESS_KEY = secret;
    // And a server that (absurdly) echoes the secret back in its error message.
    const echo = createServer((req, res) => {
      req.resume();
      res.writeHead(500, { 'content-type': 'application/xml' });
      res.end(`<?xml version="1.0" encoding="UTF-8"?><Error><Code>InternalError</Code><Message>bad key ${secret}</Message></Error>`);
    });
    await new Promise<void>((resolve) => echo.listen(0, '127.0.0.1', resolve));
    const echoPort = (echo.address() as AddressInfo).port;
    try {
      const refusing = await openRemote('bucket', { url: `s3://${server.bucket}/${PREFIX}`, endpoint: server.endpoint }, work);
      const echoing = await openRemote('echo', { url: 's3://any/prefix', endpoint: `http://127.0.0.1:${echoPort}` }, work);
      const b = await blob(randomBytes(100));
      const errors = [
        await expectCode(refusing.put(b.hash, b.path, 100), 'HPCFLOW_USAGE'),
        await expectCode(refusing.has(b.hash), 'HPCFLOW_USAGE'),
        await expectCode(refusing.get(b.hash, dest()), 'HPCFLOW_USAGE'),
        await expectCode(echoing.has(b.hash), 'HPCFLOW_ENGINE_UNAVAILABLE'),
        await expectCode(echoing.get(b.hash, dest()), 'HPCFLOW_ENGINE_UNAVAILABLE'),
      ];
      for (const e of errors) {
        const text = `${e.message}\n${(e as { hint?: string }).hint ?? ''}\n${e.stack ?? ''}\n${String(e.cause ?? '')}`;
        expect(text).not.toContain(secret);
      }
      expect(errors[0]?.message).toContain(refusing.display);
      expect(errors[0]?.message).toContain('access denied (HTTP 403)');
      expect(errors[2]?.message).toContain('InvalidAccessKeyId');
      expect(errors[4]?.message).toContain('bad key ***');
      await refusing.close();
      await echoing.close();
    } finally {
      process.env.AWS_ACCESS_KEY_ID = saved.id;
      process.env.AWS_SECRET_ACCESS_KEY = saved.secret;
      await new Promise((resolve) => echo.close(resolve));
    }
  });
});
