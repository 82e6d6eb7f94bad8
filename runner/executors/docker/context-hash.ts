/**
 * The content hash of a build context, which names the image built from it:
 * `hpcflow/<context-name>:<first 16 hex of the hash>`. Same content → same tag → no rebuild.
 *
 * What counts (and nothing else, so the hash is deterministic and independent of mtimes, owners,
 * inode numbers or directory listing order):
 * - the Dockerfile path used (two Dockerfiles over one context are two images);
 * - every regular file's relative POSIX path, its owner-exec bit, and the BLAKE3 hash of its bytes;
 * - every symlink's relative path and target text (Docker sends symlinks as symlinks);
 * - files excluded by `.dockerignore` (see dockerignore.ts) do not count, exactly as they are not
 *   sent to the engine (build.ts packs with the same filter). Empty directories, sockets and
 *   FIFOs do not count.
 */
import { open, readFile, readdir, readlink, stat } from 'node:fs/promises';
import path from 'node:path';
import type { ImageSpec } from '../../model/pipeline.js';
import { canPruneDirectory, isIgnored, parseDockerignore } from './dockerignore.js';
import type { IgnoreRule } from './dockerignore.js';

const MANIFEST_VERSION = 'hpcflow-context-v1';
const READ_BUFFER_BYTES = 1 << 20;

export interface ContextHash {
  /** BLAKE3 of the manifest, 64 hex. */
  readonly hash: string;
  /** `hpcflow/<name>:<hash[0:16]>` */
  readonly tag: string;
  /** Files and symlinks that counted. */
  readonly entries: number;
  /** Everything the build sends (files, symlinks, and the directories holding them), relative. */
  readonly paths: readonly string[];
}

/** A build spec resolved against a workspace. */
export interface BuildContext {
  readonly dir: string;
  readonly name: string;
  /** Relative to `dir`, POSIX. */
  readonly dockerfile: string;
}

/**
 * PURE. `context` is a context name under `containers/` (`openmp` → `containers/openmp/`), or,
 * when it holds a `/`, a workspace-relative path (`tools/images/openmp`).
 */
export function resolveBuildContext(
  workspace: string,
  spec: Extract<ImageSpec, { kind: 'build' }>,
): BuildContext {
  const rel = spec.context.includes('/') ? spec.context : path.posix.join('containers', spec.context);
  const dir = path.resolve(workspace, rel);
  return { dir, name: path.basename(dir), dockerfile: spec.dockerfile === '' ? 'Dockerfile' : spec.dockerfile };
}

/** PURE. A valid Docker repository component from any context name. */
export function contextImageTag(contextName: string, hashHex: string): string {
  const name =
    contextName
      .toLowerCase()
      .replace(/[^a-z0-9._-]+/g, '-')
      .replace(/^[^a-z0-9]+|[^a-z0-9]+$/g, '') || 'context';
  return `hpcflow/${name}:${hashHex.slice(0, 16)}`;
}

/** The `.dockerignore` rules of a context (none when the file is absent). */
export async function loadIgnoreRules(contextDir: string): Promise<IgnoreRule[]> {
  try {
    return parseDockerignore(await readFile(path.join(contextDir, '.dockerignore'), 'utf8'));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw e;
  }
}

interface Entry {
  readonly rel: string;
  readonly abs: string;
  readonly kind: 'f' | 'l';
  readonly exec: boolean;
}

interface Listing {
  readonly entries: Entry[];
  readonly dirs: string[];
}

async function walk(root: string, rules: readonly IgnoreRule[], dockerfile: string): Promise<Listing> {
  const out: Entry[] = [];
  const dirs: string[] = [];
  async function visit(relDir: string): Promise<void> {
    const absDir = relDir === '' ? root : path.join(root, relDir);
    for (const d of await readdir(absDir, { withFileTypes: true })) {
      const rel = relDir === '' ? d.name : `${relDir}/${d.name}`;
      const abs = path.join(absDir, d.name);
      if (d.isDirectory()) {
        if (!canPruneDirectory(rel, rules)) {
          dirs.push(rel);
          await visit(rel);
        }
      } else if (isIgnored(rel, rules, dockerfile)) {
        continue;
      } else if (d.isSymbolicLink()) {
        out.push({ rel, abs, kind: 'l', exec: false });
      } else if (d.isFile()) {
        const st = await stat(abs);
        out.push({ rel, abs, kind: 'f', exec: (st.mode & 0o100) !== 0 });
      }
    }
  }
  await visit('');
  // Code-unit order: locale-independent.
  out.sort((a, b) => (a.rel < b.rel ? -1 : a.rel > b.rel ? 1 : 0));
  return { entries: out, dirs };
}

type Hasher = { update(input: Buffer | string): unknown; digest(format: string): string };

async function hashFile(abs: string, newHasher: () => Hasher, buf: Buffer): Promise<string> {
  const h = newHasher();
  const fh = await open(abs, 'r');
  try {
    for (;;) {
      const { bytesRead } = await fh.read(buf, 0, buf.length, null);
      if (bytesRead === 0) break;
      h.update(buf.subarray(0, bytesRead));
    }
  } finally {
    await fh.close();
  }
  return h.digest('hex');
}

/** Hash a build context directory (see the module comment for what counts). */
export async function hashBuildContext(ctx: BuildContext): Promise<ContextHash> {
  // Imported here, not at module load: `status` for ref-only pipelines never pays for it.
  const { Blake3Hasher } = await import('../../util/blake3.js');
  const newHasher = (): Hasher => new Blake3Hasher();
  const rules = await loadIgnoreRules(ctx.dir);
  const { entries, dirs } = await walk(ctx.dir, rules, ctx.dockerfile);
  const buf = Buffer.allocUnsafe(READ_BUFFER_BYTES);
  const manifest = newHasher();
  manifest.update(`${MANIFEST_VERSION}\ndockerfile ${JSON.stringify(ctx.dockerfile)}\n`);
  for (const e of entries) {
    const digest =
      e.kind === 'f' ? await hashFile(e.abs, newHasher, buf) : linkDigest(newHasher, await readlink(e.abs));
    manifest.update(`${e.kind} ${e.exec ? 'x' : '-'} ${digest} ${JSON.stringify(e.rel)}\n`);
  }
  const hash = manifest.digest('hex');
  return {
    hash,
    tag: contextImageTag(ctx.name, hash),
    entries: entries.length,
    paths: [...dirs.sort(), ...entries.map((e) => e.rel)],
  };
}

function linkDigest(newHasher: () => Hasher, target: string): string {
  const h = newHasher();
  h.update(target);
  return h.digest('hex');
}
