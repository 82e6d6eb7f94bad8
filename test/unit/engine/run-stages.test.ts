import { mkdtemp, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { EngineEvent, FailureMode, RunSummary } from '../../../runner/engine/events.js';
import { runStages } from '../../../runner/engine/run.js';
import { openWorkspace } from '../../../runner/engine/workspace.js';
import type { FakeBehaviour } from '../../helpers/fake-executor.js';
import { FakeExecutor, sleep } from '../../helpers/fake-executor.js';

/** Engine logic against a controllable executor: scheduling, failure modes, caching rules. */
let ws: string;
beforeEach(async () => {
  ws = await mkdtemp(join(tmpdir(), 'hpcflow-engine-'));
  await mkdir(join(ws, 'pipelines'));
});
afterEach(async () => {
  await rm(ws, { recursive: true, force: true });
});

const writes = (text: string, ms = 0): FakeBehaviour => async (task, _hooks, signal) => {
  await sleep(ms, signal);
  if (signal.aborted) return { exitCode: null, signal: 'SIGKILL', canceled: true };
  for (const o of task.stage.outs) await writeFile(join(ws, o.path), text);
  return undefined;
};
const fails = (ms = 0): FakeBehaviour => async (_t, _h, signal) => {
  await sleep(ms, signal);
  return { exitCode: 2 };
};

async function run(
  yaml: string,
  behaviour: (id: string) => FakeBehaviour,
  opts: { failureMode?: FailureMode; jobs?: number; cpus?: number; abortOnFirstRun?: boolean } = {},
): Promise<{ summary: RunSummary; ex: FakeExecutor; events: EngineEvent[] }> {
  await writeFile(join(ws, 'pipelines/p.yaml'), yaml);
  const w = await openWorkspace(ws);
  const abort = new AbortController();
  // Abort once the first stage is really running (a fixed delay races the run's set-up on a loaded machine).
  const ex = new FakeExecutor(
    opts.abortOnFirstRun === true
      ? (id) => {
          setTimeout(() => abort.abort(), 20);
          return behaviour(id);
        }
      : behaviour,
  );
  const events: EngineEvent[] = [];
  const summary = await runStages({
    workspace: ws,
    graph: w.graph,
    ids: w.graph.ids,
    executor: ex,
    store: w.store,
    runs: w.runs,
    hashPath: w.hashPath,
    invalidate: w.invalidate,
    lock: w.lock,
    saveLock: (l) => w.saveLock(l),
    forced: new Set(),
    concurrency: opts.jobs ?? 4,
    cpuBudget: opts.cpus ?? 64,
    failureMode: opts.failureMode ?? 'stop',
    signal: abort.signal,
    onEvent: (e) => events.push(e),
  });
  await w.close();
  return { summary, ex, events };
}

const status = (s: RunSummary): Record<string, string> => Object.fromEntries([...s.outcomes].map(([id, o]) => [id, o.status]));

const FAN = `defaults: { image: fake:1 }
stages:
  a: { cmd: a, outs: [a.txt] }
  b: { cmd: b, deps: [a.txt], outs: [b.txt] }
  c: { cmd: c, outs: [c.txt] }
  d: { cmd: d, outs: [d.txt] }
`;

describe('runStages', () => {
  it('runs everything once, then nothing; outputs are cached and restorable', async () => {
    const first = await run(FAN, () => writes('x'));
    expect(status(first.summary)).toEqual({ 'p/a': 'ran', 'p/b': 'ran', 'p/c': 'ran', 'p/d': 'ran' });
    const second = await run(FAN, () => writes('x'));
    expect(second.ex.started).toEqual([]);
    await rm(join(ws, 'b.txt'));
    const third = await run(FAN, () => writes('x'));
    expect(status(third.summary)['p/b']).toBe('restored');
    expect(await readFile(join(ws, 'b.txt'), 'utf8')).toBe('x');
  });

  it('stop: nothing new starts after a failure; the failure is not cached', async () => {
    const r = await run(FAN, (id) => (id === 'p/a' ? fails() : writes('x', 20)), { jobs: 1 });
    expect(status(r.summary)).toEqual({ 'p/a': 'failed', 'p/b': 'skipped', 'p/c': 'not-started', 'p/d': 'not-started' });
    expect(r.summary.ok).toBe(false);
    expect(await readFile(join(ws, 'hpcflow.lock'), 'utf8').catch(() => 'none')).not.toContain('"p/a"');
  });

  it('continue: independent stages go on, dependants are skipped', async () => {
    const r = await run(FAN, (id) => (id === 'p/a' ? fails() : writes('x')), { jobs: 1, failureMode: 'continue' });
    expect(status(r.summary)).toEqual({ 'p/a': 'failed', 'p/b': 'skipped', 'p/c': 'ran', 'p/d': 'ran' });
  });

  it('cancel: running stages are aborted', async () => {
    const r = await run(FAN, (id) => (id === 'p/a' ? fails(10) : writes('x', 5_000)), { jobs: 4, failureMode: 'cancel' });
    expect(status(r.summary)).toEqual({ 'p/a': 'failed', 'p/b': 'skipped', 'p/c': 'canceled', 'p/d': 'canceled' });
  });

  it('never runs more than -j stages, or more CPUs than the budget', async () => {
    const wide = `defaults: { image: fake:1, resources: { cpus_per_task: 2 } }\nstages:\n${[1, 2, 3, 4, 5, 6].map((i) => `  s${i}: { cmd: s${i}, outs: [s${i}.txt] }`).join('\n')}\n`;
    const j2 = await run(wide, () => writes('x', 20), { jobs: 2 });
    expect(j2.ex.maxRunning).toBe(2);
    // Another command: new fingerprints, so nothing comes from the cache.
    const cpu4 = await run(wide.replaceAll('cmd: s', 'cmd: t'), () => writes('x', 20), { jobs: 6, cpus: 4 });
    expect(cpu4.ex.maxRunning).toBe(2);
  });

  it('a declared output that was not produced fails the stage, and nothing is cached', async () => {
    const r = await run(FAN, (id) => (id === 'p/c' ? async () => undefined : writes('x')));
    const c = r.summary.outcomes.get('p/c');
    expect(c?.status).toBe('failed');
    expect(c?.status === 'failed' && c.error).toBe('declared output c.txt was not produced');
  });

  it('an abort cancels running stages and starts no more', async () => {
    const r = await run(FAN, () => writes('x', 5_000), { jobs: 1, abortOnFirstRun: true });
    expect(r.summary.aborted).toBe(true);
    // With one slot, whichever stage got it first (their plans finish in any order) is the only
    // one started: it is canceled, and no other stage starts.
    expect(r.ex.started).toHaveLength(1);
    const first = r.ex.started[0] as string;
    expect(status(r.summary)[first]).toBe('canceled');
    for (const [id, st] of Object.entries(status(r.summary))) if (id !== first) expect(st, id).not.toBe('ran');
  });

  it('events: a stage starts only after the stages it depends on ended', async () => {
    const r = await run(FAN, () => writes('x', 5));
    const order = r.events.filter((e) => e.type === 'stage-start' || e.type === 'stage-end').map((e) => `${e.type}:${'stage' in e ? e.stage : ''}`);
    expect(order.indexOf('stage-start:p/b')).toBeGreaterThan(order.indexOf('stage-end:p/a'));
  });
});
