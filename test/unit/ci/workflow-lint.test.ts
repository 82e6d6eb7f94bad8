import { describe, expect, it } from 'vitest';
import { conjuncts, expressionProblems, expressions, formatFinding, hasSameRepoGuard, lintActionText, lintWorkflowText, reachableFrom } from '../../../runner/ci/workflow-lint.js';
import type { Finding } from '../../../runner/ci/workflow-lint.js';

const SHA = 'b4ffde65f46336ab88eb53be808477a3936bae11';

const GOOD_WORKFLOW = `name: good
on:
  push:
  pull_request:
permissions:
  contents: read
jobs:
  hosted:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@${SHA}
      - run: echo "$TITLE"
        env:
          TITLE: \${{ github.event.pull_request.title }}
  hpc:
    if: github.event_name == 'pull_request' && github.event.pull_request.head.repo.full_name == github.repository
    runs-on: [self-hosted, linux, hpc]
    steps:
      - uses: ./actions/run
  push-only:
    if: \${{ github.event_name == 'push' }}
    runs-on: [self-hosted, linux]
    steps:
      - run: echo hi
        if: always() && steps.x.outcome != 'skipped'
`;

const GOOD_ACTION = `name: a
description: d
inputs:
  who:
    description: w
runs:
  using: composite
  steps:
    - shell: bash
      env:
        WHO: \${{ inputs.who }}
      run: echo "$WHO"
`;

function rules(fs: Finding[]): string[] {
  return fs.map((f) => `${f.rule}@${f.line}:${f.col}`);
}

describe('workflow linter: good fixtures are clean', () => {
  it('workflow', () => expect(lintWorkflowText(GOOD_WORKFLOW, 'good.yml')).toEqual([]));
  it('composite action', () => expect(lintActionText(GOOD_ACTION, 'action.yml')).toEqual([]));
});

describe('workflow linter: each rule fires with file:line:col', () => {
  it('yaml syntax', () => {
    const f = lintWorkflowText('on: [push\njobs: {}\n', 'w.yml');
    expect(f[0]?.rule).toBe('yaml');
    expect(formatFinding(f[0]!)).toMatch(/^w\.yml:\d+:\d+: yaml: /);
  });

  it('structure: missing on, empty jobs', () => {
    expect(rules(lintWorkflowText('name: x\npermissions: {}\njobs: {}\n', 'w.yml'))).toEqual(['structure@1:1', 'structure@3:7']);
  });

  it('structure: runs-on, uses xor run, steps', () => {
    const text = `on: push
permissions: {}
jobs:
  a:
    steps:
      - run: x
  b:
    runs-on: ubuntu-latest
    steps:
      - name: neither
      - run: x
        uses: ./y
  c:
    runs-on: ubuntu-latest
    steps: []
`;
    const f = lintWorkflowText(text, 'w.yml');
    expect(rules(f)).toEqual(['structure@4:3', 'structure@10:9', 'structure@11:9', 'structure@15:12']);
    expect(formatFinding(f[0]!)).toBe("w.yml:4:3: structure: job 'a' has no runs-on:");
  });

  it('expression: unbalanced, unknown context, unknown function', () => {
    const text = `on: push
permissions: {}
jobs:
  a:
    runs-on: ubuntu-latest
    env:
      X: \${{ github.sha
      Y: \${{ gihtub.sha }}
      Z: \${{ frobnicate(github.sha) }}
    steps:
      - run: echo
        if: secret.x == 'y'
`;
    const f = lintWorkflowText(text, 'w.yml');
    expect(rules(f)).toEqual(['expression@7:10', 'expression@8:10', 'expression@9:10', 'expression@12:13']);
    expect(f.map((x) => x.message)).toEqual([expect.stringContaining('unbalanced'), "unknown context 'gihtub'", "unknown function 'frobnicate'", "unknown context 'secret'"]);
  });

  it('permissions: missing, write-all', () => {
    const text = `on: push
jobs:
  a:
    runs-on: ubuntu-latest
    steps:
      - run: x
  b:
    runs-on: ubuntu-latest
    permissions: write-all
    steps:
      - run: x
`;
    expect(rules(lintWorkflowText(text, 'w.yml'))).toEqual(['permissions@3:3', 'permissions@9:18']);
  });

  it('self-hosted-fork: a pull_request job on self-hosted without the same-repository guard', () => {
    const text = `on: [push, pull_request]
permissions: {}
jobs:
  a:
    runs-on: [self-hosted, linux, hpc]
    steps:
      - run: x
  b:
    if: github.event_name != 'push'
    runs-on: self-hosted
    steps:
      - run: x
  c:
    if: github.event_name == 'push' || github.event.pull_request.head.repo.full_name == github.repository
    runs-on: [self-hosted]
    steps:
      - run: x
  d:
    runs-on: \${{ matrix.runner }}
    steps:
      - run: x
  ok:
    if: github.event_name == 'push'
    runs-on: [self-hosted]
    steps:
      - run: x
`;
    const f = lintWorkflowText(text, 'w.yml');
    expect(rules(f)).toEqual(['self-hosted-fork@4:3', 'self-hosted-fork@8:3', 'self-hosted-fork@13:3', 'self-hosted-fork@18:3']);
    expect(formatFinding(f[0]!)).toContain('w.yml:4:3: self-hosted-fork:');
  });

  it('pr-target-head: pull_request_target checking out or fetching the head', () => {
    const text = `on: pull_request_target
permissions:
  contents: read
jobs:
  a:
    runs-on: [self-hosted, hpc]
    steps:
      - uses: actions/checkout@${SHA}
        with:
          ref: \${{ github.event.pull_request.head.sha }}
      - run: git fetch origin "refs/pull/$N/head"
      - run: echo safe
  b:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@${SHA}
        with:
          repository: \${{ github.event.pull_request.head.repo.full_name }}
`;
    const f = lintWorkflowText(text, 'w.yml');
    expect(rules(f)).toEqual(['pr-target-head@8:9', 'pr-target-head@11:9', 'pr-target-head@16:9']);
    expect(f[0]?.message).toContain('self-hosted');
  });

  it('untrusted-interpolation and secret-in-run in workflows', () => {
    const text = `on: pull_request
permissions: {}
jobs:
  a:
    runs-on: ubuntu-latest
    steps:
      - run: echo "\${{ github.event.pull_request.title }}"
      - run: |
          git checkout \${{ github.head_ref }}
      - run: curl -H "token \${{ secrets.TOKEN }}" x
      - run: echo \${{ github.sha }}
`;
    expect(rules(lintWorkflowText(text, 'w.yml'))).toEqual(['untrusted-interpolation@7:14', 'untrusted-interpolation@8:14', 'secret-in-run@10:14']);
  });

  it('unpinned-action: tags, branches, short SHAs, docker without digest', () => {
    const text = `on: push
permissions: {}
jobs:
  a:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
      - uses: actions/checkout@b4ffde6
      - uses: some/action/sub@main
      - uses: docker://alpine:3
      - uses: ./local
      - uses: actions/checkout@${SHA}
  b:
    uses: org/repo/.github/workflows/x.yml@v1
`;
    expect(rules(lintWorkflowText(text, 'w.yml'))).toEqual(['unpinned-action@7:15', 'unpinned-action@8:15', 'unpinned-action@9:15', 'unpinned-action@10:15', 'unpinned-action@14:11']);
  });

  it('composite actions: using, shell, inputs through env, declared inputs', () => {
    const js = `name: a
description: d
runs:
  using: node20
  main: index.js
`;
    expect(rules(lintActionText(js, 'action.yml'))).toEqual(['structure@4:10']);
    const bad = `name: a
description: d
inputs:
  who:
    description: w
runs:
  using: composite
  steps:
    - run: echo "\${{ inputs.who }}"
    - shell: bash
      env:
        X: \${{ inputs.whom }}
      run: echo "$X"
    - uses: actions/cache@v4
`;
    expect(rules(lintActionText(bad, 'action.yml'))).toEqual(['unknown-input@12:12', 'untrusted-interpolation@9:12', 'structure@9:7', 'unpinned-action@14:13']);
    expect(rules(lintActionText('name: a\nruns:\n  using: composite\n  steps: []\n', 'action.yml'))).toEqual(['structure@1:1', 'structure@4:10']);
  });
});

describe('expression helpers', () => {
  it('extracts bodies and detects imbalance', () => {
    expect(expressions('a ${{ x }} b ${{y}}')).toEqual(['x', 'y']);
    expect(expressions('${{ x ')).toBeNull();
    expect(expressions('${{ ${{ x }} }}')).toBeNull();
  });
  it('knows contexts, functions, literals and strings', () => {
    expect(expressionProblems("contains(github.event.pull_request.labels.*.name, 'hpc') && true && 1.5 > 0")).toEqual([]);
    expect(expressionProblems("format('{0} foo', bar)")).toEqual(["unknown context 'bar'"]);
    expect(expressionProblems("toJSON(github")).toEqual(['unbalanced brackets in \'toJSON(github\'']);
  });
  it('splits conditions and decides reachability', () => {
    expect(conjuncts("${{ github.event_name == 'push' && (a || b) }}")).toEqual(["github.event_name == 'push'", 'a || b']);
    expect(reachableFrom("github.event_name == 'push'", 'pull_request')).toBe(false);
    expect(reachableFrom("github.event_name != 'pull_request'", 'pull_request')).toBe(false);
    expect(reachableFrom("github.event_name == 'push' || true", 'pull_request')).toBe(true);
    expect(hasSameRepoGuard('github.repository == github.event.pull_request.head.repo.full_name && x')).toBe(true);
    expect(hasSameRepoGuard('github.event.pull_request.head.repo.full_name == github.repository || x')).toBe(false);
  });
});
