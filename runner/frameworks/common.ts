/** Helpers shared by the framework adapters. */
import { posix } from 'node:path';
import type { Shape } from './types.js';
import { KERNEL_DIR_REF } from './types.js';

/** Processes of the stage: nodes × tasks per node. */
export const totalTasks = (s: Shape): number => s.nodes * s.tasksPerNode;

/** The binary a compiled kernel becomes: the source's base name without extension. */
export function binaryName(source: string): string {
  const base = posix.basename(source);
  const dot = base.lastIndexOf('.');
  return dot > 0 ? base.slice(0, dot) : base;
}

/** `$HPCFLOW_KERNEL_DIR/<name>`: the compiled binary as commands refer to it. */
export const binaryRef = (source: string): string => `${KERNEL_DIR_REF}/${binaryName(source)}`;

/**
 * Open MPI with every rank in one container: stages run as the invoking user, which is root on CI
 * machines (mpirun refuses root without both variables); the shared-memory transport's
 * single-copy mechanism (CMA) needs ptrace rights that containers do not have.
 */
export const LOCAL_OMPI_ENV: Readonly<Record<string, string>> = {
  OMPI_ALLOW_RUN_AS_ROOT: '1',
  OMPI_ALLOW_RUN_AS_ROOT_CONFIRM: '1',
  OMPI_MCA_btl_vader_single_copy_mechanism: 'none',
};

/** srun options that place `shape` inside the allocation the runner holds. */
export function srunShape(shape: Shape, tasks = totalTasks(shape)): string[] {
  return [`--nodes=${shape.nodes}`, `--ntasks=${tasks}`, `--ntasks-per-node=${Math.ceil(tasks / shape.nodes)}`, `--cpus-per-task=${shape.cpusPerTask}`];
}

const SAFE = /^[A-Za-z0-9_@%+=:,./-]+$/;

/** One word for `/bin/sh -c`: left bare when safe, else single-quoted; `$HPCFLOW_KERNEL_DIR/…` stays expandable. */
export function shellWord(word: string): string {
  if (word.startsWith(`${KERNEL_DIR_REF}/`)) return `"${KERNEL_DIR_REF}"/${shellWord(word.slice(KERNEL_DIR_REF.length + 1))}`;
  if (word !== '' && SAFE.test(word)) return word;
  return `'${word.replace(/'/g, `'\\''`)}'`;
}

/** argv as a `/bin/sh -c` command line. */
export const shellJoin = (argv: readonly string[]): string => argv.map(shellWord).join(' ');

/** Environment objects with keys sorted (stable snapshots and fingerprints). */
export function sortedEnv(...parts: ReadonlyArray<Readonly<Record<string, string>> | undefined>): Record<string, string> {
  const merged: Record<string, string> = {};
  for (const p of parts) if (p !== undefined) Object.assign(merged, p);
  return Object.fromEntries(Object.keys(merged).sort().map((k) => [k, merged[k] as string]));
}

/** A command with its environment as one shell line: `K=V … argv`. */
export function renderCommand(cmd: { readonly argv: readonly string[]; readonly env: Readonly<Record<string, string>> }): string {
  const assigns = Object.keys(cmd.env)
    .sort()
    .map((k) => `${k}=${shellWord(cmd.env[k] as string)}`);
  return [...assigns, shellJoin(cmd.argv)].join(' ');
}
