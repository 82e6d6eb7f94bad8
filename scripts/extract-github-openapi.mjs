#!/usr/bin/env node
/**
 * Extract the GitHub REST operations hpcflow uses from GitHub's official OpenAPI description
 * (npm package @octokit/openapi, generated/api.github.com.json, 10+ MB) into a small,
 * self-contained document: the selected path items/methods plus every component they reach
 * through $ref (schemas, parameters, responses, headers, examples), transitively.
 *
 *   node scripts/extract-github-openapi.mjs            writes test/helpers/github-openapi/subset.json
 *   node scripts/extract-github-openapi.mjs --stdout   prints it instead (the staleness test compares)
 *
 * The fake GitHub server (test/helpers/fake-github.ts) validates requests against this subset and
 * uses its response examples as templates for the bodies it returns.
 */
/* global structuredClone */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** [method, path] of every operation hpcflow's GitHub integration calls. */
export const OPERATIONS = [
  ['get', '/repos/{owner}/{repo}/issues/{issue_number}/comments'],
  ['post', '/repos/{owner}/{repo}/issues/{issue_number}/comments'],
  ['patch', '/repos/{owner}/{repo}/issues/comments/{comment_id}'],
  ['post', '/repos/{owner}/{repo}/check-runs'],
  ['patch', '/repos/{owner}/{repo}/check-runs/{check_run_id}'],
  ['post', '/repos/{owner}/{repo}/statuses/{sha}'],
  ['get', '/repos/{owner}/{repo}/pulls/{pull_number}'],
];

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
export const OUT = join(root, 'test/helpers/github-openapi/subset.json');

function pointerGet(doc, ref) {
  if (!ref.startsWith('#/')) throw new Error(`external $ref not supported: ${ref}`);
  let cur = doc;
  for (const raw of ref.slice(2).split('/')) {
    const key = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    if (cur === null || typeof cur !== 'object' || !(key in cur)) throw new Error(`unresolvable $ref: ${ref}`);
    cur = cur[key];
  }
  return cur;
}

/** The subset document for `spec` (a parsed api.github.com.json). Pure and deterministic. */
export function extractSubset(spec, source = {}) {
  const paths = {};
  for (const [method, path] of OPERATIONS) {
    const item = spec.paths?.[path];
    const op = item?.[method];
    if (!op) throw new Error(`operation not in the description: ${method.toUpperCase()} ${path}`);
    paths[path] ??= {};
    if (item.parameters) paths[path].parameters = structuredClone(item.parameters);
    paths[path][method] = structuredClone(op);
  }
  const components = {};
  const seen = new Set();
  const queue = [paths];
  while (queue.length > 0) {
    const node = queue.pop();
    if (Array.isArray(node)) {
      for (const x of node) queue.push(x);
      continue;
    }
    if (node === null || typeof node !== 'object') continue;
    for (const [k, v] of Object.entries(node)) {
      if (k === '$ref' && typeof v === 'string') {
        if (seen.has(v)) continue;
        seen.add(v);
        const m = /^#\/components\/([^/]+)\/([^/]+)$/.exec(v);
        if (!m) throw new Error(`unexpected $ref shape: ${v}`);
        const [, kind, name] = m;
        const target = structuredClone(pointerGet(spec, v));
        (components[kind] ??= {})[name] = target;
        queue.push(target);
      } else {
        queue.push(v);
      }
    }
  }
  const sortedComponents = {};
  for (const kind of Object.keys(components).sort()) {
    sortedComponents[kind] = {};
    for (const name of Object.keys(components[kind]).sort()) sortedComponents[kind][name] = components[kind][name];
  }
  return {
    openapi: spec.openapi,
    info: { title: spec.info?.title, version: spec.info?.version },
    'x-extracted-from': source,
    paths,
    components: sortedComponents,
  };
}

/** Load the installed description and return the subset as the text written to OUT. */
export function extractFromInstalledPackage() {
  const require = createRequire(import.meta.url);
  const pkgJson = require.resolve('@octokit/openapi/package.json');
  const pkg = JSON.parse(readFileSync(pkgJson, 'utf8'));
  const spec = JSON.parse(readFileSync(join(dirname(pkgJson), 'generated/api.github.com.json'), 'utf8'));
  const subset = extractSubset(spec, { package: '@octokit/openapi', version: pkg.version, file: 'generated/api.github.com.json' });
  return `${JSON.stringify(subset, null, 2)}\n`;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const text = extractFromInstalledPackage();
  if (process.argv.includes('--stdout')) {
    process.stdout.write(text);
  } else {
    mkdirSync(dirname(OUT), { recursive: true });
    writeFileSync(OUT, text);
    console.log(`wrote ${OUT} (${(text.length / 1024).toFixed(0)} KiB)`);
  }
}
