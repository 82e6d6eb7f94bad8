import { execa } from 'execa';

/** The git CLI in tests: a fixed identity, and none of this machine's git configuration. */
export const GIT_ENV = {
  GIT_AUTHOR_NAME: 'dev',
  GIT_AUTHOR_EMAIL: 'dev@example.org',
  GIT_COMMITTER_NAME: 'dev',
  GIT_COMMITTER_EMAIL: 'dev@example.org',
  GIT_CONFIG_GLOBAL: '/dev/null',
  GIT_CONFIG_NOSYSTEM: '1',
};

/** `git args…` in `dir` → its trimmed stdout; `date` sets author and committer dates, `input` is stdin. */
export async function git(dir: string, args: readonly string[], opts: { date?: string; input?: string } = {}): Promise<string> {
  const date = opts.date === undefined ? {} : { GIT_AUTHOR_DATE: opts.date, GIT_COMMITTER_DATE: opts.date };
  const r = await execa('git', args, { cwd: dir, env: { ...GIT_ENV, ...date }, ...(opts.input !== undefined ? { input: opts.input } : {}) });
  return r.stdout.trim();
}
