import { chmod, mkdir, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { shellJoin } from '../frameworks/common.js';
import { HpcflowError } from '../errors.js';
import { writeFileAtomic } from '../util/fs-atomic.js';
import { parse } from './args.js';
import { EXIT } from './exit-codes.js';
import type { CliIO } from './io.js';
import { HELP } from './main.js';

export const HOOK_MARK = '# installed by hpcflow hook install';

/** PURE: the post-receive hook: a push to `branch` starts `hpcflow watch --once` in the background. */
export function postReceiveHook(o: { node: string; bin: string; url: string; branch: string; workdir: string; runArgs: readonly string[] }): string {
  const watch = shellJoin([o.node, o.bin, 'watch', '--once', '--url', o.url, '--branch', o.branch, '--workdir', o.workdir, ...(o.runArgs.length > 0 ? ['--', ...o.runArgs] : [])]);
  return [
    '#!/bin/sh',
    HOOK_MARK,
    '# A push to the branch runs its newest commit in the background (the push does not wait);',
    '# results commits that hpcflow pushes back are not run again (loop guard in hpcflow watch).',
    'PATH=${PATH:+$PATH:}/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
    'export PATH',
    'while read -r old new ref; do',
    `  [ "$ref" = ${shellJoin([`refs/heads/${o.branch}`])} ] || continue`,
    '  [ "$new" = 0000000000000000000000000000000000000000 ] && continue',
    `  mkdir -p ${shellJoin([join(o.workdir, '..')])}`,
    `  setsid nohup ${watch} >>${shellJoin([`${o.workdir}.log`])} 2>&1 </dev/null &`,
    'done',
    '',
  ].join('\n');
}

/** `hpcflow hook install --repo BARE --url URL [--branch main] [--workdir DIR] [-- run options]` */
export async function cmdHook(args: readonly string[], io: CliIO): Promise<number> {
  const [sub, ...rest] = args;
  if (sub !== 'install') throw new HpcflowError('HPCFLOW_USAGE', "hook: the only subcommand is 'install'", { hint: 'hpcflow hook install --repo path/to/repo.git --url http://host/repo.git' });
  const dash = rest.indexOf('--');
  const own = dash < 0 ? rest : rest.slice(0, dash);
  const runArgs = dash < 0 ? [] : rest.slice(dash + 1);
  const { values } = parse(own, {
    repo: { type: 'string' },
    url: { type: 'string' },
    branch: { type: 'string', default: 'main' },
    workdir: { type: 'string' },
    help: { type: 'boolean', short: 'h', default: false },
  });
  if (values.help) {
    io.out(HELP);
    return EXIT.ok;
  }
  if (values.repo === undefined || values.url === undefined) throw new HpcflowError('HPCFLOW_USAGE', 'hook install needs --repo (the bare repository) and --url (the URL runners clone and push through)');
  const repo = resolve(io.cwd, values.repo);
  const isBare = await stat(join(repo, 'objects')).then((s) => s.isDirectory(), () => false);
  if (!isBare) throw new HpcflowError('HPCFLOW_USAGE', `${repo} is not a bare git repository (no objects/ directory)`);
  const workdir = resolve(io.cwd, values.workdir ?? join(repo, 'hpcflow-runs', values.branch.replace(/[^A-Za-z0-9._-]+/g, '_')));
  const hook = join(repo, 'hooks', 'post-receive');
  await mkdir(join(repo, 'hooks'), { recursive: true });
  const text = postReceiveHook({ node: process.execPath, bin: resolve(process.argv[1] ?? 'hpcflow'), url: values.url, branch: values.branch, workdir, runArgs });
  const { readFile } = await import('node:fs/promises');
  const existing = await readFile(hook, 'utf8').catch(() => null);
  if (existing !== null && !existing.includes(HOOK_MARK)) {
    throw new HpcflowError('HPCFLOW_USAGE', `${hook} exists and was not installed by hpcflow: not overwritten`, { hint: 'merge it by hand: call the lines of `hpcflow hook install` output from your hook' });
  }
  await writeFileAtomic(hook, text, { mode: 0o755 });
  await chmod(hook, 0o755);
  io.out(`installed ${hook}: a push to ${values.branch} runs it in ${workdir} (log: ${workdir}.log)\n`);
  return EXIT.ok;
}
