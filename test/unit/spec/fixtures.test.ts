/**
 * Golden tests over mini workspaces: every invalid case has the exact formatted diagnostics in
 * its `expected.txt`; every valid case's resolved model is snapshotted.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { formatDiagnostic } from '../../../runner/model/diagnostic.js';
import { loadWorkspace } from '../../../runner/spec/load.js';

const root = fileURLToPath(new URL('../../fixtures/pipelines/', import.meta.url));
const cases = (kind: 'valid' | 'invalid'): string[] =>
  readdirSync(join(root, kind), { withFileTypes: true })
    .filter((e) => e.isDirectory())
    .map((e) => e.name)
    .sort();

describe('invalid pipelines', () => {
  it('cover every kind of error', () => {
    expect(cases('invalid')).toEqual(
      expect.arrayContaining([
        'yaml-syntax',
        'wrong-type',
        'missing-required',
        'unknown-key',
        'unknown-dep',
        'unknown-stage-dep',
        'duplicate-output',
        'output-inside-output',
        'cycle',
        'self-cycle',
        'unknown-param',
        'missing-params-file',
        'invalid-params-file',
        'unknown-interpolation',
        'path-escape',
        'image-context',
        'bad-memory',
        'bad-time',
        'duplicate-stage',
        'bad-names',
        'empty-matrix',
        'duplicate-pipeline',
        'alias-bomb',
      ]),
    );
  });

  it.each(cases('invalid'))('%s', async (name) => {
    const dir = join(root, 'invalid', name);
    const expectedFile = join(dir, 'expected.txt');
    expect(existsSync(expectedFile), `${expectedFile} is missing`).toBe(true);
    const result = await loadWorkspace(dir);
    expect(result.ok).toBe(false);
    const got = result.ok ? '' : result.diagnostics.map(formatDiagnostic).join('\n');
    expect(`${got}\n`).toBe(readFileSync(expectedFile, 'utf8'));
  });
});

describe('valid pipelines', () => {
  it.each(cases('valid'))('%s', async (name) => {
    const result = await loadWorkspace(join(root, 'valid', name));
    if (!result.ok) expect.fail(result.diagnostics.map(formatDiagnostic).join('\n'));
    expect(result.pipeline).toMatchSnapshot();
  });
});
