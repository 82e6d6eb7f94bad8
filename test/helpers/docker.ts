/**
 * Helpers for tests that use the real Docker engine.
 *
 * The suite's global setup is expected to call `setupDockerForTests()` (it runs
 * scripts/ensure-docker.sh and scripts/build-test-images.sh: idempotent, ~70 ms when all is
 * ready). Docker test files also call `ensureDockerForTests()` in `beforeAll`, so they work when
 * run alone or under a config without that global setup.
 */
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type Dockerode from 'dockerode';
import { execa } from 'execa';
import type { ResolvedImage, StageTask } from '../../runner/executors/executor.js';
import type { Resources, Stage } from '../../runner/model/pipeline.js';

export const TEST_IMAGE = 'hpcflow-test/busybox:1';
export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

/** Runs the two scripts (engine up, test images built). */
export async function setupDockerForTests(): Promise<void> {
  await execa('bash', [path.join(REPO_ROOT, 'scripts', 'ensure-docker.sh')], { stdio: 'inherit' });
  await execa('bash', [path.join(REPO_ROOT, 'scripts', 'build-test-images.sh')], { stdio: 'inherit' });
}

let ensured: Promise<void> | undefined;
/** `setupDockerForTests()` once per test process. */
export function ensureDockerForTests(): Promise<void> {
  ensured ??= setupDockerForTests();
  return ensured;
}

let dockerP: Promise<Dockerode> | undefined;
export function testDocker(): Promise<Dockerode> {
  dockerP ??= import('dockerode').then(({ default: Docker }) => new Docker({ socketPath: '/var/run/docker.sock' }));
  return dockerP;
}

export interface ContainerSummary {
  readonly id: string;
  readonly names: string[];
  readonly state: string;
  readonly labels: Record<string, string>;
}

/** All containers (running or not) with label `key` (= `value` when given). */
export async function listContainersByLabel(key: string, value?: string): Promise<ContainerSummary[]> {
  const docker = await testDocker();
  const list = await docker.listContainers({
    all: true,
    filters: { label: [value === undefined ? key : `${key}=${value}`] },
  });
  return list.map((c) => ({ id: c.Id, names: c.Names, state: c.State, labels: c.Labels ?? {} }));
}

/** Containers whose command line contains `marker` (for build containers, which have no labels). */
export async function listContainersByCommand(marker: string): Promise<ContainerSummary[]> {
  const docker = await testDocker();
  const list = await docker.listContainers({ all: true });
  return list
    .filter((c) => c.Command.includes(marker))
    .map((c) => ({ id: c.Id, names: c.Names, state: c.State, labels: c.Labels ?? {} }));
}

/** Removes containers by label (test cleanup of containers a test created on purpose). */
export async function removeContainersByLabel(key: string, value: string): Promise<void> {
  const docker = await testDocker();
  for (const c of await listContainersByLabel(key, value)) {
    await docker.getContainer(c.id).remove({ force: true, v: true }).catch(() => undefined);
  }
}

export function uniqueId(prefix = 'test'): string {
  return `${prefix}-${randomBytes(5).toString('hex')}`;
}

const DEFAULT_RESOURCES: Resources = {
  nodes: 1,
  tasksPerNode: 1,
  cpusPerTask: 1,
  memoryBytes: null,
  timeLimitSec: null,
};

/** A minimal valid Stage; override what the test is about. */
export function makeStage(overrides: Partial<Omit<Stage, 'resources'>> & { resources?: Partial<Resources> } = {}): Stage {
  const { resources, ...rest } = overrides;
  return {
    id: 'demo/step',
    pipeline: 'demo',
    name: 'step',
    matrix: {},
    image: { kind: 'ref', ref: TEST_IMAGE },
    cmd: 'true',
    wdir: '',
    deps: [],
    params: [],
    outs: [],
    metrics: null,
    env: {},
    pos: { file: 'pipelines/demo.yaml', line: 1, col: 1 },
    ...rest,
    resources: { ...DEFAULT_RESOURCES, ...resources },
  };
}

export function makeTask(opts: {
  stage: Stage;
  image: ResolvedImage;
  workspace: string;
  runId?: string;
  fingerprint?: string;
}): StageTask {
  return {
    runId: opts.runId ?? uniqueId('run'),
    stage: opts.stage,
    fingerprint: opts.fingerprint ?? 'f'.repeat(64),
    image: opts.image,
    workspace: opts.workspace,
  };
}
