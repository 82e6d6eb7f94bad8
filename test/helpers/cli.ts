import { execa } from 'execa';
import type { ResultPromise } from 'execa';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const BIN = fileURLToPath(new URL('../../bin/hpcflow.js', import.meta.url));

export interface CliResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Run the compiled CLI as a real process (dist/ is built by the global setup). */
export async function hpcflow(args: readonly string[], cwd: string, env: Record<string, string> = {}): Promise<CliResult> {
  const r = await execa('node', [BIN, ...args], { cwd, reject: false, env: { ...env, CI: '1' }, timeout: 240_000, stripFinalNewline: false });
  return { code: r.exitCode ?? -1, stdout: r.stdout, stderr: r.stderr };
}

export function spawnHpcflow(args: readonly string[], cwd: string): ResultPromise<{ cwd: string; reject: false; buffer: true }> {
  return execa('node', [BIN, ...args], { cwd, reject: false, buffer: true, env: { CI: '1' } }) as never;
}

/** The JSON-lines events of `run --json`. */
export function events(stdout: string): Record<string, unknown>[] {
  return stdout
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

/** stage id → outcome status, from `run --json` output. */
export function outcomes(stdout: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const e of events(stdout)) {
    if (e.type === 'stage-end') out[e.stage as string] = (e.outcome as { status: string }).status;
  }
  return out;
}

/** Stage ids that reached a given status. */
export function withStatus(stdout: string, status: string): string[] {
  return Object.entries(outcomes(stdout))
    .filter(([, s]) => s === status)
    .map(([id]) => id)
    .sort();
}
