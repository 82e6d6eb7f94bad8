import { createHmac } from 'node:crypto';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { isHpcflowError } from '../../../runner/errors.js';
import {
  ReplayGuard,
  hasHpcflowTrailer,
  isValidRef,
  parsePushEvent,
  signBody,
  verifySignature,
} from '../../../runner/triggers/webhook.js';

const SECRET = "It's a Secret to Everybody";
const BEFORE = '6113728f27ae82c7b1a177c8d03f9e96e0adf246';
const AFTER = '0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c';

/**
 * A branch push modelled on GitHub's documented `push` example (Codertocat/Hello-World), trimmed
 * of nothing that matters: extra fields must be tolerated.
 */
function githubPush(over: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    ref: 'refs/heads/main',
    before: BEFORE,
    after: AFTER,
    repository: {
      id: 186853002,
      node_id: 'MDEwOlJlcG9zaXRvcnkxODY4NTMwMDI=',
      name: 'Hello-World',
      full_name: 'Codertocat/Hello-World',
      private: false,
      owner: { name: 'Codertocat', email: '21031067+Codertocat@users.noreply.github.com', login: 'Codertocat', id: 21031067, type: 'User', site_admin: false },
      html_url: 'https://github.com/Codertocat/Hello-World',
      description: null,
      fork: false,
      url: 'https://github.com/Codertocat/Hello-World',
      created_at: 1557933565,
      updated_at: '2019-05-15T15:20:41Z',
      pushed_at: 1557933657,
      git_url: 'git://github.com/Codertocat/Hello-World.git',
      ssh_url: 'git@github.com:Codertocat/Hello-World.git',
      clone_url: 'https://github.com/Codertocat/Hello-World.git',
      svn_url: 'https://github.com/Codertocat/Hello-World',
      default_branch: 'main',
      master_branch: 'main',
    },
    pusher: { name: 'Codertocat', email: '21031067+Codertocat@users.noreply.github.com' },
    sender: { login: 'Codertocat', id: 21031067, type: 'User', site_admin: false },
    created: false,
    deleted: false,
    forced: false,
    base_ref: null,
    compare: `https://github.com/Codertocat/Hello-World/compare/${BEFORE.slice(0, 12)}...${AFTER.slice(0, 12)}`,
    commits: [
      {
        id: AFTER,
        tree_id: 'f9d2a07e9488b91af2641b26b9407fe22a451433',
        distinct: true,
        message: 'Tune the solver\n\nSmaller time step for the heat kernel.',
        timestamp: '2019-05-15T15:20:30Z',
        url: `https://github.com/Codertocat/Hello-World/commit/${AFTER}`,
        author: { name: 'Codertocat', email: 'hi@example.com', username: 'Codertocat' },
        committer: { name: 'Codertocat', email: 'hi@example.com', username: 'Codertocat' },
        added: [],
        removed: [],
        modified: ['params.yaml'],
      },
    ],
    head_commit: {
      id: AFTER,
      tree_id: 'f9d2a07e9488b91af2641b26b9407fe22a451433',
      distinct: true,
      message: 'Tune the solver\n\nSmaller time step for the heat kernel.',
      timestamp: '2019-05-15T15:20:30Z',
      url: `https://github.com/Codertocat/Hello-World/commit/${AFTER}`,
      author: { name: 'Codertocat', email: 'hi@example.com', username: 'Codertocat' },
      committer: { name: 'Codertocat', email: 'hi@example.com', username: 'Codertocat' },
      added: [],
      removed: [],
      modified: ['params.yaml'],
    },
    ...over,
  };
}

describe('verifySignature', () => {
  const body = Buffer.from('Hello, World!');
  // GitHub's documented test vector (docs: "Validating webhook deliveries").
  const documented = 'sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17';

  it('accepts GitHub\'s documented example signature', () => {
    expect(verifySignature(SECRET, body, documented)).toBe(true);
    expect(signBody(SECRET, body)).toBe(documented);
  });

  it('accepts a valid signature over arbitrary bytes, also with upper-case hex', () => {
    const raw = Buffer.from([0, 1, 2, 255, 254, 10, 13]);
    const hex = createHmac('sha256', 'k').update(raw).digest('hex');
    expect(verifySignature('k', raw, `sha256=${hex}`)).toBe(true);
    expect(verifySignature('k', raw, `sha256=${hex.toUpperCase()}`)).toBe(true);
  });

  it('rejects a wrong secret, a changed body and a changed digest', () => {
    expect(verifySignature('wrong secret', body, documented)).toBe(false);
    expect(verifySignature(SECRET, Buffer.from('Hello, World?'), documented)).toBe(false);
    const flipped = documented.slice(0, -1) + (documented.endsWith('7') ? '8' : '7');
    expect(verifySignature(SECRET, body, flipped)).toBe(false);
  });

  it('rejects a missing or empty header', () => {
    expect(verifySignature(SECRET, body, undefined)).toBe(false);
    expect(verifySignature(SECRET, body, '')).toBe(false);
  });

  it('rejects malformed headers without throwing', () => {
    const hex = documented.slice('sha256='.length);
    for (const h of [
      hex, // no prefix
      `sha256=${hex.slice(0, 63)}`, // short
      `sha256=${hex}00`, // long
      `sha256=${hex.slice(0, 62)}zz`, // not hex
      `SHA256=${hex}`, // wrong algorithm spelling
      `sha512=${hex}`,
      `sha256=${hex}, sha256=${hex}`, // duplicated header joined by node
      `sha256= ${hex}`,
      'sha256=',
      '=',
    ]) {
      expect(verifySignature(SECRET, body, h), h).toBe(false);
    }
  });

  it('never accepts the legacy SHA-1 signature', () => {
    const sha1 = `sha1=${createHmac('sha1', SECRET).update(body).digest('hex')}`;
    expect(verifySignature(SECRET, body, sha1)).toBe(false);
  });

  it('rejects everything under an empty secret', () => {
    const sig = `sha256=${createHmac('sha256', '').update(body).digest('hex')}`;
    expect(verifySignature('', body, sig)).toBe(false);
  });
});

describe('parsePushEvent', () => {
  it('extracts the fields of a realistic GitHub push payload', () => {
    expect(parsePushEvent(githubPush())).toEqual({
      ref: 'refs/heads/main',
      branch: 'main',
      before: BEFORE,
      after: AFTER,
      deleted: false,
      repository: { fullName: 'Codertocat/Hello-World', cloneUrl: 'https://github.com/Codertocat/Hello-World.git' },
      headCommit: { id: AFTER, message: 'Tune the solver\n\nSmaller time step for the heat kernel.' },
      pusher: 'Codertocat',
    });
  });

  it('survives a JSON round trip (what the server sees)', () => {
    expect(parsePushEvent(JSON.parse(JSON.stringify(githubPush())))?.after).toBe(AFTER);
  });

  it('keeps slashes in branch names and reports tags as no branch', () => {
    expect(parsePushEvent(githubPush({ ref: 'refs/heads/feature/x-1' }))?.branch).toBe('feature/x-1');
    const tag = parsePushEvent(githubPush({ ref: 'refs/tags/v1.0' }));
    expect(tag?.ref).toBe('refs/tags/v1.0');
    expect(tag?.branch).toBeNull();
  });

  it('recognizes a branch deletion (GitHub\'s documented deletion example)', () => {
    const del = parsePushEvent(githubPush({ after: '0'.repeat(40), deleted: true, head_commit: null, commits: [] }));
    expect(del?.deleted).toBe(true);
    expect(del?.headCommit).toBeNull();
    // Zeros alone also mean deletion, whatever `deleted` says.
    expect(parsePushEvent(githubPush({ after: '0'.repeat(40), deleted: false, head_commit: null }))?.deleted).toBe(true);
  });

  it('accepts a missing pusher and a null head commit', () => {
    const e = parsePushEvent(githubPush({ pusher: undefined, head_commit: null }));
    expect(e?.pusher).toBeNull();
    expect(e?.headCommit).toBeNull();
    expect(e?.deleted).toBe(false);
  });

  it('returns null on garbage instead of throwing', () => {
    const garbage: unknown[] = [
      null,
      undefined,
      42,
      'push',
      [],
      [githubPush()],
      {},
      { zen: 'Keep it logically awesome.', hook_id: 1 }, // a ping payload
      githubPush({ ref: 42 }),
      githubPush({ ref: 'main' }), // not a full ref
      githubPush({ ref: 'refs/heads/../../etc' }),
      githubPush({ ref: 'refs/heads/a b' }),
      githubPush({ ref: 'refs/heads/x\nINJECTED' }),
      githubPush({ ref: '-refs/heads/x' }),
      githubPush({ after: 'HEAD' }),
      githubPush({ after: AFTER.toUpperCase() }),
      githubPush({ after: '--upload-pack=evil' }),
      githubPush({ before: null }),
      githubPush({ repository: null }),
      githubPush({ repository: 'Codertocat/Hello-World' }),
      githubPush({ repository: { full_name: 'Codertocat/Hello-World' } }),
      githubPush({ repository: { full_name: 'Codertocat/Hello-World', clone_url: '--upload-pack=touch /tmp/x' } }),
      githubPush({ repository: { full_name: 'Codertocat/Hello-World', clone_url: 'file:///etc' } }),
      githubPush({ repository: { full_name: 'Codertocat/Hello-World', clone_url: 'https://user:token@github.com/a/b.git' } }),
      githubPush({ repository: { full_name: '../x', clone_url: 'https://github.com/a/b.git' } }),
      githubPush({ repository: { full_name: 'a/..', clone_url: 'https://github.com/a/b.git' } }),
      githubPush({ repository: { full_name: 'a/-x', clone_url: 'https://github.com/a/b.git' } }),
      githubPush({ repository: { full_name: 'a/b/c', clone_url: 'https://github.com/a/b.git' } }),
      githubPush({ head_commit: 'abc' }),
      githubPush({ head_commit: { id: AFTER } }),
      githubPush({ head_commit: { id: 'x', message: 'm' } }),
      githubPush({ deleted: 'yes' }),
    ];
    for (const g of garbage) expect(parsePushEvent(g), JSON.stringify(g)?.slice(0, 200)).toBeNull();
  });

  it('accepts repository names GitHub allows', () => {
    for (const fullName of ['octo-org/.github', 'octocat_acme/repo.js', 'a/b_c-d.e']) {
      expect(parsePushEvent(githubPush({ repository: { full_name: fullName, clone_url: 'https://github.com/x/y.git' } }))?.repository.fullName).toBe(fullName);
    }
  });

  it('does not trust prototype-polluting input', () => {
    const polluted = JSON.parse('{"__proto__": {"ref": "refs/heads/main"}}') as unknown;
    expect(parsePushEvent(polluted)).toBeNull();
  });
});

describe('isValidRef', () => {
  it('follows the relevant git check-ref-format rules', () => {
    for (const ok of ['refs/heads/main', 'refs/heads/feat/a-b_c.d', 'refs/tags/v1.2.3', 'refs/heads/ü']) expect(isValidRef(ok), ok).toBe(true);
    for (const bad of ['refs/heads/', 'refs/heads/a..b', 'refs/heads/.hidden', 'refs/heads/x.lock', 'refs/heads/a//b', 'refs/heads/a@{1}', 'refs/heads/a~1', 'refs/heads/a:b', 'refs/heads/a.', 'heads/main']) {
      expect(isValidRef(bad), bad).toBe(false);
    }
  });
});

describe('hasHpcflowTrailer', () => {
  it('finds the trailer in the trailer block', () => {
    expect(hasHpcflowTrailer('hpcflow: results of run 42\n\nHpcflow-Run: 42')).toBe(true);
    expect(hasHpcflowTrailer('Results\n\nBody text.\n\nSigned-off-by: A <a@b>\nHpcflow-Run: 2024-01-01T00-00-00Z-abc\n')).toBe(true);
    expect(hasHpcflowTrailer('Results\r\n\r\nHpcflow-Run: 7\r\n')).toBe(true);
    expect(hasHpcflowTrailer('Results\n\nhpcflow-run: 7')).toBe(true); // token compares case-insensitively, as in git
    expect(hasHpcflowTrailer('Results\n\nCo-authored-by: X <x@y>\n  continued\nHpcflow-Run: 7')).toBe(true);
    expect(hasHpcflowTrailer('Results\n  \nHpcflow-Run: 7\n\n\n')).toBe(true); // whitespace-only separator, trailing blank lines
    // The shape runner/git/results.ts writes (resultsMessage).
    expect(hasHpcflowTrailer(`hpcflow: 3 ran (run r1)\n\nHpcflow-Run: r1\nHpcflow-Input: ${AFTER}\n`)).toBe(true);
  });

  it('ignores the words elsewhere', () => {
    expect(hasHpcflowTrailer('Hpcflow-Run: 42')).toBe(false); // subject only: no trailer block
    expect(hasHpcflowTrailer('Subject\nHpcflow-Run: 42')).toBe(false); // part of the first paragraph
    expect(hasHpcflowTrailer('Subject\n\nHpcflow-Run: 42\n\nMore prose after it.')).toBe(false); // not the last paragraph
    expect(hasHpcflowTrailer('Subject\n\nWe should add Hpcflow-Run: 42 here')).toBe(false); // not at line start
    expect(hasHpcflowTrailer('Subject\n\nHpcflow-Run : 42')).toBe(false); // no space before the colon
    expect(hasHpcflowTrailer('Subject\n\nHpcflow-Run:')).toBe(false); // no id
    expect(hasHpcflowTrailer('Subject\n\nHpcflow-Runs: 42')).toBe(false);
    expect(hasHpcflowTrailer('Subject\n\nX-Hpcflow-Run: 42')).toBe(false);
    expect(hasHpcflowTrailer('')).toBe(false);
    expect(hasHpcflowTrailer('Tune the solver\n\nSmaller time step for the heat kernel.')).toBe(false);
  });
});

describe('hasHpcflowTrailer agrees with isResultsCommit (the lead\'s loop guard)', () => {
  // Imported lazily: runner/git/results.ts pulls in the git layer, which this file otherwise
  // does not need (a problem there fails this one test, not the whole file).
  it('on every message of this suite and a few more', async () => {
    const { isResultsCommit, resultsMessage } = await import('../../../runner/git/results.js');
    const messages = [
      'hpcflow: results of run 42\n\nHpcflow-Run: 42',
      'Results\n\nBody text.\n\nSigned-off-by: A <a@b>\nHpcflow-Run: x\n',
      'Results\r\n\r\nHpcflow-Run: 7\r\n',
      'Results\n\nhpcflow-run: 7',
      'Results\n\nprose line\nHpcflow-Run: 7',
      'Results\n  \nHpcflow-Run: 7\n\n\n',
      'Hpcflow-Run: 42',
      'Subject\nHpcflow-Run: 42',
      'Subject\n\nHpcflow-Run: 42\n\nMore prose after it.',
      'Subject\n\nHpcflow-Run:',
      'Subject\n\nHpcflow-Run:    ',
      'Subject\n\nHpcflow-Runs: 42',
      'Subject\n\nHpcflow-Run : 42',
      'Subject\n\nHpcflow-Run:\nHpcflow-Run: 2', // the first one decides
      '',
      resultsMessage('hpcflow: 3 ran, 2 up to date (run r1)', 'r1', AFTER),
    ];
    for (const m of messages) expect(hasHpcflowTrailer(m), JSON.stringify(m)).toBe(isResultsCommit(m));
  });
});

describe('ReplayGuard', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'hpcflow-replay-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('starts empty when the file is missing, remembers, and persists across instances', async () => {
    const file = join(dir, 'state', 'deliveries.json');
    const a = await ReplayGuard.open(file);
    expect(a.seen('72d3162e-cc78-11e3-81ab-4c9367dc0958')).toBe(false);
    const p = a.remember('72d3162e-cc78-11e3-81ab-4c9367dc0958');
    // In memory at once (no window between check and remember), on disk when the promise resolves.
    expect(a.seen('72d3162e-cc78-11e3-81ab-4c9367dc0958')).toBe(true);
    await p;
    await a.remember(['k1', 'k2']);

    const b = await ReplayGuard.open(file);
    expect(b.seen('72d3162e-cc78-11e3-81ab-4c9367dc0958')).toBe(true);
    expect(b.seen('k1') && b.seen('k2')).toBe(true);
    expect(b.seen('other')).toBe(false);
    expect(b.size).toBe(3);
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    expect(JSON.parse(await readFile(file, 'utf8'))).toEqual({ version: 1, ids: ['72d3162e-cc78-11e3-81ab-4c9367dc0958', 'k1', 'k2'] });
  });

  it('is bounded: keeps the most recent ids, in memory and on disk', async () => {
    const file = join(dir, 'deliveries.json');
    const g = await ReplayGuard.open(file, { max: 3 });
    for (const id of ['a', 'b', 'c', 'd', 'e']) await g.remember(id);
    expect(g.size).toBe(3);
    expect(['a', 'b'].map((id) => g.seen(id))).toEqual([false, false]);
    expect(['c', 'd', 'e'].map((id) => g.seen(id))).toEqual([true, true, true]);
    // Re-remembering refreshes an id, so it outlives younger ones.
    await g.remember('c');
    await g.remember('f');
    expect(g.seen('c')).toBe(true);
    expect(g.seen('d')).toBe(false);
    const again = await ReplayGuard.open(file, { max: 3 });
    expect(['e', 'c', 'f'].every((id) => again.seen(id))).toBe(true);
    expect(again.size).toBe(3);
    // A smaller bound on reopening trims the oldest.
    const smaller = await ReplayGuard.open(file, { max: 1 });
    expect(smaller.size).toBe(1);
    expect(smaller.seen('f')).toBe(true);
  });

  it('defaults to 10,000 ids', async () => {
    const file = join(dir, 'deliveries.json');
    await writeFile(file, JSON.stringify({ version: 1, ids: Array.from({ length: 10_005 }, (_, i) => `id-${i}`) }));
    const g = await ReplayGuard.open(file);
    expect(g.max).toBe(10_000);
    expect(g.size).toBe(10_000);
    expect(g.seen('id-4')).toBe(false);
    expect(g.seen('id-5')).toBe(true);
    expect(g.seen('id-10004')).toBe(true);
  });

  it('keeps every id when many remembers race (writes are serialized)', async () => {
    const file = join(dir, 'deliveries.json');
    const g = await ReplayGuard.open(file);
    const ids = Array.from({ length: 50 }, (_, i) => `race-${i}`);
    await Promise.all(ids.map((id) => g.remember(id)));
    const reopened = await ReplayGuard.open(file);
    expect(ids.every((id) => reopened.seen(id))).toBe(true);
  });

  it('refuses a corrupt file instead of forgetting (which would reopen replays)', async () => {
    const file = join(dir, 'deliveries.json');
    for (const bad of ['not json', '[]', '{"version":2,"ids":[]}', '{"version":1,"ids":[1]}']) {
      await writeFile(file, bad);
      const e: unknown = await ReplayGuard.open(file).catch((x: unknown) => x);
      expect(isHpcflowError(e, 'HPCFLOW_USAGE'), bad).toBe(true);
    }
  });

  it('forgets ids whose write failed and rejects', async () => {
    const state = join(dir, 'state');
    const g = await ReplayGuard.open(join(state, 'deliveries.json'));
    await writeFile(state, 'a file where the directory should be');
    const e: unknown = await g.remember('lost').catch((x: unknown) => x);
    expect(isHpcflowError(e, 'HPCFLOW_USAGE')).toBe(true);
    expect(g.seen('lost')).toBe(false);
  });

  it('rejects a nonsensical bound', async () => {
    await expect(ReplayGuard.open(join(dir, 'x.json'), { max: 0 })).rejects.toThrow(/positive integer/);
  });
});
