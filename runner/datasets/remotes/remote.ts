/**
 * A place objects (content-addressed by BLAKE3, 64 lowercase hex) are pushed to and pulled
 * from: a shared/parallel filesystem path, or an S3-compatible object store.
 *
 * Guarantees every implementation gives (tested by one contract test run against each):
 * - `put` never makes a partial object visible under its final name, and is idempotent;
 * - `get` writes `destPath` only with content whose BLAKE3 equals `hash` (else it throws
 *   HPCFLOW_CACHE_CORRUPT naming the object and the remote) and leaves no partial file;
 * - an interrupted transfer can simply be run again (large uploads resume where possible);
 * - credentials come only from the environment and never appear in messages.
 *
 * Errors: a damaged or missing object, or a local file that does not hash to what `put` was
 * told, is HPCFLOW_CACHE_CORRUPT naming the object and the remote; an AbortSignal that fires is
 * HPCFLOW_ABORTED; bad settings or refused credentials are HPCFLOW_USAGE; an unreachable or
 * failing remote is HPCFLOW_ENGINE_UNAVAILABLE. Invalid object ids are rejected before any I/O.
 * Every method may be called concurrently, also for the same object and from several processes
 * or nodes.
 */
export interface Remote {
  /** The name in the workspace config (`hpcflow.yaml` → remotes). */
  readonly name: string;
  /** Where it points, for messages (no credentials). */
  readonly display: string;
  has(hash: string): Promise<boolean>;
  /** Which of `hashes` the remote has (batched where the remote allows). */
  hasMany(hashes: readonly string[]): Promise<Set<string>>;
  /** Upload the file at `localPath` (whose content hashes to `hash`, `size` bytes). */
  put(hash: string, localPath: string, size: number, signal?: AbortSignal): Promise<void>;
  /**
   * Download the object into `destPath`, verified. An interrupted download leaves its bytes in
   * `<destPath>.part`, from which a later call with the same `destPath` resumes.
   */
  get(hash: string, destPath: string, signal?: AbortSignal): Promise<void>;
  close(): Promise<void>;
}
