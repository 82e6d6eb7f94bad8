import { describe, expect, it } from 'vitest';
import { isHpcflowError } from '../../../runner/errors.js';
import { formatVersionFile, makeVersion, parseVersionFile } from '../../../runner/datasets/version-file.js';
import { diffManifests, summarize } from '../../../runner/datasets/diff.js';
import { parseWorkspaceConfig } from '../../../runner/config/workspace-config.js';

const H = (c: string): string => c.repeat(64);
const entries = [
  { path: 'z.txt', size: 3, hash: H('a'), exec: false },
  { path: ' lead space/a\tb', size: 0, hash: H('b'), exec: true },
  { path: 'dir/x.nc', size: 10, hash: H('c'), exec: false },
];

function errorAt(text: string): string {
  try {
    parseVersionFile(text, 'datasets/d.yaml');
  } catch (e) {
    if (isHpcflowError(e)) {
      const d = e.diagnostics[0];
      return d?.pos ? `${d.pos.line}:${d.pos.col} ${d.message}` : e.message;
    }
    throw e;
  }
  throw new Error('expected an error');
}

describe('dataset version file', () => {
  it('round-trips, with the version equal to the hash of the manifest text (odd file names included)', () => {
    const v = makeVersion('d', 'data/d', entries);
    const text = formatVersionFile(v);
    const back = parseVersionFile(text, 'datasets/d.yaml');
    expect(back.version).toBe(v.version);
    expect(back.entries).toEqual(v.entries);
    expect(back.files).toBe(3);
    expect(back.bytes).toBe(13);
    expect(parseVersionFile(formatVersionFile(makeVersion('e', 'x', [])), 'f').entries).toEqual([]);
  });

  it('rejects manifest paths that are absolute or climb out, at file:line:col', () => {
    const v = makeVersion('d', 'data/d', entries);
    const good = formatVersionFile(v);
    const line = good.split('\n').findIndex((l) => l.startsWith('  dir/x.nc')) + 1;
    for (const bad of ['/etc/passwd', '../../etc/passwd', 'dir/../../x', 'a//b']) {
      const t = good.replace('  dir/x.nc\t', `  ${bad}\t`);
      expect(errorAt(t)).toMatch(new RegExp(`^${line}:3 bad manifest entry: invalid path`));
    }
  });

  it('detects a hand-edited manifest, a cut-short file and unknown keys', () => {
    const good = formatVersionFile(makeVersion('d', 'data/d', entries));
    expect(errorAt(good.replace(`\t${H('c')}\t`, `\t${H('d')}\t`))).toMatch(/^6:10 version [0-9a-f]{12} does not match the manifest below it/);
    expect(errorAt(good.slice(0, -5))).toMatch(/cut short/);
    expect(errorAt(good.replace('files: 3', 'files: 3\nowner: me'))).toMatch(/^8:1 unknown key "owner"/);
    expect(errorAt(good.replace('path: "data/d"', 'path: "../outside"'))).toMatch(/^5:7 path "..\/outside" leads outside the workspace/);
    expect(errorAt('name: d\n')).toMatch(/no "manifest: \|2" block/);
  });

  it('diffs manifests with counts and bytes', () => {
    const a = [entries[0], entries[2]].map((e) => ({ ...e })) as typeof entries;
    const b = [{ ...entries[0], hash: H('f'), size: 5 }, entries[1]] as typeof entries;
    const s = summarize(diffManifests(a, b));
    expect(s).toEqual({ added: { files: 1, bytes: 0 }, removed: { files: 1, bytes: 10 }, modified: { files: 1, bytesBefore: 3, bytesAfter: 5 }, unchanged: 0 });
  });
});

describe('hpcflow.yaml', () => {
  it('reads remotes and link order, with the single remote as default', () => {
    const c = parseWorkspaceConfig('remotes:\n  shared: /gpfs/store\ndatasets:\n  link: [hardlink, copy]\n');
    expect(c.remotes.shared).toEqual({ url: '/gpfs/store' });
    expect(c.defaultRemote).toBe('shared');
    expect(c.link).toEqual(['hardlink', 'copy']);
  });
  it('points at the problem', () => {
    expect(() => parseWorkspaceConfig('remotes:\n  s3: { url: s3://b/p, secret: x }\n')).toThrow(/hpcflow.yaml:2:24: unknown remote setting "secret"/);
    expect(() => parseWorkspaceConfig('remotes:\n  a: /x\ndefault_remote: b\n')).toThrow(/hpcflow.yaml:3:17: default_remote "b" is not one of the remotes/);
  });
});
