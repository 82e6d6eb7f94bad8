/** Workspaces on the cluster's shared directory, and readers of `run --json` for Slurm tests. */
import { execa } from 'execa';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { BIN, events, hpcflow } from '../../helpers/cli.js';
import { SLURM_CONF, sharedTempDir, slurmSiteYaml } from '../../helpers/slurm.js';

export function slurmWorkspaces(): { make(pipeline: string, files?: Record<string, string>, siteExtra?: string): Promise<string>; cleanup(): Promise<void> } {
  const cleanups: (() => Promise<void>)[] = [];
  return {
    async make(pipeline, files = {}, siteExtra = '') {
      const t = await sharedTempDir('hpcflow-slurm-ws-');
      cleanups.push(t.cleanup);
      await mkdir(join(t.path, 'pipelines'), { recursive: true });
      await writeFile(join(t.path, 'pipelines', 'p.yaml'), pipeline);
      await writeFile(join(t.path, 'site.yaml'), slurmSiteYaml(siteExtra));
      for (const [rel, text] of Object.entries(files)) {
        await mkdir(join(t.path, rel, '..'), { recursive: true });
        await writeFile(join(t.path, rel), text);
      }
      return t.path;
    },
    async cleanup() {
      for (const c of cleanups) await c();
    },
  };
}

export const slurmRunArgs = (ws: string, ...args: string[]): string[] => ['run', '--json', '--executor', 'slurm', '--site', join(ws, 'site.yaml'), ...args];

export const runSlurm = (ws: string, ...args: string[]) => hpcflow(slurmRunArgs(ws, ...args), ws, { SLURM_CONF });

/** The CLI as a child process (to interrupt or kill it). */
export const spawnSlurmRun = (ws: string, ...args: string[]) =>
  execa('node', [BIN, ...slurmRunArgs(ws, ...args)], { cwd: ws, reject: false, buffer: true, env: { CI: '1', SLURM_CONF } });

/** Containers any job of a run left behind (the task wrapper removes them, also on scancel). */
export async function runContainers(runId: string): Promise<string[]> {
  const r = await execa('docker', ['ps', '-aq', '--filter', `label=hpcflow.run-id=${runId}`]);
  return r.stdout.split('\n').filter(Boolean);
}

export const runIdOf = (stdout: string): string => (events(stdout).find((e) => e.type === 'run-start') as { runId: string }).runId;

export const jobOf = (stdout: string, stage: string) =>
  events(stdout).find((e) => e.type === 'stage-job' && e.stage === stage) as { jobId: string; adopted: boolean; after: string[] } | undefined;

interface Outcome {
  status: string;
  error?: string;
  result?: { nodes: string[]; cpuMs: number | null; timedOut: boolean; scheduler?: { state: string; accounting: string; jobId: string; adopted: boolean } };
}
export const endOf = (stdout: string, stage: string): Outcome =>
  (events(stdout).find((e) => e.type === 'stage-end' && e.stage === stage) as { outcome: Outcome }).outcome;
