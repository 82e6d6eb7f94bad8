/**
 * The filesystem hpcflow hands isomorphic-git: node's, except that every file write is atomic.
 *
 * isomorphic-git writes loose objects, the index, refs and config in place (`writeFile`: truncate,
 * then write). A process killed in between leaves a truncated file: an empty loose object is never
 * written again (isomorphic-git skips objects that exist), so every later commit that needs it
 * refers to a corrupt object; a truncated index makes git refuse the checkout ("index file
 * corrupt"). Here each write goes to a temp file in the same directory, which is renamed over the
 * target: a kill leaves the old file or the new one, and at most a stray temp file that git
 * ignores — `tmp_obj_*` beside loose objects (git's own name, which `git fsck` and `git gc`
 * know), a dot-file elsewhere (never a ref name: git skips them when it lists refs).
 */
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import { rename, rm, writeFile as nodeWriteFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

type WriteOptions = Parameters<typeof nodeWriteFile>[2];

/** The temp name for a write to `path`. */
export function gitTempPath(path: string): string {
  const dir = dirname(path);
  const tag = `${process.pid}-${randomBytes(6).toString('hex')}`;
  return /(^|\/)objects\/[0-9a-f]{2}$/.test(dir) ? join(dir, `tmp_obj_${tag}`) : join(dir, `.${basename(path)}.tmp-${tag}`);
}

async function writeFileAtomic(path: string, data: Parameters<typeof nodeWriteFile>[1], options?: WriteOptions): Promise<void> {
  const tmp = gitTempPath(path);
  const opts = typeof options === 'string' ? { encoding: options } : (options ?? {});
  let renamed = false;
  try {
    // 'wx': a fresh file, never someone else's. ENOENT (no directory yet) reaches isomorphic-git,
    // which creates the directory and writes again.
    await nodeWriteFile(tmp, data, { ...opts, flag: 'wx' });
    await rename(tmp, path);
    renamed = true;
  } finally {
    if (!renamed) await rm(tmp, { force: true }).catch(() => undefined);
  }
}

/** Pass as `fs` to every isomorphic-git call that may write. */
export const gitFs: { readonly promises: typeof fs.promises } = { promises: { ...fs.promises, writeFile: writeFileAtomic as typeof fs.promises.writeFile } };
