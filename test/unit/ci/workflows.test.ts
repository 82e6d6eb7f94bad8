import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { formatFinding, hasSameRepoGuard, lintFile, reachableFrom } from '../../../runner/ci/workflow-lint.js';

const root = fileURLToPath(new URL('../../../', import.meta.url));

function files(dir: string, match: RegExp): string[] {
  const out: string[] = [];
  for (const e of readdirSync(join(root, dir), { withFileTypes: true, recursive: true })) {
    if (e.isFile() && match.test(e.name)) out.push(relative(root, join(e.parentPath, e.name)));
  }
  return out.sort();
}

const workflows = files('.github/workflows', /\.ya?ml$/);
const actions = files('actions', /^action\.ya?ml$/);

type Job = { if?: string; 'runs-on'?: string | string[]; permissions?: unknown; concurrency?: { group?: string; 'cancel-in-progress'?: boolean }; steps?: { uses?: string; run?: string; with?: Record<string, unknown> }[]; environment?: string };
type Workflow = { on: Record<string, unknown>; permissions?: unknown; jobs: Record<string, Job> };
const load = (f: string): Workflow => parse(readFileSync(join(root, f), 'utf8')) as Workflow;
const selfHosted = (j: Job): boolean => ([j['runs-on'] ?? []].flat() as string[]).includes('self-hosted');

describe('the repository workflows and actions lint clean', () => {
  it('finds them', () => {
    expect(workflows).toEqual(expect.arrayContaining(['.github/workflows/hpcflow.yml', '.github/workflows/ci.yml']));
    expect(actions).toEqual(['actions/report/action.yml', 'actions/run/action.yml']);
  });
  it.each([...workflows, ...actions])('%s', (f) => {
    expect(lintFile(join(root, f), f).map(formatFinding)).toEqual([]);
  });
});

describe('hpcflow.yml security properties', () => {
  const wf = load('.github/workflows/hpcflow.yml');
  const jobs = Object.entries(wf.jobs);

  it('has no pull_request_target trigger', () => {
    for (const f of workflows) expect(Object.keys(load(f).on ?? {}), f).not.toContain('pull_request_target');
  });

  it('no self-hosted job is reachable from a pull request of a fork', () => {
    const hosted = jobs.filter(([, j]) => selfHosted(j));
    expect(hosted.map(([id]) => id).sort()).toEqual(['dispatch', 'pr', 'run']);
    for (const [id, j] of hosted) {
      expect(j['runs-on'], id).toEqual(['self-hosted', 'linux', 'hpc']);
      expect(typeof j.if, id).toBe('string');
      const fromPr = reachableFrom(j.if, 'pull_request');
      expect(!fromPr || hasSameRepoGuard(j.if), `${id}: if: ${j.if}`).toBe(true);
    }
    expect(wf.jobs.pr?.if).toContain('github.event.pull_request.head.repo.full_name == github.repository');
    expect(reachableFrom(wf.jobs.run?.if, 'pull_request')).toBe(false);
    expect(reachableFrom(wf.jobs.dispatch?.if, 'pull_request')).toBe(false);
  });

  it('fork pull requests get a GitHub-hosted job that only explains', () => {
    const j = wf.jobs['fork-pr']!;
    expect(j['runs-on']).toBe('ubuntu-latest');
    expect(j.if).toContain('github.event.pull_request.head.repo.full_name != github.repository');
    expect(j.permissions).toEqual({});
    expect(j.steps?.every((s) => s.uses === undefined && !/\bgit (fetch|checkout|clone)\b|^\s*hpcflow /m.test(s.run ?? ''))).toBe(true);
  });

  it('the maintainer path runs only from the default branch, behind an environment, on the reviewed SHA', () => {
    const j = wf.jobs.dispatch!;
    expect(j.if).toContain("github.event_name == 'workflow_dispatch'");
    expect(j.if).toContain("github.ref == format('refs/heads/{0}', github.event.repository.default_branch)");
    expect(j.environment).toBe('hpc-fork');
    const checkout = j.steps?.[0]?.run ?? '';
    expect(checkout).toMatch(/\[ "\$got" != "\$WANT" \]/);
    expect(checkout).toContain('refs/pull/$PR/head');
  });

  it('pushes run serialized per ref, never cancelled', () => {
    for (const id of ['run', 'pr']) {
      expect(wf.jobs[id]?.concurrency).toEqual({ group: 'hpcflow-${{ github.ref }}', 'cancel-in-progress': false });
    }
    expect(Object.keys(wf.on)).toEqual(['push', 'pull_request', 'workflow_dispatch']);
  });

  it('every job has minimal permissions; only the push job may write contents', () => {
    expect(wf.permissions).toEqual({});
    for (const [id, j] of jobs) {
      expect(j.permissions, id).toBeDefined();
      const perms = (j.permissions ?? {}) as Record<string, string>;
      if (id !== 'run') expect(perms.contents ?? 'read', id).toBe('read');
    }
    expect(wf.jobs.run?.permissions).toEqual({ contents: 'write' });
  });

  it('self-hosted jobs use no JavaScript actions and never persist the token in git config', () => {
    for (const [id, j] of jobs.filter(([, j]) => selfHosted(j))) {
      for (const s of j.steps ?? []) {
        if (s.uses !== undefined) expect(s.uses, id).toMatch(/^\.\/actions\//);
        expect(s.run ?? '', id).not.toMatch(/git config[^\n]*extraheader|git remote add origin "https:\/\/[^"]*\$TOKEN/);
      }
    }
  });
});

describe('hpcflow.yml pull-request reports', () => {
  const wf = load('.github/workflows/hpcflow.yml');
  it('commits the results on a local branch, never pushed, so that report reads them', () => {
    for (const id of ['pr', 'dispatch']) {
      const steps = wf.jobs[id]?.steps ?? [];
      const run = steps.find((s) => s.uses === './actions/run');
      expect(run?.with?.['commit-results'], id).toBe('local');
      expect(steps.some((s) => /git checkout -q --force -B "hpcflow\/pr-\$PR"/.test(s.run ?? '')), id).toBe(true);
      expect(wf.jobs[id]?.permissions, id).toMatchObject({ contents: 'read' });
    }
  });
  it('measures base and head alternately only when asked (a label), and the report judges those samples', () => {
    const steps = (wf.jobs.pr?.steps ?? []) as { id?: string; if?: string; run?: string; uses?: string; with?: Record<string, unknown> }[];
    const measure = steps.find((s) => s.id === 'measure');
    expect(measure?.if).toBe("contains(github.event.pull_request.labels.*.name, 'hpcflow:measure')");
    expect(measure?.run).toMatch(/hpcflow measure --base "origin\/\$BASE_REF" --head "\$HEAD_SHA"/);
    const report = steps.find((s) => s.uses === './actions/report');
    expect(report?.with?.samples).toBe('${{ steps.measure.outputs.samples }}');
  });
});
