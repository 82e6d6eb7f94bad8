import { execa } from 'execa';
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { postReceiveHook } from '../../../runner/cli/cmd-hook.js';

describe('post-receive hook', () => {
  const hook = postReceiveHook({ node: '/usr/bin/node', bin: '/opt/hpcflow/bin/hpcflow.js', url: 'http://127.0.0.1:8080/p.git', branch: 'main', workdir: '/srv/runs/main', runArgs: ['--executor', 'slurm'] });

  it('is valid sh and starts a detached `watch --once` for the branch only', async () => {
    expect(hook).toMatchSnapshot();
    await execa('sh', ['-n'], { input: hook });
  });

  it('runs for a push to the branch, not for other branches or a deletion (real shell, a stand-in setsid)', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'hpcflow-hook-'));
    try {
      // setsid records what it was asked to start instead of starting it.
      await writeFile(join(dir, 'setsid'), `#!/bin/sh\necho "$@" >> ${join(dir, 'started')}\n`);
      await chmod(join(dir, 'setsid'), 0o755);
      const h = postReceiveHook({ node: 'node', bin: 'hpcflow.js', url: 'http://x/p.git', branch: 'main', workdir: join(dir, 'w'), runArgs: [] });
      await writeFile(join(dir, 'hook'), h);
      const zero = '0'.repeat(40);
      const input = [`${'a'.repeat(40)} ${'b'.repeat(40)} refs/heads/dev`, `${'a'.repeat(40)} ${zero} refs/heads/main`, `${'a'.repeat(40)} ${'c'.repeat(40)} refs/heads/main`, ''].join('\n');
      await execa('sh', [join(dir, 'hook')], { input, env: { PATH: `${dir}:/usr/bin:/bin` } });
      await new Promise((r) => setTimeout(r, 100));
      const started = (await readFile(join(dir, 'started'), 'utf8')).trim().split('\n');
      expect(started).toEqual([`nohup node hpcflow.js watch --once --url http://x/p.git --branch main --workdir ${join(dir, 'w')}`]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
