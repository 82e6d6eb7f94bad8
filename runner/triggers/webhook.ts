/**
 * GitHub push webhooks: signature verification, push-payload parsing and a persistent replay
 * guard. Everything here is pure except {@link ReplayGuard}, which owns one small JSON file.
 *
 * Security model: a delivery is trusted only if its `X-Hub-Signature-256` is the HMAC-SHA256 of
 * the exact raw body under the shared secret. The legacy SHA-1 `X-Hub-Signature` is never
 * accepted on its own. Parsed fields that later reach git or a log (ref, clone URL, repository
 * name) are validated to shapes that cannot be mistaken for options or carry control characters.
 */
import { isResultsCommit } from '../git/trailers.js';
import { createHmac, timingSafeEqual } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { HpcflowError } from '../errors.js';
import { ensureDir, writeFileAtomic } from '../util/fs-atomic.js';

// ---------------------------------------------------------------------------------------------
// Signature

const SIGNATURE_RE = /^sha256=([0-9a-fA-F]{64})$/;

/**
 * Whether `header` (the value of `X-Hub-Signature-256`) is `sha256=<hex HMAC-SHA256 of rawBody
 * keyed by secret>`. Constant-time over the digest. False for an empty secret (anyone could
 * sign), a missing header, or any other form (including the legacy `sha1=` one).
 */
export function verifySignature(secret: string, rawBody: Buffer, header: string | undefined): boolean {
  if (secret.length === 0 || typeof header !== 'string') return false;
  const m = SIGNATURE_RE.exec(header.trim());
  if (m === null) return false;
  const given = Buffer.from(m[1] as string, 'hex');
  const expected = createHmac('sha256', secret).update(rawBody).digest();
  // Both are 32 bytes by construction (64 hex digits); the check keeps timingSafeEqual from
  // throwing should that ever change.
  return given.length === expected.length && timingSafeEqual(given, expected);
}

/** The `X-Hub-Signature-256` value GitHub would send for `rawBody` (for tests and tooling). */
export function signBody(secret: string, rawBody: Buffer | string): string {
  return `sha256=${createHmac('sha256', secret).update(rawBody).digest('hex')}`;
}

// ---------------------------------------------------------------------------------------------
// Push payload

/** The fields of a GitHub `push` event that hpcflow acts on. */
export interface PushEvent {
  /** Full ref, e.g. `refs/heads/main` or `refs/tags/v1`. */
  readonly ref: string;
  /** The branch name when `ref` is `refs/heads/<branch>`, else null (tags, notes, …). */
  readonly branch: string | null;
  /** Commit the ref pointed at before the push (all zeros when the ref was created). */
  readonly before: string;
  /** Commit the ref points at after the push (all zeros when the ref was deleted). */
  readonly after: string;
  /** The push deleted the ref: nothing to run. */
  readonly deleted: boolean;
  readonly repository: {
    /** `owner/name`. */
    readonly fullName: string;
    /** HTTPS clone URL (`https://github.com/owner/name.git`). */
    readonly cloneUrl: string;
  };
  /** The pushed tip commit; null on deletions (and in the rare payloads without one). */
  readonly headCommit: { readonly id: string; readonly message: string } | null;
  /** `pusher.name`, when present. */
  readonly pusher: string | null;
}

const SHA_RE = /^(?:[0-9a-f]{40}|[0-9a-f]{64})$/;
const ZERO_SHA_RE = /^0+$/;
/** `owner/name`; a name may start with `.` (`.github`) but is never `.` or `..`. */
const FULL_NAME_RE = /^[A-Za-z0-9][A-Za-z0-9_-]*\/(?!\.\.?$)[A-Za-z0-9_.][A-Za-z0-9_.-]*$/;
const MAX_MESSAGE_CHARS = 1_000_000;

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * A ref name git would accept (the parts of `git check-ref-format` that matter here): under
 * `refs/`, no control characters, spaces or `~^:?*[\`, no `..`, `@{`, `//`, no component
 * starting with `.` or ending with `.lock`, no trailing `/` or `.`.
 */
export function isValidRef(ref: string): boolean {
  if (!ref.startsWith('refs/') || ref.length > 1024) return false;
  // eslint-disable-next-line no-control-regex
  if (/[\x00-\x20\x7f~^:?*[\\]/.test(ref)) return false;
  if (ref.includes('..') || ref.includes('@{') || ref.includes('//')) return false;
  if (ref.endsWith('/') || ref.endsWith('.')) return false;
  return ref.split('/').every((c) => c.length > 0 && !c.startsWith('.') && !c.endsWith('.lock'));
}

function isCloneUrl(s: string): boolean {
  if (s.length > 2048 || s.startsWith('-')) return false;
  let u: URL;
  try {
    u = new URL(s);
  } catch {
    return false;
  }
  // GitHub (and GitHub Enterprise Server) give an http(s) URL here; credentials in it are refused
  // so that nothing secret can travel from a payload into logs or git's command line.
  return (u.protocol === 'https:' || u.protocol === 'http:') && u.username === '' && u.password === '' && u.hostname !== '';
}

/**
 * The push event in a GitHub `push` webhook body (already JSON-parsed), or null when `body` is
 * not a well-formed push payload. Never throws.
 */
export function parsePushEvent(body: unknown): PushEvent | null {
  if (!isRecord(body)) return null;
  const { ref, before, after, repository, head_commit: head, pusher } = body;
  if (typeof ref !== 'string' || !isValidRef(ref)) return null;
  if (typeof before !== 'string' || !SHA_RE.test(before)) return null;
  if (typeof after !== 'string' || !SHA_RE.test(after)) return null;
  if (!isRecord(repository)) return null;
  const { full_name: fullName, clone_url: cloneUrl } = repository;
  if (typeof fullName !== 'string' || !FULL_NAME_RE.test(fullName)) return null;
  if (typeof cloneUrl !== 'string' || !isCloneUrl(cloneUrl)) return null;
  if (body.deleted !== undefined && typeof body.deleted !== 'boolean') return null;

  let headCommit: PushEvent['headCommit'] = null;
  if (head !== null && head !== undefined) {
    if (!isRecord(head)) return null;
    const { id, message } = head;
    if (typeof id !== 'string' || !SHA_RE.test(id)) return null;
    if (typeof message !== 'string' || message.length > MAX_MESSAGE_CHARS) return null;
    headCommit = { id, message };
  }
  let pusherName: string | null = null;
  if (isRecord(pusher) && typeof pusher.name === 'string') pusherName = pusher.name;

  const deleted = body.deleted === true || ZERO_SHA_RE.test(after);
  const branch = ref.startsWith('refs/heads/') ? ref.slice('refs/heads/'.length) : null;
  return {
    ref,
    branch,
    before,
    after,
    deleted,
    repository: { fullName, cloneUrl },
    headCommit: deleted ? null : headCommit,
    pusher: pusherName,
  };
}

// ---------------------------------------------------------------------------------------------
// Loop guard

/**
 * Whether a commit message carries an `Hpcflow-Run: <id>` trailer, i.e. is a results commit that
 * hpcflow pushed itself (so a push of it must not trigger another run): the one rule of
 * runner/git/trailers.ts.
 */
export function hasHpcflowTrailer(message: string): boolean {
  return isResultsCommit(message);
}

// ---------------------------------------------------------------------------------------------
// Replay guard

/** Options for {@link ReplayGuard.open}. */
export interface ReplayGuardOptions {
  /** How many ids to keep (the oldest are forgotten first). Default 10,000. */
  readonly max?: number;
}

interface ReplayFile {
  readonly version: 1;
  readonly ids: readonly string[];
}

/**
 * Remembers webhook delivery ids (and any other replay keys) in a JSON file, so that a replayed
 * delivery is ignored also after a restart. Bounded: keeps the most recent `max` ids. The file
 * is replaced atomically (and fsynced) on every change, so it is never seen half-written.
 *
 * `seen` and the in-memory part of `remember` are synchronous: a caller that checks and then
 * remembers without an `await` in between cannot let two concurrent deliveries of one id both
 * through.
 */
export class ReplayGuard {
  readonly file: string;
  readonly max: number;
  readonly #ids: Set<string>;
  #writes: Promise<void> = Promise.resolve();

  private constructor(file: string, max: number, ids: Iterable<string>) {
    this.file = file;
    this.max = max;
    this.#ids = new Set(ids);
    this.#trim();
  }

  /**
   * Loads the guard from `file` (a missing file is an empty guard). A file that exists but is not
   * a replay file is an error rather than silently forgotten: forgetting would reopen replays.
   */
  static async open(file: string, opts: ReplayGuardOptions = {}): Promise<ReplayGuard> {
    const max = opts.max ?? 10_000;
    if (!Number.isInteger(max) || max < 1) {
      throw new HpcflowError('HPCFLOW_USAGE', `replay guard size must be a positive integer, got ${String(max)}`);
    }
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return new ReplayGuard(file, max, []);
      throw new HpcflowError('HPCFLOW_USAGE', `cannot read the webhook replay file ${file}`, { cause: e });
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (e) {
      throw invalidFile(file, e);
    }
    if (!isRecord(parsed) || parsed.version !== 1 || !Array.isArray(parsed.ids) || !parsed.ids.every((x) => typeof x === 'string')) {
      throw invalidFile(file);
    }
    return new ReplayGuard(file, max, parsed.ids as string[]);
  }

  /** Number of ids remembered. */
  get size(): number {
    return this.#ids.size;
  }

  /** Whether `id` was remembered (and not yet evicted). */
  seen(id: string): boolean {
    return this.#ids.has(id);
  }

  /**
   * Remembers `ids` at once (in memory, synchronously) and resolves when the file holds them.
   * If the write fails, the ids are forgotten again and the promise rejects, so that memory never
   * claims more than a restart would know.
   */
  remember(ids: string | readonly string[]): Promise<void> {
    const list = typeof ids === 'string' ? [ids] : [...ids];
    const added = list.filter((id) => !this.#ids.has(id));
    for (const id of list) {
      // Re-inserting moves a known id to the young end, so it is evicted last.
      this.#ids.delete(id);
      this.#ids.add(id);
    }
    this.#trim();
    const write = this.#writes.then(() => this.#persist());
    // The chain must survive a failed write; the caller still sees the failure.
    this.#writes = write.catch(() => undefined);
    return write.catch((e: unknown) => {
      for (const id of added) this.#ids.delete(id);
      throw new HpcflowError('HPCFLOW_USAGE', `cannot write the webhook replay file ${this.file}`, { cause: e });
    });
  }

  #trim(): void {
    let excess = this.#ids.size - this.max;
    if (excess <= 0) return;
    for (const id of this.#ids) {
      if (excess-- <= 0) break;
      this.#ids.delete(id);
    }
  }

  async #persist(): Promise<void> {
    const data: ReplayFile = { version: 1, ids: [...this.#ids] };
    await ensureDir(dirname(this.file));
    await writeFileAtomic(this.file, `${JSON.stringify(data)}\n`, { fsync: true, mode: 0o600 });
  }
}

function invalidFile(file: string, cause?: unknown): HpcflowError {
  return new HpcflowError('HPCFLOW_USAGE', `${file} is not a webhook replay file`, {
    hint: 'it is written by `hpcflow serve`; delete it only if you accept that old deliveries could be replayed',
    ...(cause === undefined ? {} : { cause }),
  });
}
