/**
 * `{ dataset: <name>, version? }` stage dependencies. The dataset's version id (the BLAKE3 of
 * its manifest, which is also the hash of its directory) enters the stage fingerprint under the
 * key `dataset:<name>`, so a stage re-runs exactly when the dataset gets another version.
 *
 * The working copy must be exactly the recorded version: a stage never runs on uncommitted
 * dataset changes (its lockfile entry would name a version nobody can check out again).
 */
import type { Reason } from '../dag/reasons.js';
import type { PathHash } from '../fingerprint/path-hasher.js';
import type { DepState } from '../fingerprint/stage.js';
import type { ContentStore } from '../cache/store.js';
import { isHpcflowError } from '../errors.js';
import { closest } from '../spec/did-you-mean.js';
import { readVersionFile, shortVersion, versionFileRel } from './version-file.js';
import { listDatasets, resolveVersion } from './datasets.js';

/** The fingerprint key of a dataset dependency. */
export const datasetDepKey = (name: string): string => `dataset:${name}`;

export type DatasetDepResult = { readonly state: DepState } | { readonly blocker: Reason };

/** Resolves a stage's dataset dependency. */
export type DatasetDepFn = (name: string, version: string | null) => Promise<DatasetDepResult>;

const problem = (dataset: string, detail: string): DatasetDepResult => ({ blocker: { kind: 'dataset', dataset, detail } });

/**
 * A memoising resolver for one planning pass. It hashes the version file and the dataset
 * directory through `hashPath`, so the status fast path records (and later re-checks) both.
 */
export function datasetDeps(root: string, hashPath: (rel: string) => Promise<PathHash>, store: ContentStore): DatasetDepFn {
  const memo = new Map<string, Promise<DatasetDepResult>>();
  const resolve = async (name: string, version: string | null): Promise<DatasetDepResult> => {
    const file = versionFileRel(name);
    const head = readVersionFile(root, name, { headerOnly: true });
    if (head === null) {
      const guess = closest(name, listDatasets(root));
      return problem(name, `no ${file}${guess ? ` (did you mean '${guess}'?)` : ''}; create it with \`hpcflow dataset add <dir> --name ${name}\``);
    }
    await hashPath(file);
    const h = await hashPath(head.path);
    if (h.kind === 'missing') return problem(name, `not checked out at ${head.path}; run \`hpcflow dataset checkout ${name}\` (or \`hpcflow dataset pull ${name}\`)`);
    if (h.kind !== 'dir' || h.hash !== head.version) {
      return problem(name, `the working copy ${head.path} differs from version ${shortVersion(head.version)}; record it with \`hpcflow dataset commit ${name}\` or restore it with \`hpcflow dataset checkout --force ${name}\``);
    }
    if (version !== null && !(/^[0-9a-f]{6,64}$/.test(version) && head.version.startsWith(version))) {
      // The same resolution as `hpcflow dataset checkout name@version`.
      let want: string;
      try {
        want = (await resolveVersion({ root, store }, `${name}@${version}`)).version.version;
      } catch (e) {
        if (!isHpcflowError(e, 'HPCFLOW_USAGE')) throw e;
        return problem(name, `no version, dataset tag or git revision '${version}'; see \`hpcflow dataset log ${name}\``);
      }
      if (want !== head.version) {
        return problem(name, `is at version ${shortVersion(head.version)}, the stage requires ${version} (${shortVersion(want)}); run \`hpcflow dataset checkout ${name}@${version}\``);
      }
    }
    return { state: { kind: 'dir', hash: head.version, size: h.size } };
  };
  return (name, version) => {
    const key = `${name}\0${version ?? ''}`;
    let p = memo.get(key);
    if (p === undefined) {
      p = resolve(name, version);
      memo.set(key, p);
    }
    return p;
  };
}

/** For callers that have no workspace datasets (unit tests with in-memory executors). */
export const noDatasets: DatasetDepFn = async (name) => problem(name, 'datasets are not available here');
