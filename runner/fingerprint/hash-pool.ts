/**
 * Hashing on every core: a pool of worker threads, each hashing whole files (sync 1 MiB reads
 * and native BLAKE3, see hash-worker.js). Results equal {@link hashFile}'s byte for byte.
 *
 * Dispatch. Jobs wait in one FIFO queue; a worker takes a batch of them per message, with up to
 * {@link MAX_INFLIGHT_BATCHES} batches outstanding so it never idles while the main thread
 * handles its previous reply. Batch size follows guided self-scheduling: a fraction of what is
 * queued ({@link GSS_FACTOR} batches per worker), at most {@link MAX_BATCH} files, and one file
 * at a time near the end, so that a few large files do not end up queued behind each other on
 * one worker while the other cores idle. Calls made in one synchronous burst (hashFiles, or many
 * hashFile calls in a loop) are coalesced: the queue is dispatched in a microtask. A caller
 * that keeps only a few hashFile calls pending gets batches of one and pays the message cost.
 *
 * Measured on the target hardware (2 cores, page-cached data; bench/dataset-hash.ts):
 * - A message round trip costs ~15 µs: empty files take 19 µs each through the pool one per
 *   message, 5 µs in batches of 64 (in-process hashFileSync: 4.5 µs). For 16,384 × 64 KiB on
 *   2 threads: batches of 1 give 1.6 GB/s (2.6 with 2 batches in flight), of 16 4.6, of 64–256
 *   4.8–5.0, within noise of each other.
 * - Large files do not need batches but do need a small tail: 64 × 16 MiB on 2 threads gave
 *   5.3 GB/s when the first batches took half the queue (factor 1), 6.4–6.8 with factor 2–16.
 * - The main thread's work per file is 0.65 µs with hashFiles (one request for all files), 2×
 *   that with a hashFile promise per file; it competes with the workers for the same cores.
 * - Sync reads in the worker, not hashFile's double-buffered async reads: async made one thread
 *   faster (4.4 vs 3.6 GB/s, the read overlaps on libuv's pool) but all threads slower (4.9 vs
 *   7.0 GB/s), since every core is already busy reading or hashing.
 *
 * Lifetime. Workers start on demand, up to `threads`, and a start costs ~30 ms (Node's worker
 * bootstrap and the BLAKE3 binding): for a few small files, in-process hashFileSync is cheaper.
 * A worker is ref'd only while it has jobs, so an idle pool never keeps the process alive. A
 * worker that dies (uncaught error, killed, out of memory) fails its in-flight jobs with code
 * ERR_HASH_WORKER_CRASHED and is replaced on the next dispatch; if two in a row die before
 * answering at all (a broken install), the queued jobs fail too instead of respawning.
 * {@link HashPool.close} fails queued and in-flight jobs and terminates the workers.
 */
import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import type { FileHash } from './hash-file.js';

export type { FileHash } from './hash-file.js';

/** Most files per message. Beyond this the per-message cost is already negligible. */
export const MAX_BATCH = 64;
/** Batches a worker may have outstanding (one running, one waiting in its port). */
export const MAX_INFLIGHT_BATCHES = 2;
/** Guided self-scheduling divisor: a batch is at most queued / (threads × this). */
export const GSS_FACTOR = 4;

/** Where the worker script may sit relative to the module that runs this code. */
const WORKER_CANDIDATES = [
  // Sources (runner/fingerprint/hash-pool.ts next to hash-worker.js), or the bundle's entry
  // file dist/hpcflow.js if this module is inlined into it.
  './hash-worker.js',
  // A code-split chunk of the bundle, dist/chunks/*.js; scripts/build.mjs copies the worker to dist/.
  '../hash-worker.js',
];

/**
 * The worker script for a module at `base` (default: this module): the first candidate that
 * exists, in the sources or in the esbuild bundle layout.
 */
export function locateHashWorker(base: string | URL = import.meta.url, exists: (u: URL) => boolean = existsSync): URL {
  const tried: string[] = [];
  for (const rel of WORKER_CANDIDATES) {
    const u = new URL(rel, base);
    if (exists(u)) return u;
    tried.push(u.href);
  }
  throw new Error(`hash worker script not found; looked for ${tried.join(', ')}`);
}

/**
 * Who waits for jobs: one hashFile call, or one hashFiles call for all its files. One promise
 * per hashFiles call, not per file, halves the main thread's work: 0.65 µs per file instead of
 * 1.2–1.6 (16,384 paths through a stub worker that answers at once).
 */
interface Request {
  /** Resolved, rejected or aborted: its jobs still queued are skipped, late replies ignored. */
  readonly done: boolean;
  ok(index: number, r: FileHash): void;
  fail(e: unknown): void;
}

interface Job {
  readonly path: string;
  readonly req: Request;
  /** Position in the request (hashFiles' result order). */
  readonly index: number;
}

/** Settles the request once; an abort rejects it with `signal.reason`. */
abstract class Settles {
  done = false;
  private readonly onAbort: (() => void) | undefined;

  constructor(
    private readonly rejectFn: (e: unknown) => void,
    private readonly signal: AbortSignal | undefined,
  ) {
    if (signal !== undefined) {
      this.onAbort = (): void => this.fail(signal.reason);
      signal.addEventListener('abort', this.onAbort, { once: true });
    }
  }

  fail(e: unknown): void {
    if (this.finish()) this.rejectFn(e);
  }

  protected finish(): boolean {
    if (this.done) return false;
    this.done = true;
    if (this.onAbort !== undefined) this.signal?.removeEventListener('abort', this.onAbort);
    return true;
  }
}

class OneFile extends Settles implements Request {
  constructor(
    private readonly resolveFn: (r: FileHash) => void,
    reject: (e: unknown) => void,
    signal: AbortSignal | undefined,
  ) {
    super(reject, signal);
  }

  ok(_index: number, r: FileHash): void {
    if (this.finish()) this.resolveFn(r);
  }
}

class ManyFiles extends Settles implements Request {
  private readonly out: FileHash[];
  private left: number;

  constructor(
    n: number,
    private readonly resolveFn: (r: FileHash[]) => void,
    reject: (e: unknown) => void,
    signal: AbortSignal | undefined,
  ) {
    super(reject, signal);
    this.out = new Array<FileHash>(n);
    this.left = n;
  }

  ok(index: number, r: FileHash): void {
    if (this.done) return;
    this.out[index] = r;
    if (--this.left === 0 && this.finish()) this.resolveFn(this.out);
  }
}

interface Slot {
  readonly worker: Worker;
  readonly batches: Map<number, Job[]>;
  /** The pool asked this worker to stop (close): its exit is not a crash. */
  stopping: boolean;
  /** The worker has answered at least once, so it did start. */
  replied: boolean;
}

interface SerializedError {
  message: string;
  name?: string;
  code?: string;
  errno?: number;
  syscall?: string;
  path?: string;
}

interface Reply {
  id: number;
  hashes: string[];
  sizes: number[];
  errors: Array<SerializedError | null> | null;
}

type CodedError = Error & { code?: string; errno?: number; syscall?: string; path?: string };

function codedError(message: string, code: string, cause?: unknown): CodedError {
  const e: CodedError = new Error(message, cause === undefined ? undefined : { cause });
  e.code = code;
  return e;
}

/** A worker-side error as a real Error with the same message, code, errno, syscall and path. */
function reviveError(s: SerializedError): CodedError {
  const e: CodedError = new Error(s.message);
  if (s.name !== undefined && s.name !== 'Error') e.name = s.name;
  if (s.code !== undefined) e.code = s.code;
  if (s.errno !== undefined) e.errno = s.errno;
  if (s.syscall !== undefined) e.syscall = s.syscall;
  if (s.path !== undefined) e.path = s.path;
  return e;
}

let shared: HashPool | undefined;

export class HashPool {
  /** The process-wide pool with one thread per available core, created on first use. */
  static shared(): HashPool {
    if (shared === undefined || shared.closed) shared = new HashPool();
    return shared;
  }

  /** Number of worker threads this pool runs at most. */
  readonly threads: number;
  private readonly workerUrl: URL;
  private readonly slots: Slot[] = [];
  /** FIFO of jobs from queueHead on (dispatched entries are cleared, and compacted now and then). */
  private queue: Array<Job | undefined> = [];
  private queueHead = 0;
  private nextBatchId = 1;
  private pumpScheduled = false;
  private closed = false;
  /** Workers in a row that died before ever answering (reset by any answer). */
  private startFailures = 0;

  /**
   * `threads`: worker threads at most, default one per available core. `workerUrl` is for tests
   * only (a worker script that fails to start).
   */
  constructor(opts: { threads?: number; /** @internal */ workerUrl?: URL } = {}) {
    this.threads = Math.max(1, Math.floor(opts.threads ?? availableParallelism()));
    this.workerUrl = opts.workerUrl ?? locateHashWorker();
  }

  /** Worker threads currently running (they start on demand, at most {@link threads}). */
  get workers(): number {
    return this.slots.length;
  }

  /**
   * BLAKE3 and size of one file, hashed on a worker thread. Errors are the worker's, rebuilt
   * with the same message, `code`, `errno`, `syscall` and `path` (ENOENT, EACCES, EISDIR…).
   * Aborting rejects with `signal.reason` at once; a file already being hashed finishes unseen.
   */
  hashFile(absPath: string, signal?: AbortSignal): Promise<FileHash> {
    const refused = this.refuse(signal);
    if (refused !== undefined) return refused;
    return new Promise<FileHash>((resolve, reject) => {
      this.queue.push({ path: absPath, req: new OneFile(resolve, reject, signal), index: 0 });
      this.schedulePump();
    });
  }

  /**
   * Hashes of `paths`, in order. Rejects with the first failure, like Promise.all over
   * hashFile, and then skips the files not yet sent to a worker. Prefer this to many hashFile
   * calls: the whole call is one request, so the main thread does less per file.
   */
  hashFiles(paths: readonly string[], signal?: AbortSignal): Promise<FileHash[]> {
    const refused = this.refuse(signal);
    if (refused !== undefined) return refused;
    if (paths.length === 0) return Promise.resolve([]);
    return new Promise<FileHash[]>((resolve, reject) => {
      const req = new ManyFiles(paths.length, resolve, reject, signal);
      for (let i = 0; i < paths.length; i++) this.queue.push({ path: paths[i] as string, req, index: i });
      this.schedulePump();
    });
  }

  private refuse(signal: AbortSignal | undefined): Promise<never> | undefined {
    if (this.closed) return Promise.reject(codedError('HashPool is closed', 'ERR_HASH_POOL_CLOSED'));
    if (signal?.aborted) return Promise.reject(signal.reason);
    return undefined;
  }

  /** Fails queued and in-flight jobs with ERR_HASH_POOL_CLOSED and terminates the workers. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (shared === this) shared = undefined;
    const err = (): CodedError => codedError('HashPool is closed', 'ERR_HASH_POOL_CLOSED');
    this.failQueued(err);
    const slots = this.slots.splice(0);
    for (const slot of slots) {
      slot.stopping = true;
      this.failBatches(slot, err);
    }
    await Promise.all(slots.map((s) => s.worker.terminate()));
  }

  /**
   * Test hook: the first worker (started if there is none) throws an uncaught error when it
   * reads its next message, as a bug in the worker would. With one thread, the next batch is
   * then in flight on a dying worker.
   * @internal
   */
  crashNextWorkerForTest(): void {
    const slot = this.slots[0] ?? this.spawn();
    slot.worker.postMessage({ crash: 'crash requested by a test' });
  }

  private schedulePump(): void {
    if (this.pumpScheduled) return;
    this.pumpScheduled = true;
    queueMicrotask(() => {
      this.pumpScheduled = false;
      this.pump();
    });
  }

  private queued(): number {
    return this.queue.length - this.queueHead;
  }

  private pump(): void {
    while (!this.closed && this.queued() > 0) {
      const slot = this.pickSlot();
      if (slot === undefined) return;
      const size = Math.max(1, Math.min(MAX_BATCH, Math.floor(this.queued() / (this.threads * GSS_FACTOR))));
      const jobs: Job[] = [];
      while (jobs.length < size && this.queueHead < this.queue.length) {
        const job = this.queue[this.queueHead];
        this.queue[this.queueHead++] = undefined;
        if (job !== undefined && !job.req.done) jobs.push(job);
      }
      if (this.queueHead > 1024 && this.queueHead * 2 > this.queue.length) {
        this.queue = this.queue.slice(this.queueHead);
        this.queueHead = 0;
      }
      if (jobs.length === 0) continue;
      const id = this.nextBatchId++;
      if (slot.batches.size === 0) slot.worker.ref();
      slot.batches.set(id, jobs);
      slot.worker.postMessage({ id, paths: jobs.map((j) => j.path) });
    }
  }

  /** The least busy worker with room for another batch, starting a new one while under `threads`. */
  private pickSlot(): Slot | undefined {
    let best: Slot | undefined;
    for (const s of this.slots) if (best === undefined || s.batches.size < best.batches.size) best = s;
    if (best !== undefined && best.batches.size === 0) return best;
    if (this.slots.length < this.threads) return this.spawn();
    return best !== undefined && best.batches.size < MAX_INFLIGHT_BATCHES ? best : undefined;
  }

  private spawn(): Slot {
    // execArgv: [] so that loaders of the parent (tsx under tests and benchmarks) are not
    // started again in each worker, which runs plain JavaScript: 30 ms start-up instead of 80.
    const worker = new Worker(this.workerUrl, { name: 'hpcflow-hash', execArgv: [] });
    worker.unref();
    const slot: Slot = { worker, batches: new Map(), stopping: false, replied: false };
    let crash: unknown;
    worker.on('message', (msg: Reply) => this.onReply(slot, msg));
    worker.on('error', (e) => {
      crash = e;
    });
    worker.on('exit', (code) => {
      const i = this.slots.indexOf(slot);
      if (i >= 0) this.slots.splice(i, 1);
      if (slot.stopping) return;
      const why = crash instanceof Error ? crash.message : `exit code ${code}`;
      const err = (job: Job): CodedError =>
        codedError(`hash worker crashed (${why}) while hashing ${job.path}`, 'ERR_HASH_WORKER_CRASHED', crash);
      this.failBatches(slot, err);
      // Jobs still queued get a fresh worker, unless workers do not even start (a broken install):
      // then respawning would only fail the queue one batch at a time.
      if (!slot.replied && ++this.startFailures >= 2) {
        this.failQueued(err);
      } else if (this.queued() > 0) this.schedulePump();
    });
    this.slots.push(slot);
    return slot;
  }

  private onReply(slot: Slot, msg: Reply): void {
    const jobs = slot.batches.get(msg.id);
    if (jobs === undefined) return;
    slot.batches.delete(msg.id);
    slot.replied = true;
    this.startFailures = 0;
    if (slot.batches.size === 0) slot.worker.unref();
    for (let i = 0; i < jobs.length; i++) {
      const job = jobs[i] as Job;
      if (job.req.done) continue;
      const err = msg.errors?.[i];
      if (err !== null && err !== undefined) job.req.fail(reviveError(err));
      else job.req.ok(job.index, { hash: msg.hashes[i] as string, size: msg.sizes[i] as number });
    }
    if (this.queued() > 0) this.pump();
  }

  private failQueued(err: (job: Job) => unknown): void {
    const queue = this.queue;
    const head = this.queueHead;
    this.queue = [];
    this.queueHead = 0;
    for (let i = head; i < queue.length; i++) {
      const job = queue[i];
      if (job !== undefined && !job.req.done) job.req.fail(err(job));
    }
  }

  private failBatches(slot: Slot, err: (job: Job) => unknown): void {
    for (const jobs of slot.batches.values()) for (const job of jobs) if (!job.req.done) job.req.fail(err(job));
    slot.batches.clear();
  }
}
