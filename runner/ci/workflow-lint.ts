/**
 * Offline linter for GitHub Actions workflows (`.github/workflows/*.yml`) and composite actions
 * (`action.yml`). No network, no JSON Schema: structure, expressions and the security rules this
 * project relies on (see docs/github.md). Every finding carries `file:line:col`.
 *
 * Rules:
 * - `yaml`: the file does not parse.
 * - `structure`: wrong shapes (on/jobs/steps, runs-on, uses xor run, composite `runs`, step `shell`).
 * - `expression`: unbalanced `${{ }}`, unknown context or function.
 * - `unknown-input`: an action's `inputs.X` that the action does not declare.
 * - `permissions`: a job without `permissions` (its own or the workflow's), or `write-all`.
 * - `self-hosted-fork`: a job on a self-hosted runner reachable from a pull request of a fork.
 * - `pr-target-head`: a `pull_request_target` workflow that checks out or runs the PR head.
 * - `untrusted-interpolation`: `${{ github.event.* }}`, `github.head_ref` or `inputs.*` inside `run:`.
 * - `secret-in-run`: `${{ secrets.* }}` inside `run:` (pass tokens through `env:`).
 * - `unpinned-action`: a third-party `uses:` not pinned to a 40-hex commit SHA (or docker digest).
 */
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { LineCounter, isMap, isScalar, isSeq, parseDocument } from 'yaml';
import type { Node, Pair, YAMLMap } from 'yaml';

export type Rule =
  | 'yaml'
  | 'structure'
  | 'expression'
  | 'unknown-input'
  | 'permissions'
  | 'self-hosted-fork'
  | 'pr-target-head'
  | 'untrusted-interpolation'
  | 'secret-in-run'
  | 'unpinned-action';

export interface Finding {
  readonly file: string;
  readonly line: number;
  readonly col: number;
  readonly rule: Rule;
  readonly message: string;
}

export function formatFinding(f: Finding): string {
  return `${f.file}:${f.line}:${f.col}: ${f.rule}: ${f.message}`;
}

const CONTEXTS = new Set(['github', 'env', 'vars', 'job', 'jobs', 'steps', 'runner', 'secrets', 'strategy', 'matrix', 'needs', 'inputs']);
const FUNCTIONS = new Set(['contains', 'startswith', 'endswith', 'format', 'join', 'tojson', 'fromjson', 'hashfiles', 'success', 'always', 'cancelled', 'failure']);
const LITERALS = new Set(['true', 'false', 'null', 'nan', 'infinity']);
/** The same-repository guard a `pull_request` job on a self-hosted runner must carry. */
export const SAME_REPO_GUARD = 'github.event.pull_request.head.repo.full_name == github.repository';
const SHA_PIN = /^[^@\s]+\/[^@\s]+@[0-9a-f]{40}$/;

class Ctx {
  readonly findings: Finding[] = [];
  constructor(
    readonly file: string,
    readonly lc: LineCounter,
  ) {}
  at(node: Node | Pair | null | undefined, rule: Rule, message: string): void {
    let offset = 0;
    if (node !== null && node !== undefined) {
      const n = 'range' in node ? node : ((node as Pair).key as Node | null);
      offset = n?.range?.[0] ?? 0;
    }
    const { line, col } = this.lc.linePos(offset);
    this.findings.push({ file: this.file, line, col, rule, message });
  }
}

function pair(map: YAMLMap, key: string): Pair<Node, Node | null> | undefined {
  return map.items.find((p) => isScalar(p.key) && p.key.value === key) as Pair<Node, Node | null> | undefined;
}
function val(map: YAMLMap, key: string): Node | null | undefined {
  return pair(map, key)?.value;
}
function str(n: Node | null | undefined): string | undefined {
  return isScalar(n) && n.value !== null && n.value !== undefined ? String(n.value) : undefined;
}
function entries(map: YAMLMap): { key: string; keyNode: Node; value: Node | null }[] {
  return map.items.flatMap((p) => (isScalar(p.key) ? [{ key: String(p.key.value), keyNode: p.key, value: (p.value ?? null) as Node | null }] : []));
}

/** The `${{ ... }}` bodies of a string; null when unbalanced. */
export function expressions(s: string): string[] | null {
  const out: string[] = [];
  let i = 0;
  for (;;) {
    const open = s.indexOf('${{', i);
    if (open < 0) return out;
    const end = s.indexOf('}}', open + 3);
    if (end < 0) return null;
    const body = s.slice(open + 3, end);
    if (body.includes('${{')) return null;
    out.push(body.trim());
    i = end + 2;
  }
}

/** Problems inside one expression body (no `${{ }}`): unknown contexts and functions. */
export function expressionProblems(body: string): string[] {
  const problems: string[] = [];
  const stripped = body.replace(/'(?:[^']|'')*'/g, "''");
  if (/['"]/.test(stripped.replace(/''/g, ''))) problems.push(`unterminated string in '${body}'`);
  let depth = 0;
  for (const ch of stripped) {
    if (ch === '(' || ch === '[') depth++;
    if (ch === ')' || ch === ']') depth--;
    if (depth < 0) break;
  }
  if (depth !== 0) problems.push(`unbalanced brackets in '${body}'`);
  const re = /([A-Za-z_][\w-]*)/g;
  for (let m = re.exec(stripped); m !== null; m = re.exec(stripped)) {
    const name = m[1] ?? '';
    const before = stripped.slice(0, m.index).trimEnd();
    if (before.endsWith('.') || /[0-9]$/.test(stripped.slice(0, m.index))) continue;
    const after = stripped.slice(m.index + name.length).trimStart();
    const lower = name.toLowerCase();
    if (after.startsWith('(')) {
      if (!FUNCTIONS.has(lower)) problems.push(`unknown function '${name}'`);
    } else if (!CONTEXTS.has(name) && !LITERALS.has(lower)) {
      problems.push(`unknown context '${name}'`);
    }
  }
  return problems;
}

interface Scope {
  readonly inputs?: ReadonlySet<string>;
}

/** Every scalar string below `node`: expression syntax, contexts, declared inputs. */
function checkExpressions(ctx: Ctx, node: Node | null | undefined, scope: Scope, key?: string): void {
  if (node === null || node === undefined) return;
  if (isMap(node)) {
    for (const e of entries(node)) checkExpressions(ctx, e.value, scope, e.key);
    return;
  }
  if (isSeq(node)) {
    for (const item of node.items) checkExpressions(ctx, item as Node, scope);
    return;
  }
  if (!isScalar(node) || typeof node.value !== 'string') return;
  const s = node.value;
  const bodies = expressions(s);
  if (bodies === null) {
    ctx.at(node, 'expression', `unbalanced '\${{ }}' in '${s.length > 60 ? `${s.slice(0, 60)}…` : s}'`);
    return;
  }
  // `if:` is an expression even without `${{ }}`.
  const all = key === 'if' && bodies.length === 0 ? [s] : bodies;
  for (const b of all) {
    for (const p of expressionProblems(b)) ctx.at(node, 'expression', p);
    if (scope.inputs !== undefined) {
      for (const m of b.matchAll(/\binputs\.([\w-]+)/g)) {
        if (!scope.inputs.has(m[1] ?? '')) ctx.at(node, 'unknown-input', `inputs.${m[1]} is not declared in the action's inputs`);
      }
    }
  }
}

/** A `run:` script: no untrusted input or secret interpolated into it. */
function checkRunScript(ctx: Ctx, node: Node): void {
  const s = str(node);
  if (s === undefined) return;
  for (const b of expressions(s) ?? []) {
    if (/\bgithub\.event\b|\bgithub\.head_ref\b|\binputs\./.test(b)) {
      ctx.at(node, 'untrusted-interpolation', `'\${{ ${b} }}' is interpolated into a shell script: pass it through env: and quote "$VAR"`);
    }
    if (/\bsecrets\./.test(b)) ctx.at(node, 'secret-in-run', `'\${{ ${b} }}' is interpolated into a shell script: pass it through env:`);
  }
}

function checkUses(ctx: Ctx, node: Node): void {
  const u = str(node);
  if (u === undefined) {
    ctx.at(node, 'structure', 'uses: must be a string');
    return;
  }
  if (u.startsWith('./')) return;
  if (u.startsWith('docker://')) {
    if (!/@sha256:[0-9a-f]{64}$/.test(u)) ctx.at(node, 'unpinned-action', `'${u}' is not pinned to an image digest (@sha256:…)`);
    return;
  }
  if (!SHA_PIN.test(u)) ctx.at(node, 'unpinned-action', `'${u}' is not pinned to a full 40-hex commit SHA`);
}

function checkSteps(ctx: Ctx, steps: Node | null | undefined, where: Node | Pair | undefined, composite: boolean): void {
  if (!isSeq(steps) || steps.items.length === 0) {
    ctx.at(steps ?? where, 'structure', 'steps: must be a non-empty list');
    return;
  }
  for (const item of steps.items) {
    const step = item as Node;
    if (!isMap(step)) {
      ctx.at(step, 'structure', 'a step must be a mapping');
      continue;
    }
    const uses = val(step, 'uses');
    const run = val(step, 'run');
    if ((uses === undefined) === (run === undefined)) {
      ctx.at(step, 'structure', 'a step must have exactly one of uses: or run:');
      continue;
    }
    if (uses !== undefined && uses !== null) checkUses(ctx, uses);
    if (run !== undefined && run !== null) {
      if (str(run) === undefined) ctx.at(run, 'structure', 'run: must be a string');
      else checkRunScript(ctx, run);
      if (composite && val(step, 'shell') === undefined) ctx.at(step, 'structure', 'a run step of a composite action must set shell:');
    }
    if (uses !== undefined && val(step, 'shell') !== undefined) ctx.at(pair(step, 'shell'), 'structure', 'shell: is only for run: steps');
  }
}

/** Labels of `runs-on` (string, list, or `{ labels }`), lower-case; null when dynamic. */
function runnerLabels(n: Node | null | undefined): string[] | null {
  if (isScalar(n)) return [String(n.value).toLowerCase()];
  if (isSeq(n)) return n.items.map((i) => (isScalar(i) ? String(i.value).toLowerCase() : ''));
  if (isMap(n)) return runnerLabels(val(n, 'labels'));
  return null;
}

export function isSelfHosted(runsOn: Node | null | undefined): boolean {
  const labels = runnerLabels(runsOn);
  // A dynamic runs-on (an expression) could be a self-hosted runner: treat it as one.
  if (labels === null || labels.some((l) => l.includes('${{'))) return true;
  return labels.includes('self-hosted');
}

/** Top-level `&&` conjuncts of an `if:` (the whole condition when it has a top-level `||`). */
export function conjuncts(cond: string): string[] {
  const s = cond.trim().replace(/^\$\{\{([\s\S]*)\}\}$/, '$1').trim();
  const parts: string[] = [];
  let depth = 0;
  let start = 0;
  let quoted = false;
  for (let i = 0; i < s.length; i++) {
    const ch = s[i];
    if (ch === "'") quoted = !quoted;
    if (quoted) continue;
    if (ch === '(') depth++;
    else if (ch === ')') depth--;
    else if (depth === 0 && s.startsWith('||', i)) return [norm(s)];
    else if (depth === 0 && s.startsWith('&&', i)) {
      parts.push(s.slice(start, i));
      start = i + 2;
    }
  }
  parts.push(s.slice(start));
  return parts.map(norm);
}
function norm(s: string): string {
  let t = s.trim();
  while (t.startsWith('(') && t.endsWith(')')) t = t.slice(1, -1).trim();
  return t.replace(/\s+/g, ' ').replace(/"/g, "'");
}

/** Whether a job with this `if:` can run for `event` (conservative: true unless provably not). */
export function reachableFrom(cond: string | undefined, event: string): boolean {
  if (cond === undefined) return true;
  for (const c of conjuncts(cond)) {
    const eq = /^github\.event_name == '([\w-]+)'$/.exec(c) ?? /^'([\w-]+)' == github\.event_name$/.exec(c);
    if (eq !== null && eq[1] !== event) return false;
    const ne = /^github\.event_name != '([\w-]+)'$/.exec(c);
    if (ne !== null && ne[1] === event) return false;
  }
  return true;
}

/** Whether an `if:` carries the same-repository guard as one of its top-level conjuncts. */
export function hasSameRepoGuard(cond: string | undefined): boolean {
  if (cond === undefined) return false;
  const reversed = 'github.repository == github.event.pull_request.head.repo.full_name';
  return conjuncts(cond).some((c) => c === SAME_REPO_GUARD || c === reversed);
}

function triggerNames(on: Node | null | undefined): string[] | null {
  if (isScalar(on)) return [String(on.value)];
  if (isSeq(on)) return on.items.map((i) => (isScalar(i) ? String(i.value) : ''));
  if (isMap(on)) return entries(on).map((e) => e.key);
  return null;
}

const HEAD_REF = /github\.event\.pull_request\.head\.(sha|ref)|github\.head_ref|refs\/pull\/|merge_commit_sha/;

function checkPermissions(ctx: Ctx, node: Node | null | undefined, where: Node | Pair | undefined): void {
  if (node === undefined) return;
  if (isScalar(node) && String(node.value) === 'write-all') ctx.at(node, 'permissions', "permissions: write-all: grant only the scopes the job needs");
  else if (!isMap(node) && !(isScalar(node) && String(node.value) === 'read-all')) ctx.at(node ?? where, 'permissions', 'permissions: must be a mapping of scopes');
}

/** The file parsed, with YAML errors and a non-mapping root as findings (root null then). */
function parseRoot(text: string, file: string, what: string): { ctx: Ctx; root: YAMLMap | null } {
  const lc = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lc, prettyErrors: false });
  const ctx = new Ctx(file, lc);
  if (doc.errors.length > 0) {
    for (const e of doc.errors) ctx.at({ range: [e.pos[0], e.pos[1], e.pos[1]] } as unknown as Node, 'yaml', e.message.split('\n')[0] ?? e.message);
    return { ctx, root: null };
  }
  const root = doc.contents as Node | null;
  if (!isMap(root)) {
    ctx.at(root, 'structure', `${what} must be a mapping`);
    return { ctx, root: null };
  }
  return { ctx, root };
}

export function lintWorkflowText(text: string, file: string): Finding[] {
  const { ctx, root } = parseRoot(text, file, 'a workflow');
  if (root === null) return ctx.findings;
  const onPair = pair(root, 'on');
  const triggers = triggerNames(onPair?.value);
  if (onPair === undefined || triggers === null || triggers.length === 0) ctx.at(onPair ?? root, 'structure', 'on: must name at least one event');
  const events = new Set(triggers ?? []);
  const topPerms = val(root, 'permissions');
  checkPermissions(ctx, topPerms, pair(root, 'permissions'));
  const jobsNode = val(root, 'jobs');
  if (!isMap(jobsNode) || jobsNode.items.length === 0) {
    ctx.at(jobsNode ?? root, 'structure', 'jobs: must be a non-empty mapping');
    return ctx.findings;
  }
  for (const [k, v] of entries(root).map((e) => [e.key, e.value] as const)) {
    if (k !== 'jobs') checkExpressions(ctx, v, {});
  }
  for (const { key: id, keyNode, value: job } of entries(jobsNode)) {
    if (!/^[A-Za-z_][\w-]*$/.test(id)) ctx.at(keyNode, 'structure', `job id '${id}' must start with a letter or _ and contain only letters, digits, - and _`);
    if (!isMap(job)) {
      ctx.at(job ?? keyNode, 'structure', `job '${id}' must be a mapping`);
      continue;
    }
    checkExpressions(ctx, job, {});
    const perms = val(job, 'permissions');
    checkPermissions(ctx, perms, pair(job, 'permissions'));
    if (perms === undefined && topPerms === undefined) ctx.at(keyNode, 'permissions', `job '${id}' has no permissions: (neither its own nor the workflow's): the token would get the repository default`);
    const uses = val(job, 'uses');
    const cond = str(val(job, 'if'));
    if (uses !== undefined) {
      if (uses !== null) checkUses(ctx, uses);
      continue; // a reusable workflow: its jobs are linted in its own file
    }
    const runsOn = val(job, 'runs-on');
    if (runsOn === undefined || runsOn === null) {
      ctx.at(keyNode, 'structure', `job '${id}' has no runs-on:`);
      continue;
    }
    checkSteps(ctx, val(job, 'steps'), keyNode, false);
    const selfHosted = isSelfHosted(runsOn);
    if (selfHosted && events.has('pull_request') && reachableFrom(cond, 'pull_request') && !hasSameRepoGuard(cond)) {
      ctx.at(keyNode, 'self-hosted-fork', `job '${id}' runs on a self-hosted runner and is reachable from pull requests of forks: add \`if: ${SAME_REPO_GUARD}\``);
    }
    if (events.has('pull_request_target') && reachableFrom(cond, 'pull_request_target')) {
      const steps = val(job, 'steps');
      for (const item of isSeq(steps) ? steps.items : []) {
        if (!isMap(item)) continue;
        const u = str(val(item, 'uses'));
        const withNode = val(item, 'with');
        const ref = isMap(withNode) ? str(val(withNode, 'ref')) ?? str(val(withNode, 'repository')) : undefined;
        const run = str(val(item, 'run'));
        const envNode = val(item, 'env');
        const envText = isMap(envNode) ? entries(envNode).map((e) => str(e.value) ?? '').join(' ') : '';
        if ((u !== undefined && /^actions\/checkout@/.test(u) && ref !== undefined && HEAD_REF.test(ref)) || (u !== undefined && ref !== undefined && /github\.event\.pull_request\.head\.repo/.test(ref))) {
          ctx.at(item, 'pr-target-head', `job '${id}' checks out the pull request head under pull_request_target: fork code would run with the base repository's token${selfHosted ? ' on a self-hosted runner' : ''}`);
        } else if ((run !== undefined && HEAD_REF.test(run)) || HEAD_REF.test(envText)) {
          ctx.at(item, 'pr-target-head', `job '${id}' fetches or runs the pull request head under pull_request_target`);
        }
      }
    }
  }
  return ctx.findings;
}

export function lintActionText(text: string, file: string): Finding[] {
  const { ctx, root } = parseRoot(text, file, 'an action');
  if (root === null) return ctx.findings;
  for (const k of ['name', 'description']) if (str(val(root, k)) === undefined) ctx.at(root, 'structure', `an action needs ${k}:`);
  const inputsNode = val(root, 'inputs');
  const inputs = new Set<string>();
  if (inputsNode !== undefined) {
    if (!isMap(inputsNode)) ctx.at(inputsNode ?? pair(root, 'inputs'), 'structure', 'inputs: must be a mapping');
    else for (const e of entries(inputsNode)) inputs.add(e.key);
  }
  const runsPair = pair(root, 'runs');
  const runs = runsPair?.value;
  if (!isMap(runs)) {
    ctx.at(runs ?? runsPair ?? root, 'structure', 'runs: must be a mapping');
    return ctx.findings;
  }
  const using = str(val(runs, 'using'));
  if (using !== 'composite') {
    ctx.at(val(runs, 'using') ?? runsPair, 'structure', `runs.using must be 'composite' (got '${using ?? ''}'): JavaScript actions need the runner's bundled Node, docker actions need Docker on the runner`);
    return ctx.findings;
  }
  checkExpressions(ctx, root, { inputs });
  checkSteps(ctx, val(runs, 'steps'), runsPair, true);
  return ctx.findings;
}

/** Lints one file: an action when it is named action.yml/action.yaml, else a workflow. */
export function lintFile(path: string, displayName = path): Finding[] {
  const text = readFileSync(path, 'utf8');
  return /^action\.ya?ml$/.test(basename(path)) ? lintActionText(text, displayName) : lintWorkflowText(text, displayName);
}
