/**
 * Shared by the fault tests (crash, engine-*, commit-crash, concurrency): what "nothing
 * half-written" means for a workspace, and waiting for a spawned runner to reach a point.
 */
import { existsSync } from 'node:fs';
import { readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { expect } from 'vitest';
import { hashFile } from '../../runner/fingerprint/hash-file.js';
import { parseLockfile } from '../../runner/lockfile/lockfile.js';
import type { Lockfile } from '../../runner/lockfile/lockfile.js';

/**
 * Every cache object's content hashes to its name, every run-cache entry parses, and the lockfile
 * (if any) parses. Returns the lockfile and the counts.
 */
export async function checkNothingCorrupt(ws: string): Promise<{ lock: Lockfile | null; objects: number; entries: number }> {
  const lockPath = join(ws, 'hpcflow.lock');
  const lock = existsSync(lockPath) ? parseLockfile(await readFile(lockPath, 'utf8')) : null;
  let objects = 0;
  const objDir = join(ws, '.hpcflow/cache/objects');
  if (existsSync(objDir)) {
    for (const shard of await readdir(objDir)) {
      for (const rest of await readdir(join(objDir, shard))) {
        const { hash } = await hashFile(join(objDir, shard, rest));
        expect(hash, `object ${shard}${rest}`).toBe(`${shard}${rest}`);
        objects += 1;
      }
    }
  }
  let entries = 0;
  const runsDir = join(ws, '.hpcflow/cache/runs');
  if (existsSync(runsDir)) {
    for (const shard of await readdir(runsDir)) {
      for (const f of await readdir(join(runsDir, shard))) {
        JSON.parse(await readFile(join(runsDir, shard, f), 'utf8'));
        entries += 1;
      }
    }
  }
  return { lock, objects, entries };
}

/** A spawned runner (execa with `reject: false`). */
type Child = { readonly stdout: Readable | null } & PromiseLike<unknown>;

/** Resolves with the first `run --json` event of the child's stdout that satisfies `pred`. */
export function waitForEvent(child: Child, pred: (e: Record<string, unknown>) => boolean, what: string, timeoutMs = 60_000): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    let buf = '';
    const timer = setTimeout(() => {
      child.stdout?.off('data', onData);
      reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}; stdout so far:\n${buf}`));
    }, timeoutMs);
    const onData = (chunk: Buffer): void => {
      buf += chunk.toString('utf8');
      for (const line of buf.split('\n').slice(0, -1)) {
        if (!line.startsWith('{')) continue;
        const e = JSON.parse(line) as Record<string, unknown>;
        if (pred(e)) {
          clearTimeout(timer);
          child.stdout?.off('data', onData);
          resolve(e);
          return;
        }
      }
    };
    child.stdout?.on('data', onData);
    void Promise.resolve(child).then(() => {
      clearTimeout(timer);
      reject(new Error(`the runner ended before ${what}; stdout:\n${buf}`));
    });
  });
}

/** A stage's log line, as `run --json` reports it. */
export const stageLog = (stage: string, line: string) => (e: Record<string, unknown>): boolean => e.type === 'stage-log' && e.stage === stage && e.line === line;

/** A JavaScript stack trace (`    at fn (file:line:col)`) anywhere in the text. */
export const STACK_TRACE = /^\s+at .+[:(]\d+:\d+\)?$/m;

export async function waitUntil<T>(what: string, probe: () => Promise<T | undefined | false>, timeoutMs = 30_000, everyMs = 200): Promise<T> {
  const t0 = Date.now();
  for (;;) {
    const v = await probe();
    if (v !== undefined && v !== false) return v;
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
