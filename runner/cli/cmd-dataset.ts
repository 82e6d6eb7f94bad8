import { resolve } from 'node:path';
import { openCache } from '../cache/index.js';
import type { LinkKind } from '../config/workspace-config.js';
import { loadWorkspaceConfig, parseLinkList } from '../config/workspace-config.js';
import type { CommitResult, DatasetContext, VerifyResult } from '../datasets/datasets.js';
import {
  addDataset,
  checkoutDataset,
  commitDataset,
  datasetLog,
  datasetStatus,
  datasetTagRef,
  listDatasets,
  parseSpec,
  resolveVersion,
  scan,
  verifyDataset,
  verifyOk,
} from '../datasets/datasets.js';
import type { ManifestDiff } from '../datasets/diff.js';
import { diffManifests, formatBytes, isEmptyDiff, summarize } from '../datasets/diff.js';
import { defaultHashMany } from '../datasets/scan.js';
import type { HashPool } from '../fingerprint/hash-pool.js';
import { SMALL_FILE_MAX } from '../fingerprint/hash-file.js';
import { shortVersion } from '../datasets/version-file.js';
import { HpcflowError } from '../errors.js';
import { isInside, realWorkspace } from '../fingerprint/paths.js';
import { createTag, findGitRoot } from '../git/repo.js';
import { COMMON_OPTIONS, parse } from './args.js';
import { workspaceRoot } from './context.js';
import { EXIT } from './exit-codes.js';
import type { CliIO } from './io.js';

export const DATASET_HELP = `hpcflow dataset — versioned datasets: manifests in git, bytes in the content store and remotes.

Usage: hpcflow dataset <command> [options]

Commands:
  add <dir> [--name N]          make <dir> a dataset; records version 1 in datasets/<N>.yaml
  status [name...]              what changed in the working copy: added, removed, modified (counts, bytes)
  commit <name...> [-m MSG]     record the working copy as a new version (and commit the version file to git)
  checkout <name>[@rev]         make the working copy exactly that version; rev: a dataset tag, a version
                                id (prefix), or a git commit/branch/tag
  diff <a> [b]                  files that differ between two versions (a alone: a vs its working copy)
  log <name>                    the versions in git history, newest first
  tag <name> <tag> [rev]        tag the commit that holds a version (git tag dataset/<name>/<tag>)
  push [name[@rev]...]          upload the objects of versions to a remote (default: every dataset)
  pull [name[@rev]...]          download the objects of versions, then check them out
  verify [name[@rev]...]        re-read every file and compare with the version (--store: objects too)
  list                          the datasets and their current versions

Options:
  -C, --workspace DIR           workspace directory
  --cache-dir DIR               content store (default <workspace>/.hpcflow/cache; env HPCFLOW_CACHE_DIR)
  --lenient                     unchanged files by path + size only (filesystems whose mtimes drift)
  --json                        machine-readable output
  --remote NAME                 push/pull: the remote (default: default_remote in hpcflow.yaml)
  --link KINDS                  checkout/pull: e.g. reflink,hardlink,copy (default from hpcflow.yaml: reflink,copy)
  -f, --force                   checkout/pull: overwrite uncommitted changes; tag: move an existing tag
  --no-checkout                 pull: only fetch the objects
  --no-git                      add/commit: write the version file but do not commit it to git
  --store                       verify: also re-hash the version's objects in the store
  -v, --verbose                 status/diff: list every file (default: up to 10 per kind)

Exit codes: 0 ok; 1 status/verify found differences or damage; 2 usage; 3 invalid files; 4 store, remote or git problem.
`;

const SUBCOMMANDS = ['add', 'status', 'commit', 'checkout', 'diff', 'log', 'tag', 'push', 'pull', 'verify', 'list'] as const;
type Sub = (typeof SUBCOMMANDS)[number];

const OPTIONS = {
  ...COMMON_OPTIONS,
  name: { type: 'string' },
  message: { type: 'string', short: 'm' },
  remote: { type: 'string' },
  link: { type: 'string' },
  force: { type: 'boolean', short: 'f', default: false },
  'no-checkout': { type: 'boolean', default: false },
  'no-git': { type: 'boolean', default: false },
  store: { type: 'boolean', default: false },
  verbose: { type: 'boolean', short: 'v', default: false },
} as const;

/** `hpcflow dataset …`. */
export async function cmdDataset(args: readonly string[], io: CliIO): Promise<number> {
  const [sub, ...rest] = args;
  if (sub === undefined || sub === '-h' || sub === '--help' || sub === 'help') {
    io.out(DATASET_HELP);
    return sub === undefined ? EXIT.usage : EXIT.ok;
  }
  if (!(SUBCOMMANDS as readonly string[]).includes(sub)) {
    io.err(`hpcflow dataset: unknown command '${sub}'. Run 'hpcflow dataset --help' for the list.\n`);
    return EXIT.usage;
  }
  const { values, positionals } = parse(rest, OPTIONS);
  if (values.help) {
    io.out(DATASET_HELP);
    return EXIT.ok;
  }
  const root = workspaceRoot(values, io);
  const cfg = loadWorkspaceConfig(root);
  let link: readonly LinkKind[] = cfg.link;
  if (values.link !== undefined) {
    link = parseLinkList(values.link, () => {
      throw new HpcflowError('HPCFLOW_USAGE', `--link must be a comma-separated list of reflink, hardlink, copy (got "${values.link}")`);
    });
  }
  const cacheDir = values['cache-dir'] ?? io.env.HPCFLOW_CACHE_DIR;
  const { store } = openCache(cacheDir === undefined ? resolve(root, '.hpcflow', 'cache') : resolve(io.cwd, cacheDir));
  // Worker threads start only when some file must be read (an unchanged status needs none).
  let pool: HashPool | undefined;
  const ctx: DatasetContext = {
    root,
    store,
    lenient: values.lenient,
    link,
    gitCommit: !values['no-git'],
    env: io.env,
    hashMany: async (files) => {
      // One small file: cheaper here than a worker start-up and a round trip.
      if (files.length === 1 && (files[0]?.size ?? 0) <= SMALL_FILE_MAX) return defaultHashMany(files);
      pool ??= new (await import('../fingerprint/hash-pool.js')).HashPool();
      return pool.hashFiles(files.map((f) => f.abs));
    },
  };
  try {
    return await run(sub as Sub, ctx, values, positionals, io, cfg);
  } finally {
    await pool?.close();
  }
}

type Values = ReturnType<typeof parse<typeof OPTIONS>>['values'];

function need(positionals: readonly string[], n: number, usage: string): void {
  if (positionals.length < n) throw new HpcflowError('HPCFLOW_USAGE', `usage: hpcflow dataset ${usage}`);
}

async function run(sub: Sub, ctx: DatasetContext, v: Values, pos: readonly string[], io: CliIO, cfg: ReturnType<typeof loadWorkspaceConfig>): Promise<number> {
  const json = (x: unknown): number => {
    io.out(`${JSON.stringify(x)}\n`);
    return EXIT.ok;
  };
  const all = (): string[] => (pos.length > 0 ? [...pos] : listDatasets(ctx.root));
  switch (sub) {
    case 'add': {
      need(pos, 1, 'add <dir> [--name N]');
      const abs = resolve(io.cwd, pos[0] as string);
      const wsReal = realWorkspace(ctx.root);
      if (!isInside(wsReal, abs) && !isInside(ctx.root, abs)) {
        throw new HpcflowError('HPCFLOW_PATH_ESCAPE', `${pos[0] as string} is outside the workspace ${ctx.root}`, { hint: 'datasets live inside the workspace; move or copy the data in first' });
      }
      const rel = abs.startsWith(`${wsReal}/`) ? abs.slice(wsReal.length + 1) : abs.slice(ctx.root.length + 1);
      const r = await addDataset(ctx, rel, v.name);
      if (v.json) return json(r);
      io.out(`dataset ${r.name}: added ${rel} — ${r.files} files, ${formatBytes(r.bytes)}, version ${shortVersion(r.version)}${r.gitCommit ? ` (git commit ${r.gitCommit.slice(0, 10)})` : ''}\n`);
      return EXIT.ok;
    }
    case 'commit': {
      need(pos, 1, 'commit <name...> [-m MSG]');
      const results: CommitResult[] = [];
      for (const name of pos) results.push(await commitDataset(ctx, name, v.message));
      if (v.json) return json(results);
      for (const r of results) {
        if (r.unchanged) io.out(`dataset ${r.name}: nothing changed (version ${shortVersion(r.version)})\n`);
        else io.out(`dataset ${r.name}: version ${shortVersion(r.previous ?? '')} → ${shortVersion(r.version)} (${diffLine(r.diff as ManifestDiff)})${r.gitCommit ? `, git commit ${r.gitCommit.slice(0, 10)}` : ''}\n`);
      }
      return EXIT.ok;
    }
    case 'status': {
      const out = [];
      for (const name of all()) out.push(await datasetStatus(ctx, name));
      const dirty = out.some((s) => s.state !== 'clean');
      if (v.json) {
        io.out(`${JSON.stringify(out.map((s) => ({ ...s, diff: s.diff === null ? null : { ...summarize(s.diff), ...(v.verbose ? { files: s.diff } : {}) } })))}\n`);
        return dirty ? EXIT.stageFailed : EXIT.ok;
      }
      if (out.length === 0) io.out('no datasets (add one with `hpcflow dataset add <dir>`)\n');
      for (const s of out) {
        if (s.state === 'clean') io.out(`${s.name}  ${shortVersion(s.version)}  clean (${s.path})\n`);
        else if (s.state === 'missing') io.out(`${s.name}  ${shortVersion(s.version)}  not checked out (${s.path}); run \`hpcflow dataset checkout ${s.name}\` or pull\n`);
        else {
          io.out(`${s.name}  ${shortVersion(s.version)}  modified: ${diffLine(s.diff as ManifestDiff)}\n`);
          listFiles(s.diff as ManifestDiff, v.verbose, io);
        }
      }
      return dirty ? EXIT.stageFailed : EXIT.ok;
    }
    case 'checkout': {
      need(pos, 1, 'checkout <name>[@rev]');
      const results = [];
      for (const spec of pos) results.push(await checkoutDataset(ctx, spec, { force: v.force }));
      if (v.json) return json(results);
      for (const r of results) {
        const how = Object.entries(r.links).map(([k, n]) => `${n} ${k}`).join(', ');
        io.out(`dataset ${r.name}: checked out ${shortVersion(r.version)} (${r.source}): ${r.written} written${how ? ` (${how})` : ''}, ${r.removed} removed, ${r.unchanged} unchanged\n`);
      }
      return EXIT.ok;
    }
    case 'diff': {
      need(pos, 1, 'diff <name[@rev]> [name[@rev]]');
      const a = await resolveVersion(ctx, pos[0] as string);
      let label: string;
      let d: ManifestDiff;
      if (pos[1] === undefined) {
        const wc = await scan(ctx, a.name, a.version.path);
        if (wc.kind === 'missing') throw new HpcflowError('HPCFLOW_USAGE', `dataset "${a.name}" is not checked out: nothing to compare with`);
        d = diffManifests(a.version.entries, wc.entries);
        label = `${a.name}@${shortVersion(a.version.version)} → working copy`;
      } else {
        const b = await resolveVersion(ctx, pos[1]);
        d = diffManifests(a.version.entries, b.version.entries);
        label = `${a.name}@${shortVersion(a.version.version)} → ${b.name}@${shortVersion(b.version.version)}`;
      }
      if (v.json) return json({ summary: summarize(d), added: d.added, removed: d.removed, modified: d.modified });
      io.out(`${label}: ${isEmptyDiff(d) ? 'identical' : diffLine(d)}\n`);
      listFiles(d, v.verbose, io);
      return EXIT.ok;
    }
    case 'log': {
      need(pos, 1, 'log <name>');
      const entries = await datasetLog(ctx, pos[0] as string);
      if (v.json) return json(entries);
      if (entries.length === 0) io.out(`no committed versions of ${pos[0] as string} in git history\n`);
      for (const e of entries) {
        const when = new Date(e.timestamp * 1000).toISOString().replace('T', ' ').slice(0, 16);
        const tags = e.tags.length > 0 ? ` [${e.tags.join(', ')}]` : '';
        io.out(`${e.version === null ? '(removed)   ' : shortVersion(e.version)}  ${e.commit.slice(0, 10)}  ${when}  ${e.files} files ${formatBytes(e.bytes)}  ${e.author}: ${e.message}${tags}\n`);
      }
      return EXIT.ok;
    }
    case 'tag': {
      need(pos, 2, 'tag <name> <tag> [rev]');
      const [name, tag, rev] = pos as [string, string, string | undefined];
      parseSpec(name);
      if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(tag)) throw new HpcflowError('HPCFLOW_USAGE', `invalid tag "${tag}"`, { hint: 'letters, digits, ".", "_", "-"' });
      const dir = await findGitRoot(ctx.root);
      if (dir === null) throw new HpcflowError('HPCFLOW_GIT', 'the workspace is not in a git repository; dataset tags are git tags');
      const r = await resolveVersion(ctx, `${name}@${rev ?? 'HEAD'}`);
      if (r.commit === null) throw new HpcflowError('HPCFLOW_USAGE', `version ${shortVersion(r.version.version)} of ${name} is not committed to git yet`, { hint: `commit datasets/${name}.yaml first` });
      await createTag(dir, datasetTagRef(name, tag), r.commit, v.force);
      if (v.json) return json({ name, tag, commit: r.commit, version: r.version.version });
      io.out(`dataset ${name}: tagged version ${shortVersion(r.version.version)} as ${tag} (git tag ${datasetTagRef(name, tag)} → ${r.commit.slice(0, 10)})\n`);
      return EXIT.ok;
    }
    case 'push':
    case 'pull': {
      const { pullDataset, pushDataset, remoteFor } = await import('../datasets/transfer.js');
      const remote = await remoteFor(ctx.root, cfg, v.remote);
      try {
        const results = [];
        for (const spec of all()) {
          results.push(sub === 'push' ? await pushDataset(ctx, remote, spec) : await pullDataset(ctx, remote, spec, { noCheckout: v['no-checkout'], force: v.force }));
        }
        if (v.json) return json(results);
        for (const r of results) {
          io.out(`dataset ${r.name} ${shortVersion(r.version)}: ${sub === 'push' ? 'pushed' : 'pulled'} ${r.transferred} of ${r.objects} objects (${formatBytes(r.bytes)}) ${sub === 'push' ? 'to' : 'from'} ${remote.name} (${remote.display})${r.objects - r.transferred > 0 ? `; ${r.objects - r.transferred} already there` : ''}\n`);
        }
        return EXIT.ok;
      } finally {
        await remote.close();
      }
    }
    case 'verify': {
      const results: VerifyResult[] = [];
      for (const spec of all()) results.push(await verifyDataset(ctx, spec, { store: v.store }));
      const ok = results.every(verifyOk);
      if (v.json) {
        io.out(`${JSON.stringify(results.map((r) => ({ ...r, ok: verifyOk(r), diff: r.diff === null ? null : summarize(r.diff) })))}\n`);
        return ok ? EXIT.ok : EXIT.stageFailed;
      }
      for (const r of results) {
        const head = `dataset ${r.name} ${shortVersion(r.version)}: ${r.files} files, ${formatBytes(r.bytes)} re-read`;
        if (r.diff === null) io.out(`${head}: not checked out\n`);
        else if (isEmptyDiff(r.diff)) io.out(`${head}: working copy intact\n`);
        else {
          io.out(`${head}: working copy differs: ${diffLine(r.diff)}\n`);
          listFiles(r.diff, v.verbose, io);
        }
        if (v.store) io.out(r.badObjects.length === 0 ? `  store: all objects intact\n` : `  store: ${r.badObjects.length} objects damaged or missing:\n`);
        for (const b of r.badObjects) io.out(`    ${b.path}: ${b.problem}\n`);
      }
      return ok ? EXIT.ok : EXIT.stageFailed;
    }
    case 'list': {
      const rows = [];
      for (const name of listDatasets(ctx.root)) {
        const r = await resolveVersion(ctx, name);
        rows.push({ name, path: r.version.path, version: r.version.version, files: r.version.files, bytes: r.version.bytes });
      }
      if (v.json) return json(rows);
      for (const r of rows) io.out(`${r.name}  ${shortVersion(r.version)}  ${r.path}  ${r.files} files, ${formatBytes(r.bytes)}\n`);
      return EXIT.ok;
    }
    default: {
      const never: never = sub;
      return never;
    }
  }
}

function diffLine(d: ManifestDiff): string {
  const s = summarize(d);
  const delta = s.modified.bytesAfter - s.modified.bytesBefore;
  return [
    `${s.added.files} added (${formatBytes(s.added.bytes)})`,
    `${s.removed.files} removed (${formatBytes(s.removed.bytes)})`,
    `${s.modified.files} modified (${delta >= 0 ? '+' : '-'}${formatBytes(Math.abs(delta))})`,
  ].join(', ');
}

function listFiles(d: ManifestDiff, all: boolean, io: CliIO): void {
  const max = all ? Infinity : 10;
  const show = (mark: string, paths: readonly string[]): void => {
    for (const p of paths.slice(0, max)) io.out(`    ${mark} ${p}\n`);
    if (paths.length > max) io.out(`    ${mark} … and ${paths.length - max} more (-v lists all)\n`);
  };
  show('+', d.added.map((e) => e.path));
  show('-', d.removed.map((e) => e.path));
  show('~', d.modified.map((m) => m.path));
}
