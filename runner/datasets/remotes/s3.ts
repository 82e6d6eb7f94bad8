/**
 * A dataset remote in an S3-compatible object store (AWS S3, MinIO, Ceph RGW, …).
 *
 * Keys: `<prefix>/objects/<2 hex>/<62 hex>`; each object carries its BLAKE3 as user metadata
 * (`x-amz-meta-blake3`), so a listing tool can tell what an object should be.
 *
 * - Upload: the bytes sent are the bytes hashed. Objects up to `multipartThreshold` are read into
 *   memory, checked against `hash` and sent with one PutObject (S3 never shows a partial PUT).
 *   Larger ones go through a multipart upload, read part by part while being hashed; the upload
 *   is completed (which is when the object appears) only if the whole file hashed to `hash`.
 *   An interrupted multipart upload is resumed: ListMultipartUploads finds the pending upload of
 *   the key and ListParts its parts; a part is reused only if its size and its ETag (the MD5 of
 *   the part on servers without KMS/customer-key encryption) match the local bytes, so a part
 *   from an older version of the file is sent again. Servers that do not implement those two
 *   calls get a fresh multipart upload every time (correct, just not resumed).
 * - Download: GetObject streamed into `<destPath>.part` (resumed with a Range request), verified,
 *   renamed; the protocol is shared with the filesystem remote (`receiveVerified` in fs.ts).
 * - Checksums: the SDK's newer "flexible checksums" (CRC trailers) are switched off
 *   (`WHEN_REQUIRED`) because many S3-compatible servers reject them; integrity on the wire comes
 *   from Content-MD5 on every PutObject/UploadPart (checked by S3 and most compatible servers)
 *   and, end to end, from the BLAKE3 checks on both sides.
 * - Credentials: only the SDK's default provider chain (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY,
 *   AWS_PROFILE, SSO, instance roles…). Messages never include them: SDK messages are passed
 *   through {@link redactSecrets}.
 */
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  ListPartsCommand,
  PutObjectCommand,
  S3Client,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import type { CompletedPart } from '@aws-sdk/client-s3';
import { createHash } from 'node:crypto';
import { open, readFile } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { HpcflowError, isHpcflowError } from '../../errors.js';
import { hashBytes } from '../../fingerprint/hash-file.js';
import { Blake3Hasher } from '../../util/blake3.js';
import { createLimiter } from '../../util/pool.js';
import { abortedError, checkHash, checkSize, errCode, groupByShard, isAbort, KeyedSerial, receiveVerified, throwIfAborted } from './fs.js';
import type { Remote } from './remote.js';

export const DEFAULT_MULTIPART_THRESHOLD = 64 * 1024 * 1024;
export const DEFAULT_PART_SIZE = 16 * 1024 * 1024;
/** S3 allows at most this many parts; larger files get proportionally larger parts. */
const MAX_PARTS = 10_000;
/** Metadata key of the object's BLAKE3 (sent as `x-amz-meta-blake3`). */
const META_KEY = 'blake3';

/**
 * hasMany: parallel requests. Each is a round trip of a few ms to a remote endpoint, so 16 in
 * flight keep a link busy without tripping request-rate limits.
 */
const HAS_CONCURRENCY = 16;
/**
 * hasMany lists a shard (`objects/ab/`) instead of sending HEADs once at least this many queried
 * hashes fall into it. Why: one ListObjectsV2 page answers up to 1000 keys for the price of one
 * HEAD, so for a push of a few thousand objects (≈ 10+ per shard over 256 shards) listing costs
 * ~256 requests where HEADs cost thousands. Listing only loses when the shard holds far more
 * keys than we ask about, so sparse shards still use HEAD, and a listing starts just before the
 * smallest queried key and stops after the largest.
 */
const LIST_MIN = 8;

export interface S3RemoteOptions {
  readonly bucket: string;
  /** Key prefix without leading/trailing slashes ('' for the bucket root). */
  readonly prefix: string;
  readonly endpoint?: string;
  readonly region?: string;
  readonly forcePathStyle?: boolean;
  readonly multipartThreshold?: number;
  readonly partSize?: number;
  /** Keys per ListObjectsV2 page (default: the server's, ≤ 1000). For tests. */
  readonly listPageSize?: number;
}

/** Replaces every credential the environment holds with `***`. */
export function redactSecrets(text: string): string {
  let out = text;
  for (const v of ['AWS_SECRET_ACCESS_KEY', 'AWS_SESSION_TOKEN', 'AWS_SECURITY_TOKEN']) {
    const secret = process.env[v];
    if (secret !== undefined && secret.length >= 4) out = out.split(secret).join('***');
  }
  return out;
}

/** The SDK error's name/code, HTTP status and (redacted) message. */
function describeSdkError(e: unknown): { name: string; status: number | undefined; message: string } {
  const err = e as { name?: unknown; Code?: unknown; message?: unknown; $metadata?: { httpStatusCode?: number } } | null;
  const name = typeof err?.name === 'string' ? err.name : typeof err?.Code === 'string' ? err.Code : 'Error';
  const raw = typeof err?.message === 'string' && err.message !== '' ? err.message : String(e);
  return { name, status: err?.$metadata?.httpStatusCode, message: redactSecrets(raw) };
}

const AUTH_ERRORS = new Set([
  'CredentialsProviderError',
  'InvalidAccessKeyId',
  'SignatureDoesNotMatch',
  'AccessDenied',
  'ExpiredToken',
  'InvalidToken',
  'TokenRefreshRequired',
  'AuthorizationHeaderMalformed',
  'InvalidSignatureException',
]);
const STATUS_TEXT: Readonly<Record<number, string>> = {
  400: 'bad request',
  401: 'not authenticated',
  403: 'access denied',
  404: 'not found',
  500: 'server error',
  502: 'bad gateway',
  503: 'service unavailable',
  504: 'gateway timeout',
};
const UNSUPPORTED = new Set(['NotImplemented', 'MethodNotAllowed', 'InvalidRequest']);

/** The object is absent (a HEAD has no body, so a missing bucket looks the same there). */
function isNotFound(e: unknown): boolean {
  const { name, status } = describeSdkError(e);
  return name === 'NoSuchKey' || name === 'NotFound' || (status === 404 && name !== 'NoSuchBucket' && name !== 'NoSuchUpload');
}

/** Strips `user:password@` from a URL for display. */
function displayEndpoint(endpoint: string): string {
  try {
    const u = new URL(endpoint);
    u.username = '';
    u.password = '';
    return u.toString().replace(/\/$/, '');
  } catch {
    return '(invalid endpoint)';
  }
}

function sendOpts(signal: AbortSignal | undefined): { abortSignal?: AbortSignal } {
  return signal === undefined ? {} : { abortSignal: signal };
}

function md5(buf: Buffer): Buffer {
  return createHash('md5').update(buf).digest();
}

/** A pending multipart upload and the parts the server already has. */
interface PendingUpload {
  readonly uploadId: string;
  readonly parts: ReadonlyMap<number, { readonly size: number; readonly etag: string }>;
}

export class S3Remote implements Remote {
  readonly name: string;
  readonly display: string;
  readonly bucket: string;
  readonly prefix: string;
  readonly multipartThreshold: number;
  readonly partSize: number;
  readonly #client: S3Client;
  readonly #listPageSize: number | undefined;
  readonly #serial = new KeyedSerial();

  constructor(name: string, opts: S3RemoteOptions) {
    this.name = name;
    this.bucket = opts.bucket;
    this.prefix = opts.prefix.replace(/^\/+|\/+$/g, '');
    this.multipartThreshold = opts.multipartThreshold ?? DEFAULT_MULTIPART_THRESHOLD;
    this.partSize = opts.partSize ?? DEFAULT_PART_SIZE;
    this.#listPageSize = opts.listPageSize;
    for (const [k, v] of [
      ['multipartThreshold', this.multipartThreshold],
      ['partSize', this.partSize],
    ] as const) {
      if (!Number.isSafeInteger(v) || v < 1) throw new HpcflowError('HPCFLOW_USAGE', `remote "${name}": ${k} must be a positive byte count, got ${String(v)}`);
    }
    const where = `s3://${this.bucket}${this.prefix === '' ? '' : `/${this.prefix}`}`;
    this.display = opts.endpoint === undefined ? where : `${where} at ${displayEndpoint(opts.endpoint)}`;
    // The SDK warns on every start under Node 20 that future releases will need Node 22; the
    // lockfile pins a release that supports Node 20, so the warning is only noise for users.
    process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
    this.#client = new S3Client({
      region: opts.region ?? 'us-east-1',
      ...(opts.endpoint !== undefined ? { endpoint: opts.endpoint } : {}),
      forcePathStyle: opts.forcePathStyle ?? opts.endpoint !== undefined,
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
    });
  }

  /** The key of object `hash`. */
  key(hash: string): string {
    checkHash(hash);
    const rel = `objects/${hash.slice(0, 2)}/${hash.slice(2)}`;
    return this.prefix === '' ? rel : `${this.prefix}/${rel}`;
  }

  async has(hash: string): Promise<boolean> {
    return (await this.#head(hash, undefined)) !== null;
  }

  async hasMany(hashes: readonly string[]): Promise<Set<string>> {
    const byShard = groupByShard(hashes);
    const found = new Set<string>();
    const limit = createLimiter(HAS_CONCURRENCY);
    const head = (h: string): Promise<void> =>
      limit(async () => {
        if (await this.has(h)) found.add(h);
      });
    const unresolved: string[] = [];
    const jobs: Array<Promise<void>> = [];
    for (const list of byShard.values()) {
      if (list.length >= LIST_MIN) jobs.push(limit(async () => void unresolved.push(...(await this.#listShard(list, found)))));
      else jobs.push(...list.map(head));
    }
    await Promise.all(jobs);
    await Promise.all(unresolved.map(head));
    return found;
  }

  /**
   * Lists one shard from just below the smallest to the largest of `list` (all in that shard).
   * A shard far denser than the query (a huge store) would take many pages, so after
   * `list.length / LIST_MIN` pages it stops and returns the hashes not yet passed, for HEADs:
   * the cost stays within ~1.1× that of HEADs alone and is usually a single request.
   */
  async #listShard(list: readonly string[], found: Set<string>): Promise<string[]> {
    const wanted = new Map(list.map((h) => [this.key(h), h]));
    const keys = [...wanted.keys()].sort();
    const first = keys[0] as string;
    const last = keys[keys.length - 1] as string;
    const shardPrefix = first.slice(0, first.length - 62);
    // StartAfter is exclusive: `first` without its last digit sorts just below it (at most 15
    // other keys lie in between).
    const startAfter = first.slice(0, -1);
    const maxPages = Math.ceil(list.length / LIST_MIN);
    let token: string | undefined;
    let seen = startAfter;
    for (let page = 1; ; page++) {
      const cmd = new ListObjectsV2Command({
        Bucket: this.bucket,
        Prefix: shardPrefix,
        ...(token === undefined ? { StartAfter: startAfter } : { ContinuationToken: token }),
        ...(this.#listPageSize !== undefined ? { MaxKeys: this.#listPageSize } : {}),
      });
      const r = await this.#call((o) => this.#client.send(cmd, o), undefined, 'list objects');
      for (const o of r.Contents ?? []) {
        if (o.Key === undefined) continue;
        const h = wanted.get(o.Key);
        if (h !== undefined) found.add(h);
        if (o.Key > seen) seen = o.Key;
      }
      if (seen >= last || r.IsTruncated !== true) return [];
      token = r.NextContinuationToken;
      if (token === undefined || page >= maxPages) return keys.filter((k) => k > seen).map((k) => wanted.get(k) as string);
    }
  }

  async put(hash: string, localPath: string, size: number, signal?: AbortSignal): Promise<void> {
    const key = this.key(hash);
    checkSize(size);
    throwIfAborted(signal);
    await this.#serial.run(hash, async () => {
      throwIfAborted(signal);
      // Present, complete and labelled with this hash: done. Anything else is replaced.
      const head = await this.#head(hash, signal);
      if (head !== null && head.size === size && head.blake3 === hash) return;
      if (size <= this.multipartThreshold) await this.#putSmall(hash, key, localPath, size, signal);
      else await this.#putMultipart(hash, key, localPath, size, signal);
    });
  }

  async #putSmall(hash: string, key: string, localPath: string, size: number, signal: AbortSignal | undefined): Promise<void> {
    let buf: Buffer;
    try {
      buf = await readFile(localPath, signal === undefined ? {} : { signal });
    } catch (e) {
      if (isAbort(e, signal)) throw abortedError(signal);
      throw this.#localError(e, localPath);
    }
    const body = buf.length > size ? buf.subarray(0, size) : buf;
    const got = hashBytes(body);
    if (body.length !== size || got !== hash) throw this.#localMismatch(hash, localPath, got, body.length, size);
    const cmd = new PutObjectCommand({
      Bucket: this.bucket,
      Key: key,
      Body: body,
      ContentLength: size,
      ContentMD5: md5(body).toString('base64'),
      Metadata: { [META_KEY]: hash },
    });
    await this.#call((o) => this.#client.send(cmd, o), signal, `upload object ${hash}`);
  }

  async #putMultipart(hash: string, key: string, localPath: string, size: number, signal: AbortSignal | undefined): Promise<void> {
    const partSize = Math.max(this.partSize, Math.ceil(size / MAX_PARTS));
    const count = Math.ceil(size / partSize);
    const pending = await this.#findUpload(key, signal);
    let uploadId = pending?.uploadId;
    if (uploadId === undefined) {
      const cmd = new CreateMultipartUploadCommand({ Bucket: this.bucket, Key: key, Metadata: { [META_KEY]: hash } });
      uploadId = (await this.#call((o) => this.#client.send(cmd, o), signal, `start uploading object ${hash}`)).UploadId;
    }
    if (uploadId === undefined) throw this.#failure(new Error('the server returned no upload id'), `start uploading object ${hash}`);

    const hasher = new Blake3Hasher();
    const done: CompletedPart[] = [];
    let fh;
    try {
      fh = await open(localPath, 'r');
    } catch (e) {
      throw this.#localError(e, localPath);
    }
    try {
      const buf = Buffer.allocUnsafe(Math.min(partSize, size));
      let read = 0;
      for (let n = 1; n <= count; n++) {
        const len = Math.min(partSize, size - read);
        // Sequential reads (position null): the hash needs the bytes in order anyway.
        let filled = 0;
        while (filled < len) {
          throwIfAborted(signal);
          let r;
          try {
            r = await fh.read(buf, filled, len - filled, null);
          } catch (e) {
            throw this.#localError(e, localPath);
          }
          if (r.bytesRead === 0) break;
          filled += r.bytesRead;
        }
        throwIfAborted(signal);
        const part = buf.subarray(0, filled);
        hasher.update(part);
        read += filled;
        if (filled < len) {
          await this.#abortUpload(key, uploadId);
          throw this.#localMismatch(hash, localPath, hasher.digest('hex'), read, size);
        }
        const digest = md5(part);
        const have = pending?.parts.get(n);
        if (have !== undefined && have.size === len && have.etag.replace(/"/g, '').toLowerCase() === digest.toString('hex')) {
          done.push({ PartNumber: n, ETag: have.etag });
          continue;
        }
        const cmd = new UploadPartCommand({
          Bucket: this.bucket,
          Key: key,
          UploadId: uploadId,
          PartNumber: n,
          Body: part,
          ContentLength: len,
          ContentMD5: digest.toString('base64'),
        });
        const r = await this.#call((o) => this.#client.send(cmd, o), signal, `upload part ${n} of object ${hash}`);
        done.push({ PartNumber: n, ETag: r.ETag ?? `"${digest.toString('hex')}"` });
      }
    } finally {
      await fh.close();
    }
    const got = hasher.digest('hex');
    if (got !== hash) {
      await this.#abortUpload(key, uploadId);
      throw this.#localMismatch(hash, localPath, got, size, size);
    }
    const complete = new CompleteMultipartUploadCommand({ Bucket: this.bucket, Key: key, UploadId: uploadId, MultipartUpload: { Parts: done } });
    try {
      await this.#client.send(complete, sendOpts(signal));
    } catch (e) {
      if (isAbort(e, signal)) throw abortedError(signal);
      // Another process resuming the same upload may have completed it first (S3 then answers
      // NoSuchUpload, some servers a 500), or the answer to ours was lost: if the object is
      // there, complete and labelled, the upload has succeeded.
      const head = await this.#head(hash, signal).catch(() => null);
      if (head !== null && head.size === size && head.blake3 === hash) return;
      throw this.#failure(e, `finish uploading object ${hash}`);
    }
  }

  /**
   * The newest pending multipart upload of `key` with its parts, or null when there is none or
   * the server lacks ListMultipartUploads/ListParts (then the upload starts afresh).
   */
  async #findUpload(key: string, signal: AbortSignal | undefined): Promise<PendingUpload | null> {
    try {
      const r = await this.#client.send(new ListMultipartUploadsCommand({ Bucket: this.bucket, Prefix: key }), sendOpts(signal));
      const ups = (r.Uploads ?? []).filter((u) => u.Key === key && u.UploadId !== undefined);
      ups.sort((a, b) => (b.Initiated?.getTime() ?? 0) - (a.Initiated?.getTime() ?? 0));
      const up = ups[0];
      if (up === undefined) return null;
      const uploadId = up.UploadId as string;
      const parts = new Map<number, { size: number; etag: string }>();
      let marker: string | undefined;
      for (;;) {
        const lp = await this.#client.send(
          new ListPartsCommand({ Bucket: this.bucket, Key: key, UploadId: uploadId, ...(marker !== undefined ? { PartNumberMarker: marker } : {}) }),
          sendOpts(signal),
        );
        for (const p of lp.Parts ?? []) {
          if (p.PartNumber !== undefined && p.Size !== undefined && p.ETag !== undefined) parts.set(p.PartNumber, { size: p.Size, etag: p.ETag });
        }
        if (lp.IsTruncated !== true || lp.NextPartNumberMarker === undefined) break;
        marker = lp.NextPartNumberMarker;
      }
      return { uploadId, parts };
    } catch (e) {
      if (isAbort(e, signal)) throw abortedError(signal);
      const { name, status } = describeSdkError(e);
      if (UNSUPPORTED.has(name) || status === 501 || status === 405 || name === 'NoSuchUpload') return null;
      throw this.#failure(e, 'look for an interrupted upload');
    }
  }

  /** Best effort: servers without AbortMultipartUpload keep the parts until their own cleanup. */
  async #abortUpload(key: string, uploadId: string): Promise<void> {
    try {
      await this.#client.send(new AbortMultipartUploadCommand({ Bucket: this.bucket, Key: key, UploadId: uploadId }));
    } catch {
      /* see above */
    }
  }

  async get(hash: string, destPath: string, signal?: AbortSignal): Promise<void> {
    const key = this.key(hash);
    await receiveVerified({
      hash,
      destPath,
      signal,
      where: `on remote "${this.name}" (${this.display})`,
      open: async (offset) => {
        let r;
        try {
          r = await this.#client.send(
            new GetObjectCommand({ Bucket: this.bucket, Key: key, ...(offset > 0 ? { Range: `bytes=${offset}-` } : {}) }),
            sendOpts(signal),
          );
        } catch (e) {
          if (isAbort(e, signal)) throw abortedError(signal);
          if (isNotFound(e)) throw this.#missing(hash);
          // The parked part already holds the whole object (or more): verify what is there.
          if (offset > 0 && (describeSdkError(e).name === 'InvalidRange' || describeSdkError(e).status === 416)) {
            return { stream: Readable.from([]), start: offset };
          }
          throw this.#failure(e, `download object ${hash}`);
        }
        const body = r.Body as Readable | undefined;
        const stream = body ?? Readable.from([]);
        if (offset === 0) return { stream, start: 0 };
        // A server that ignores Range answers 200 with the whole object.
        const m = /^bytes (\d+)-/.exec(r.ContentRange ?? '');
        return { stream, start: m === null ? 0 : Number(m[1]) };
      },
      failure: (e) => this.#failure(e, `download object ${hash}`),
    });
  }

  async close(): Promise<void> {
    this.#client.destroy();
  }

  /** Size and BLAKE3 label of object `hash`, or null when absent. */
  async #head(hash: string, signal: AbortSignal | undefined): Promise<{ size: number; blake3: string | undefined } | null> {
    try {
      const r = await this.#client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: this.key(hash) }), sendOpts(signal));
      return { size: r.ContentLength ?? 0, blake3: r.Metadata?.[META_KEY] };
    } catch (e) {
      if (isAbort(e, signal)) throw abortedError(signal);
      if (isNotFound(e)) return null;
      throw this.#failure(e, `look up object ${hash}`);
    }
  }

  /** Runs one SDK call, turning its failure into a clear error (or HPCFLOW_ABORTED). */
  async #call<T>(fn: (opts: { abortSignal?: AbortSignal }) => Promise<T>, signal: AbortSignal | undefined, what: string): Promise<T> {
    try {
      return await fn(sendOpts(signal));
    } catch (e) {
      if (isAbort(e, signal)) throw abortedError(signal);
      throw this.#failure(e, what);
    }
  }

  #missing(hash: string): HpcflowError {
    return new HpcflowError('HPCFLOW_CACHE_CORRUPT', `object ${hash} is missing from remote "${this.name}" (${this.display})`, {
      hint: 'push it from a workspace whose store has it',
    });
  }

  #localMismatch(hash: string, localPath: string, got: string, read: number, size: number): HpcflowError {
    return new HpcflowError(
      'HPCFLOW_CACHE_CORRUPT',
      `cannot upload object ${hash} to remote "${this.name}" (${this.display}): ${localPath} does not hash to it (got ${got}, ${read} of ${size} bytes)`,
      { hint: 'the local file changed or is damaged; nothing was uploaded. Check the local store (it may need the file committed again)' },
    );
  }

  #localError(e: unknown, localPath: string): HpcflowError {
    if (isHpcflowError(e)) return e;
    const msg = e instanceof Error ? e.message : String(e);
    const code = errCode(e) === 'ENOENT' ? 'HPCFLOW_CACHE_CORRUPT' : 'HPCFLOW_ENGINE_UNAVAILABLE';
    return new HpcflowError(code, `cannot upload to remote "${this.name}": could not read ${localPath}: ${msg}`, { cause: e });
  }

  /**
   * A clear error for a failed S3 call; never contains credentials. The SDK error is not kept as
   * `cause`: it holds the raw request and response, which nothing should print.
   */
  #failure(e: unknown, what: string): HpcflowError {
    if (isHpcflowError(e)) return e;
    const { name, status, message } = describeSdkError(e);
    // Responses without a body (every HEAD) reach us as "Unknown: UnknownError"; say the status.
    const vague = name === 'Unknown' || name === 'Error' || message === 'UnknownError';
    const why = vague && status !== undefined ? `${STATUS_TEXT[status] ?? 'failed'} (HTTP ${status})` : `${name === 'Error' ? '' : `${name}: `}${message}`;
    const text = `remote "${this.name}" (${this.display}): could not ${what}: ${why}`;
    if (AUTH_ERRORS.has(name) || status === 401 || status === 403) {
      return new HpcflowError('HPCFLOW_USAGE', text, {
        hint: 'credentials come from the environment (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE); check them, the region and the endpoint',
      });
    }
    if (name === 'NoSuchBucket' || name === 'PermanentRedirect') {
      return new HpcflowError('HPCFLOW_USAGE', text, { hint: 'check the bucket, region and endpoint of this remote in hpcflow.yaml' });
    }
    return new HpcflowError('HPCFLOW_ENGINE_UNAVAILABLE', text, {
      hint: 'check the endpoint and the network; running the same command again keeps finished objects and resumes large ones',
    });
  }
}
