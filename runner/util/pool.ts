/** Bounded concurrency helpers. */
import { HpcflowError } from '../errors.js';

function checkLimit(limit: number): void {
  if (!Number.isInteger(limit) || limit < 1) {
    throw new HpcflowError('HPCFLOW_USAGE', `concurrency limit must be a positive integer, got ${String(limit)}`);
  }
}

function abortError(signal: AbortSignal): HpcflowError {
  return new HpcflowError('HPCFLOW_ABORTED', 'operation aborted', { cause: signal.reason });
}

/**
 * Maps `items` through `fn` with at most `limit` calls in flight; results keep the input order.
 *
 * On the first failure (or when `signal` aborts) no further items are started, and the returned
 * promise rejects with that first error only after every call already in flight has settled, so
 * no work outlives the call and no rejection goes unhandled.
 */
export async function mapLimit<T, R>(
  items: readonly T[],
  limit: number,
  fn: (item: T, index: number, signal: AbortSignal | undefined) => Promise<R>,
  signal?: AbortSignal,
): Promise<R[]> {
  checkLimit(limit);
  if (signal?.aborted === true) throw abortError(signal);
  const results = new Array<R>(items.length);
  let next = 0;
  let failed = false;
  let firstError: unknown;

  const worker = async (): Promise<void> => {
    while (!failed && next < items.length) {
      if (signal?.aborted === true) {
        failed = true;
        firstError = abortError(signal);
        return;
      }
      const i = next++;
      try {
        results[i] = await fn(items[i] as T, i, signal);
      } catch (e) {
        if (!failed) {
          failed = true;
          firstError = e;
        }
      }
    }
  };

  // Workers never reject (they record the error), so this waits for everything in flight.
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  if (failed) throw firstError;
  return results;
}

/** Runs `fn` when a slot is free; see {@link createLimiter}. */
export type Limiter = <R>(fn: () => Promise<R>) => Promise<R>;

/**
 * A shared slot pool: at most `limit` of the functions passed to the returned limiter run at
 * once, across all callers. Used where work arrives from many places (e.g. every directory walk
 * of a PathHasher) but must share one bound. Queued functions start in FIFO order.
 */
export function createLimiter(limit: number): Limiter {
  checkLimit(limit);
  let active = 0;
  const queue: Array<() => void> = [];
  return async <R>(fn: () => Promise<R>): Promise<R> => {
    // A woken waiter inherits the finishing caller's slot, so `active` only counts real holders.
    if (active >= limit) await new Promise<void>((resolve) => queue.push(resolve));
    else active++;
    try {
      return await fn();
    } finally {
      const wake = queue.shift();
      if (wake !== undefined) wake();
      else active--;
    }
  };
}
