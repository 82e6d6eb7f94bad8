/**
 * A real S3-compatible server for tests: s3rver (a Node implementation backed by a directory),
 * on 127.0.0.1 with an ephemeral port and a temp directory, one bucket created. It runs in a
 * child process (this module, forked) so that it can be given `--openssl-legacy-provider`: s3rver
 * encrypts ListObjectsV2 continuation tokens with DES, which OpenSSL 3 refuses, so without it
 * every truncated listing fails with a 500. The child reports each request it answered over IPC.
 *
 * It works with the current @aws-sdk/client-s3 as configured by S3Remote (path-style addressing,
 * `requestChecksumCalculation`/`responseChecksumValidation: 'WHEN_REQUIRED'`, bodies sent as
 * buffers with a known length). What s3rver 3.7 lacks, and so what these tests cannot show:
 * - SigV4 signature checks: it only checks that the access key id is known (S3RVER), so a
 *   wrong secret is accepted; a wrong key id is refused with InvalidAccessKeyId.
 * - ListMultipartUploads (501 NotImplemented), ListParts and AbortMultipartUpload (405
 *   MethodNotAllowed). With `multipartListing: true` this helper answers those three calls
 *   itself from s3rver's upload directory (without auth), so the resumable multipart path is
 *   exercised; without it the remote's fallback (a fresh upload every time) is.
 * - Atomic PUTs: s3rver writes an object straight into its final file, so a PUT cut off midway
 *   leaves a truncated object (real S3 never shows one). The remote copes (a put compares size
 *   and the BLAKE3 label before skipping), but tests only assert atomicity for multipart uploads.
 * - Content-MD5 is not verified; part ETags are MD5s (as on S3 without KMS encryption).
 * - The newer flexible checksums (aws-chunked bodies with CRC trailers) are not decoded.
 */
import { fork } from 'node:child_process';
import { mkdtemp, readFile, readdir, rm, stat } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** One request the server answered. */
export interface RecordedRequest {
  readonly method: string;
  readonly path: string;
  readonly query: Readonly<Record<string, string>>;
  readonly range: string | undefined;
  readonly status: number;
}

export interface S3TestServer {
  /** `http://127.0.0.1:<port>`. */
  readonly endpoint: string;
  readonly bucket: string;
  /** Where s3rver keeps its data. */
  readonly dir: string;
  /** Every request answered so far, in order of completion (complete up to the call). */
  requests(): Promise<RecordedRequest[]>;
  stop(): Promise<void>;
}

export interface S3ServerOptions {
  /** Answer ListMultipartUploads, ListParts and AbortMultipartUpload (see module doc). */
  readonly multipartListing?: boolean;
}

/** The credentials s3rver accepts by default. */
export const S3RVER_CREDENTIALS = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' } as const;

const CHILD_ENV = 'HPCFLOW_TEST_S3RVER';

interface ChildConfig {
  readonly dir: string;
  readonly bucket: string;
  readonly multipartListing: boolean;
}
type ToParent = { type: 'ready'; port: number } | { type: 'request'; request: RecordedRequest } | { type: 'pong'; id: number };
type ToChild = { type: 'ping'; id: number } | { type: 'stop' };

export async function startS3Server(opts: S3ServerOptions = {}): Promise<S3TestServer> {
  const dir = await mkdtemp(join(tmpdir(), 'hpcflow-s3rver-'));
  const cfg: ChildConfig = { dir, bucket: 'hpcflow-test', multipartListing: opts.multipartListing === true };
  const child = fork(fileURLToPath(import.meta.url), [], {
    execArgv: ['--openssl-legacy-provider', '--import', 'tsx'],
    env: { ...process.env, [CHILD_ENV]: JSON.stringify(cfg) },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const requests: RecordedRequest[] = [];
  const pongs = new Map<number, () => void>();
  let nextPing = 0;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const port = await new Promise<number>((resolve, reject) => {
    child.on('message', (m: ToParent) => {
      if (m.type === 'ready') resolve(m.port);
      else if (m.type === 'request') requests.push(m.request);
      else pongs.get(m.id)?.();
    });
    child.once('exit', (code) => reject(new Error(`s3rver exited early (${String(code)})`)));
  });
  const send = (m: ToChild): void => void child.send(m);
  return {
    endpoint: `http://127.0.0.1:${port}`,
    bucket: cfg.bucket,
    dir,
    async requests() {
      // IPC is ordered: once the pong is back, every earlier request report has arrived.
      const id = nextPing++;
      await new Promise<void>((resolve) => {
        pongs.set(id, resolve);
        send({ type: 'ping', id });
      });
      pongs.delete(id);
      return [...requests];
    },
    async stop() {
      if (child.exitCode === null) send({ type: 'stop' });
      await exited;
      await rm(dir, { recursive: true, force: true });
    },
  };
}

// ---------------------------------------------------------------------------------------------
// The child: s3rver plus request reports and the optional multipart-listing calls.
// ---------------------------------------------------------------------------------------------

/** The parts of Koa's context this helper touches. */
interface KoaContext {
  method: string;
  path: string;
  query: Record<string, string | string[] | undefined>;
  status: number;
  body: unknown;
  type: string;
  get(header: string): string;
}
type Middleware = (ctx: KoaContext, next: () => Promise<void>) => Promise<void>;

interface S3rverInstance {
  middleware: Middleware[];
  store: { getResourcePath(bucket: string, key: string | undefined, resource: string): string };
  run(): Promise<{ port: number }>;
  close(): Promise<void>;
}
type S3rverCtor = new (opts: Record<string, unknown>) => S3rverInstance;

async function runChild(cfg: ChildConfig, toParent: (m: ToParent) => void): Promise<void> {
  const require = createRequire(import.meta.url);
  const S3rver = require('s3rver') as S3rverCtor;
  const server = new S3rver({
    address: '127.0.0.1',
    port: 0,
    silent: true,
    directory: cfg.dir,
    configureBuckets: [{ name: cfg.bucket }],
  });
  const record: Middleware = async (ctx, next) => {
    try {
      await next();
    } finally {
      const query: Record<string, string> = {};
      for (const [k, v] of Object.entries(ctx.query)) query[k] = Array.isArray(v) ? v.join(',') : (v ?? '');
      const range = ctx.get('range');
      toParent({ type: 'request', request: { method: ctx.method, path: ctx.path, query, range: range === '' ? undefined : range, status: ctx.status } });
    }
  };
  server.middleware.unshift(record);
  if (cfg.multipartListing) {
    // Just before s3rver's router (the last middleware), after its path/vhost handling.
    server.middleware.splice(server.middleware.length - 1, 0, multipartListing(server));
  }
  const { port } = await server.run();
  process.on('message', (m: ToChild) => {
    if (m.type === 'ping') toParent({ type: 'pong', id: m.id });
    else void server.close().finally(() => process.exit(0));
  });
  toParent({ type: 'ready', port });
}

if (process.env[CHILD_ENV] !== undefined && process.send !== undefined) {
  const cfg = JSON.parse(process.env[CHILD_ENV]) as ChildConfig;
  const toParent = (m: ToParent): void => void process.send?.(m);
  // Never outlive the test process.
  process.on('disconnect', () => process.exit(0));
  runChild(cfg, toParent).catch((e: unknown) => {
    console.error(e);
    process.exit(1);
  });
}

const xmlEscape = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

function xml(ctx: KoaContext, body: string, status = 200): void {
  ctx.status = status;
  ctx.type = 'application/xml';
  ctx.body = `<?xml version="1.0" encoding="UTF-8"?>\n${body}`;
}

/** ListMultipartUploads / ListParts / AbortMultipartUpload over s3rver's upload directory. */
function multipartListing(server: S3rverInstance): Middleware {
  const uploadsDir = (bucket: string): string => server.store.getResourcePath(bucket, undefined, 'uploads');
  return async (ctx, next) => {
    const m = /^\/([^/]+)(?:\/(.*))?$/.exec(ctx.path);
    if (m === null) return next();
    const bucket = m[1] as string;
    const key = m[2] === undefined || m[2] === '' ? undefined : decodeURIComponent(m[2]);
    const q = ctx.query;
    if (ctx.method === 'GET' && key === undefined && 'uploads' in q) {
      const prefix = typeof q.prefix === 'string' ? q.prefix : '';
      let ids: string[] = [];
      try {
        ids = await readdir(uploadsDir(bucket));
      } catch {
        /* no uploads yet */
      }
      const items: string[] = [];
      for (const id of ids) {
        const d = join(uploadsDir(bucket), id);
        const k = await readFile(join(d, 'key'), 'utf8').catch(() => null);
        if (k === null || !k.startsWith(prefix)) continue;
        const initiated = (await stat(d)).birthtime.toISOString();
        items.push(`<Upload><Key>${xmlEscape(k)}</Key><UploadId>${id}</UploadId><Initiated>${initiated}</Initiated><StorageClass>STANDARD</StorageClass></Upload>`);
      }
      xml(
        ctx,
        `<ListMultipartUploadsResult><Bucket>${xmlEscape(bucket)}</Bucket><Prefix>${xmlEscape(prefix)}</Prefix><MaxUploads>1000</MaxUploads><IsTruncated>false</IsTruncated>${items.join('')}</ListMultipartUploadsResult>`,
      );
      return;
    }
    const uploadId = typeof q.uploadId === 'string' ? q.uploadId : undefined;
    if (key !== undefined && uploadId !== undefined && /^[0-9a-f]+$/.test(uploadId) && (ctx.method === 'GET' || ctx.method === 'DELETE')) {
      const d = join(uploadsDir(bucket), uploadId);
      let names: string[];
      try {
        names = await readdir(d);
      } catch {
        xml(ctx, `<Error><Code>NoSuchUpload</Code><Message>The specified upload does not exist.</Message><UploadId>${uploadId}</UploadId></Error>`, 404);
        return;
      }
      if (ctx.method === 'DELETE') {
        await rm(d, { recursive: true, force: true });
        ctx.status = 204;
        ctx.body = '';
        return;
      }
      const parts: string[] = [];
      const numbers = names.filter((n) => /^\d+$/.test(n)).map(Number).sort((a, b) => a - b);
      for (const n of numbers) {
        // s3rver writes `<n>.md5` once the part is complete; a part without it is still arriving.
        const md5 = await readFile(join(d, `${n}.md5`), 'utf8').catch(() => null);
        if (md5 === null) continue;
        const st = await stat(join(d, String(n)));
        parts.push(`<Part><PartNumber>${n}</PartNumber><LastModified>${st.mtime.toISOString()}</LastModified><ETag>"${md5.trim()}"</ETag><Size>${st.size}</Size></Part>`);
      }
      xml(
        ctx,
        `<ListPartsResult><Bucket>${xmlEscape(bucket)}</Bucket><Key>${xmlEscape(key)}</Key><UploadId>${uploadId}</UploadId><PartNumberMarker>0</PartNumberMarker><MaxParts>10000</MaxParts><IsTruncated>false</IsTruncated>${parts.join('')}</ListPartsResult>`,
      );
      return;
    }
    return next();
  };
}
