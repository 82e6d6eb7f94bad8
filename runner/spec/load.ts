/**
 * Load a workspace from disk: every `pipelines/*.yaml|*.yml`, the params files they name, and
 * the existence of what they depend on. The parsing and checking are pure (parse.ts, link.ts);
 * this module only supplies the file system, and records what it looked at for the cache.
 */
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { HpcflowError } from '../errors.js';
import type { Pipeline } from '../model/pipeline.js';
import { linkWorkspace } from './link.js';
import { parsePipelineFile } from './parse.js';
import { pipelineOrThrow } from './result.js';
import type { LoadResult, SpecContext } from './types.js';
import { kindOf, listPipelineFiles } from './workspace-files.js';

/** Identity of a file's content as the cache sees it. */
export interface FileStamp {
  readonly path: string;
  readonly size: number;
  /** Modification time in nanoseconds, as a decimal string (a bigint does not survive JSON). */
  readonly mtimeNs: string;
  readonly ino: string;
  /** sha256 of the content, to settle changes within one mtime tick. */
  readonly sha256: string;
}

/** Everything a load depended on: if none of it changed, the result is the same. */
export interface LoadTrace {
  /** Pipeline and params files read (stat taken before reading, so a later edit is never missed). */
  readonly files: readonly FileStamp[];
  /** Existence checks made, with their answers. */
  readonly checks: readonly (readonly [string, 'file' | 'dir' | null])[];
  /** The pipeline file names found in `pipelines/`, sorted. */
  readonly pipelineFiles: readonly string[];
  /** Wall-clock time the load started, in ns (decimal string): files modified since are "racy". */
  readonly startedNs: string;
}

function stampAndRead(abs: string, rel: string): { stamp: FileStamp; text: string } | null {
  try {
    const st = statSync(abs, { bigint: true });
    if (!st.isFile()) return null;
    const buf = readFileSync(abs);
    const stamp = {
      path: rel,
      size: Number(st.size),
      mtimeNs: st.mtimeNs.toString(),
      ino: st.ino.toString(),
      sha256: createHash('sha256').update(buf).digest('hex'),
    };
    return { stamp, text: buf.toString('utf8') };
  } catch {
    return null;
  }
}

/** A `SpecContext` over a real directory that records what it was asked. */
export function fsSpecContext(workspace: string): SpecContext & { trace(): Pick<LoadTrace, 'files' | 'checks'>; stampAndRead(rel: string): string | null } {
  const files = new Map<string, FileStamp>();
  const texts = new Map<string, string | null>();
  const checks = new Map<string, 'file' | 'dir' | null>();
  const read = (rel: string): string | null => {
    if (texts.has(rel)) return texts.get(rel) ?? null;
    const r = stampAndRead(join(workspace, rel), rel);
    if (r) files.set(rel, r.stamp);
    // A params file that is missing is recorded as an existence check, so creating it invalidates.
    else checks.set(rel, kindOf(join(workspace, rel)));
    texts.set(rel, r?.text ?? null);
    return r?.text ?? null;
  };
  return {
    readParamsFile: (rel) => {
      const text = read(rel);
      return text === null ? null : { text };
    },
    exists: (rel) => {
      let k = checks.get(rel);
      if (k === undefined) {
        k = kindOf(join(workspace, rel));
        checks.set(rel, k);
      }
      return k;
    },
    listDir: (rel) => {
      try {
        return readdirSync(join(workspace, rel)).sort();
      } catch {
        return null;
      }
    },
    stampAndRead: read,
    trace: () => ({ files: [...files.values()], checks: [...checks.entries()] }),
  };
}

/** Load and check a workspace, returning what the result depended on as well. */
export async function loadWorkspaceTraced(workspace: string): Promise<{ result: LoadResult; trace: LoadTrace }> {
  const startedNs = (BigInt(Date.now()) * 1_000_000n).toString();
  const root = resolve(workspace);
  const names = listPipelineFiles(root);
  if (names === null) {
    throw new HpcflowError('HPCFLOW_NOT_A_WORKSPACE', `${root} is not an hpcflow workspace (no pipelines/ directory)`, {
      hint: 'run hpcflow init',
    });
  }
  const ctx = fsSpecContext(root);
  const results = names.map((name) => {
    const rel = `pipelines/${name}`;
    const text = ctx.stampAndRead(rel) ?? '';
    return parsePipelineFile(text, rel, ctx);
  });
  const result = linkWorkspace(results, ctx);
  return { result, trace: { ...ctx.trace(), pipelineFiles: names, startedNs } };
}

/** Load and check every pipeline of a workspace. Throws only when it is not a workspace. */
export async function loadWorkspace(workspace: string): Promise<LoadResult> {
  return (await loadWorkspaceTraced(workspace)).result;
}

/** The validated model, or `HPCFLOW_SPEC_INVALID` carrying every diagnostic. */
export async function loadWorkspaceOrThrow(workspace: string): Promise<Pipeline> {
  return pipelineOrThrow(await loadWorkspace(workspace));
}
