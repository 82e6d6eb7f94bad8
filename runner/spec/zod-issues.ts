/**
 * zod issues → diagnostics at the YAML node they are about, with our codes and hints. zod
 * describes *what* is wrong; this adds *where* (file:line:col) and *what to do*.
 */
import type { z } from 'zod';
import type { Diagnostic } from '../model/diagnostic.js';
import { didYouMean } from './did-you-mean.js';
import type { ValuePath, YamlSource } from './yaml-source.js';

type Issue = z.core.$ZodIssue;

/** What to write instead, by the name of the key whose value is wrong. */
const KEY_HINTS: Record<string, string> = {
  stages: 'write stages: as a mapping from stage name to stage, e.g. stages: { gen: { image: …, cmd: … } }',
  defaults: 'write defaults: as a mapping with image, cmd, wdir, resources or env',
  image: 'write image: debian:bookworm, or image: { build: <dir under containers/> }',
  cmd: 'write cmd: as a string, or a list of strings (joined with " && ")',
  wdir: 'write wdir: as a workspace-relative directory path',
  deps: 'write deps: as a list of paths or { stage: <name> } items',
  outs: 'write outs: as a list of paths or { path: <path>, cache: false } items',
  metrics: 'write metrics: as one workspace-relative path',
  params: 'write params: as a list of params-file keys, or a mapping name → value or { from, key }',
  resources: 'write resources: as a mapping with nodes, tasks_per_node, cpus_per_task, memory, time',
  memory: 'write memory: as a number of bytes or a string like 512M or 2G',
  time: 'write time: as seconds or a string like "00:30:00" (HH:MM:SS), "30:00" (MM:SS) or "1-00:00:00"',
  env: 'write env: as a mapping NAME → string, number or boolean',
  matrix: 'write matrix: as a mapping key → non-empty list of strings, numbers or booleans',
  params_file: 'write params_file: as a workspace-relative path',
  nodes: 'write a whole number of nodes, e.g. nodes: 2',
  tasks_per_node: 'write a whole number of processes per node, e.g. tasks_per_node: 4',
  cpus_per_task: 'write a whole number of CPUs per process, e.g. cpus_per_task: 8',
};
const STAGE_HINT = 'a stage is a mapping with image: and cmd: (unless in defaults:), and optionally deps:, params:, outs:, metrics:, resources:, env:, matrix:';
const ROOT_HINT = 'a pipeline file is a mapping with stages: (and optionally params_file: and defaults:)';

/** `stages.gen.deps[1]` */
export function describePath(path: ValuePath): string {
  let s = '';
  for (const seg of path) s += typeof seg === 'number' ? `[${seg}]` : s === '' ? String(seg) : `.${String(seg)}`;
  return s;
}

function valueAt(root: unknown, path: ValuePath): unknown {
  let cur = root;
  for (const seg of path) {
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = (cur as Record<PropertyKey, unknown>)[seg];
  }
  return cur;
}

/** A short description of a value for "got …". */
export function describeValue(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a mapping';
  if (typeof v === 'string') return `string ${JSON.stringify(v.length > 40 ? `${v.slice(0, 37)}...` : v)}`;
  return `${typeof v} ${String(v)}`;
}

const EXPECTED: Record<string, string> = {
  string: 'a string',
  number: 'a number',
  int: 'an integer',
  boolean: 'a boolean',
  object: 'a mapping',
  record: 'a mapping',
  array: 'a list',
  null: 'null',
};

function hintFor(path: ValuePath): string {
  const named = [...path].reverse().find((s) => typeof s === 'string' && KEY_HINTS[s] !== undefined);
  if (path.length === 0) return ROOT_HINT;
  if (path.length === 2 && path[0] === 'stages') return STAGE_HINT;
  return (typeof named === 'string' ? KEY_HINTS[named] : undefined) ?? 'see docs/pipeline-spec.md for the format of this key';
}

/** The keys a strict object accepts at `path` in `schema` (unions contribute all their objects' keys). */
export function validKeysAt(schema: z.core.$ZodType, path: ValuePath): string[] {
  const def = schema._zod.def as unknown as {
    type: string;
    innerType?: z.core.$ZodType;
    options?: z.core.$ZodType[];
    shape?: Record<string, z.core.$ZodType>;
    valueType?: z.core.$ZodType;
    element?: z.core.$ZodType;
  };
  const [head, ...rest] = path;
  switch (def.type) {
    case 'optional':
    case 'nullable':
    case 'default':
      return def.innerType ? validKeysAt(def.innerType, path) : [];
    case 'union':
      return [...new Set((def.options ?? []).flatMap((o) => validKeysAt(o, path)))];
    case 'object': {
      if (head === undefined) return Object.keys(def.shape ?? {});
      const child = def.shape?.[String(head)];
      return child ? validKeysAt(child, rest) : [];
    }
    case 'record':
      return head !== undefined && def.valueType ? validKeysAt(def.valueType, rest) : [];
    case 'array':
      return head !== undefined && def.element ? validKeysAt(def.element, rest) : [];
    default:
      return [];
  }
}

/** Is this issue list "the input is not even of this option's type"? */
function rootTypeMismatch(issues: readonly Issue[]): boolean {
  return issues.length > 0 && issues.every((i) => i.path.length === 0 && i.code === 'invalid_type');
}

/** Unions whose failure is explained by one option (the one the input's type matched) are unwrapped. */
function flatten(issues: readonly Issue[], prefix: readonly PropertyKey[] = []): { issue: Issue; path: PropertyKey[] }[] {
  const out: { issue: Issue; path: PropertyKey[] }[] = [];
  for (const issue of issues) {
    const path = [...prefix, ...issue.path];
    if (issue.code === 'invalid_union') {
      const candidates = issue.errors.filter((e) => !rootTypeMismatch(e));
      const only = candidates.length === 1 ? candidates[0] : undefined;
      if (only) {
        out.push(...flatten(only, path));
        continue;
      }
    }
    out.push({ issue, path });
  }
  return out;
}

/** Convert zod issues for the value `root` of `src` into diagnostics. */
export function issuesToDiagnostics(issues: readonly Issue[], src: YamlSource, schema: z.core.$ZodType): Diagnostic[] {
  const out: Diagnostic[] = [];
  for (const { issue, path } of flatten(issues)) {
    const where = describePath(path) || 'the pipeline file';
    if (issue.code === 'unrecognized_keys') {
      const valid = validKeysAt(schema, path);
      for (const k of issue.keys) {
        out.push({
          code: 'HPCFLOW_SPEC_UNKNOWN_KEY',
          message: `unknown key '${k}' in ${where}`,
          pos: src.keyPos([...path, k]),
          hint: `${didYouMean(k, valid)}valid keys here: ${valid.join(', ')}`,
        });
      }
      continue;
    }
    const value = valueAt(src.value, path);
    if (issue.code === 'invalid_type' && value === undefined) {
      const key = path[path.length - 1];
      const parent = path.slice(0, -1);
      out.push({
        code: 'HPCFLOW_SPEC_TYPE',
        message: `missing required key '${String(key)}' in ${describePath(parent) || 'the pipeline file'}`,
        pos: src.keyPos(parent),
        hint: `add '${String(key)}:' (${hintFor(path)})`,
      });
      continue;
    }
    if (issue.code === 'invalid_type' || issue.code === 'invalid_union') {
      const custom = issue.code === 'invalid_union' || !issue.message.startsWith('Invalid input');
      const expected = issue.code === 'invalid_type' ? (EXPECTED[issue.expected] ?? issue.expected) : '';
      out.push({
        code: 'HPCFLOW_SPEC_TYPE',
        message: `${where}: ${custom ? issue.message : `expected ${expected}`}, got ${describeValue(value)}`,
        pos: src.pos(path),
        hint: hintFor(path),
      });
      continue;
    }
    if (issue.code === 'invalid_key') {
      const key = path[path.length - 1];
      const inner = issue.issues[0]?.message ?? issue.message;
      out.push({
        code: 'HPCFLOW_SPEC_BAD_VALUE',
        message: `invalid name '${String(key)}' in ${describePath(path.slice(0, -1)) || 'the pipeline file'}: ${inner}`,
        pos: src.keyPos(path),
        hint: 'rename it',
      });
      continue;
    }
    out.push({
      code: 'HPCFLOW_SPEC_BAD_VALUE',
      message: `${where}: ${issue.message}${value === undefined || typeof value === 'object' ? '' : ` (got ${describeValue(value)})`}`,
      pos: src.pos(path),
      hint: hintFor(path),
    });
  }
  return out;
}

/** Stage names whose subtree has issues (`null` in the set: an issue outside any stage). */
export function brokenStages(issues: readonly Issue[]): Set<string | null> {
  const out = new Set<string | null>();
  for (const { issue, path } of flatten(issues)) {
    // An unknown top-level key changes nothing about the stages.
    if (issue.code === 'unrecognized_keys' && path.length === 0) continue;
    const name = path[0] === 'stages' && path.length >= 2 ? path[1] : undefined;
    out.add(typeof name === 'string' ? name : null);
  }
  return out;
}
