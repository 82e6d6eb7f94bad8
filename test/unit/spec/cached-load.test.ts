import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { isHpcflowError } from '../../../runner/errors.js';
import { loadWorkspaceCached, readSpecCache, SPEC_CACHE_PATH, writeSpecCache } from '../../../runner/spec/cached-load.js';
import { loadWorkspace, loadWorkspaceOrThrow, loadWorkspaceTraced } from '../../../runner/spec/load.js';

const fixtures = fileURLToPath(new URL('../../fixtures/pipelines/', import.meta.url));
const specDir = fileURLToPath(new URL('../../../runner/spec/', import.meta.url));
const temps: string[] = [];

function workspace(fixture: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'hpcflow-spec-'));
  temps.push(dir);
  cpSync(join(fixtures, fixture), dir, { recursive: true });
  return dir;
}

afterEach(() => {
  for (const d of temps.splice(0)) rmSync(d, { recursive: true, force: true });
});

describe('loadWorkspace', () => {
  it('refuses a directory without pipelines/', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hpcflow-spec-'));
    temps.push(dir);
    await expect(loadWorkspace(dir)).rejects.toSatisfy((e) => isHpcflowError(e, 'HPCFLOW_NOT_A_WORKSPACE') && e.hint === 'run hpcflow init');
  });

  it('throws HPCFLOW_SPEC_INVALID with every diagnostic from the OrThrow variant', async () => {
    const err = await loadWorkspaceOrThrow(join(fixtures, 'invalid/unknown-dep')).catch((e: unknown) => e);
    expect(isHpcflowError(err, 'HPCFLOW_SPEC_INVALID')).toBe(true);
    expect(isHpcflowError(err) && err.diagnostics.map((d) => d.code)).toEqual([
      'HPCFLOW_SPEC_UNKNOWN_DEP',
      'HPCFLOW_SPEC_UNKNOWN_DEP',
      'HPCFLOW_SPEC_UNKNOWN_DEP',
    ]);
  });

  it('traces the files it read and the existence checks it made', async () => {
    const { trace } = await loadWorkspaceTraced(join(fixtures, 'valid/defaults'));
    expect(trace.pipelineFiles).toEqual(['heat.yaml']);
    expect(trace.files.map((f) => f.path)).toEqual(['pipelines/heat.yaml']);
    expect(trace.checks).toEqual([
      ['containers/openmp/Dockerfile', 'file'],
      ['src/gen.c', 'file'],
    ]);
  });
});

describe('loadWorkspaceCached', () => {
  it('hits when nothing changed, and writes the cache atomically', async () => {
    const ws = workspace('valid/params');
    expect(readSpecCache(ws)).toBeNull();
    const first = await loadWorkspaceCached(ws);
    expect(first.ok).toBe(true);
    expect(existsSync(join(ws, SPEC_CACHE_PATH))).toBe(true);
    expect(readdirSync(dirname(join(ws, SPEC_CACHE_PATH)))).toEqual(['spec-cache.json']);
    expect(readSpecCache(ws)).toEqual(first.ok && first.pipeline);
    expect(await loadWorkspaceCached(ws)).toEqual(first);
  });

  it('misses after a pipeline edit, and returns the new model', async () => {
    const ws = workspace('valid/params');
    await loadWorkspaceCached(ws);
    const file = join(ws, 'pipelines/heat.yaml');
    writeFileSync(file, readFileSync(file, 'utf8').replace('label: fast', 'label: faster'));
    expect(readSpecCache(ws)).toBeNull();
    const r = await loadWorkspaceCached(ws);
    expect(r.ok && r.pipeline.stages[1]?.cmd).toContain('--label faster');
    expect(readSpecCache(ws)).not.toBeNull();
  });

  it('misses after a same-size edit within the same mtime (racy stamp)', async () => {
    const ws = workspace('valid/params');
    const file = join(ws, 'pipelines/heat.yaml');
    await loadWorkspaceCached(ws);
    const before = statSync(file);
    writeFileSync(file, readFileSync(file, 'utf8').replace('steps: 100', 'steps: 200'));
    utimesSync(file, before.atime, before.mtime);
    // Same size; mtime restored (to the ms: the ns stamp may still differ, both must miss).
    expect(readSpecCache(ws)).toBeNull();
    const r = await loadWorkspaceCached(ws);
    expect(r.ok && r.pipeline.stages[1]?.cmd).toContain('--steps 200');
  });

  it('misses after a params file edit', async () => {
    const ws = workspace('valid/params');
    await loadWorkspaceCached(ws);
    writeFileSync(join(ws, 'config/solver.yaml'), 'solver:\n  tol: 1.0e-9\n  name: gmres\n');
    expect(readSpecCache(ws)).toBeNull();
    const r = await loadWorkspaceCached(ws);
    expect(r.ok && r.pipeline.stages[1]?.cmd).toContain('--solver gmres');
  });

  it('misses when a dep disappears, and reports it', async () => {
    const ws = workspace('valid/defaults');
    await loadWorkspaceCached(ws);
    renameSync(join(ws, 'src/gen.c'), join(ws, 'src/gen.cc'));
    expect(readSpecCache(ws)).toBeNull();
    const r = await loadWorkspaceCached(ws);
    expect(r.ok).toBe(false);
    expect(!r.ok && r.diagnostics.map((d) => d.code)).toEqual(['HPCFLOW_SPEC_UNKNOWN_DEP']);
  });

  it('misses when a path recorded as absent appears, or a file becomes a directory', async () => {
    const ws = workspace('valid/defaults');
    const { result, trace } = await loadWorkspaceTraced(ws);
    if (!result.ok) throw new Error('fixture must be valid');
    writeSpecCache(ws, result.pipeline, { ...trace, checks: [...trace.checks, ['optional/input.txt', null]] });
    expect(readSpecCache(ws)).not.toBeNull();
    mkdirSync(join(ws, 'optional'));
    writeFileSync(join(ws, 'optional/input.txt'), 'x');
    expect(readSpecCache(ws)).toBeNull();

    writeSpecCache(ws, result.pipeline, trace);
    expect(readSpecCache(ws)).not.toBeNull();
    rmSync(join(ws, 'src/gen.c'));
    mkdirSync(join(ws, 'src/gen.c'));
    expect(readSpecCache(ws)).toBeNull();
  });

  it('misses when a pipeline file is added', async () => {
    const ws = workspace('valid/params');
    await loadWorkspaceCached(ws);
    writeFileSync(join(ws, 'pipelines/extra.yml'), 'stages:\n  x: { image: a, cmd: b }\n');
    expect(readSpecCache(ws)).toBeNull();
    const r = await loadWorkspaceCached(ws);
    expect(r.ok && r.pipeline.files).toEqual(['pipelines/extra.yml', 'pipelines/heat.yaml']);
  });

  it('ignores a corrupt or foreign cache file', async () => {
    const ws = workspace('valid/params');
    mkdirSync(dirname(join(ws, SPEC_CACHE_PATH)), { recursive: true });
    writeFileSync(join(ws, SPEC_CACHE_PATH), '{"version": 1, "trace": nul');
    expect(readSpecCache(ws)).toBeNull();
    expect((await loadWorkspaceCached(ws)).ok).toBe(true);
    writeFileSync(join(ws, SPEC_CACHE_PATH), JSON.stringify({ version: 999, trace: {}, pipeline: {} }));
    expect(readSpecCache(ws)).toBeNull();
  });

  it('answers a 1,000-stage workspace from the cache quickly', async () => {
    const ws = workspace('valid/params');
    const lines = ['stages:'];
    for (let i = 0; i < 1000; i++) {
      lines.push(`  s${i}:`, '    image: debian:bookworm', `    cmd: ./step ${i}`, `    deps: [${i === 0 ? 'params.yaml' : `out/s${i - 1}.bin`}]`, `    outs: [out/s${i}.bin]`);
    }
    writeFileSync(join(ws, 'pipelines/big.yaml'), `${lines.join('\n')}\n`);
    const miss = await loadWorkspaceCached(ws);
    expect(miss.ok && miss.pipeline.stages.length).toBe(1002);
    const t0 = performance.now();
    const hit = readSpecCache(ws);
    const ms = performance.now() - t0;
    expect(hit?.stages.length).toBe(1002);
    // Generous: the point is that a hit is stat + JSON.parse, not a parse.
    expect(ms).toBeLessThan(500);
  });
});

describe('cached-load.ts module graph', () => {
  /** Value (non-type) imports of a module, recursively through relative imports. */
  function valueImports(file: string, seen = new Set<string>()): string[] {
    if (seen.has(file)) return [];
    seen.add(file);
    const src = readFileSync(file, 'utf8');
    const out: string[] = [];
    for (const m of src.matchAll(/^import\s+(?!type\b)[^'"]*from\s+'([^']+)';/gm)) {
      const spec = m[1] ?? '';
      out.push(spec);
      if (spec.startsWith('.')) out.push(...valueImports(join(dirname(file), spec.replace(/\.js$/, '.ts')), seen));
    }
    return out;
  }

  it('statically imports neither yaml, zod, nor the parser', () => {
    const imports = valueImports(join(specDir, 'cached-load.ts'));
    expect(imports.length).toBeGreaterThan(0);
    for (const spec of imports) {
      expect(spec === 'yaml' || spec === 'zod' || /\/(load|parse|schema|link)\.js$/.test(spec), `cached-load.ts pulls in ${spec}`).toBe(false);
      expect(spec.startsWith('node:') || spec.startsWith('.'), `unexpected package ${spec}`).toBe(true);
    }
  });
});
