import { execa } from 'execa';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));

/**
 * Once per test run: a reachable Docker engine (installed and started if missing), the test
 * images built without a registry (skipped when present), the compiled CLI in dist/ that the
 * end-to-end tests spawn as a real process, and the Slurm test cluster (scripts/slurm-cluster.sh:
 * a controller and 3 compute nodes in containers, with accounting; a no-op when it already runs).
 *
 * The returned teardown stops the cluster again, unless HPCFLOW_KEEP_SLURM=1 (fast local iteration:
 * the next run then finds it up in well under a second).
 */
export default async function setup(): Promise<(() => Promise<void>) | undefined> {
  // `npm run check` runs only unit tests: no engine, images, build or cluster needed.
  if (process.env.HPCFLOW_UNIT_ONLY === '1') return undefined;
  const t0 = Date.now();
  await execa('bash', ['scripts/build-test-images.sh'], { cwd: root, stdio: 'inherit' });
  await execa('npm', ['run', '--silent', 'build'], { cwd: root, stdio: 'inherit' });
  await execa('bash', ['scripts/slurm-cluster.sh', 'up'], { cwd: root, stdio: 'inherit' });
  process.stderr.write(`global setup: engine, test images, build and Slurm cluster ready in ${((Date.now() - t0) / 1000).toFixed(1)} s\n`);
  return async () => {
    if (process.env.HPCFLOW_KEEP_SLURM === '1') {
      process.stderr.write('global teardown: Slurm cluster left up (HPCFLOW_KEEP_SLURM=1)\n');
      return;
    }
    const t1 = Date.now();
    await execa('bash', ['scripts/slurm-cluster.sh', 'down'], { cwd: root, stdio: 'inherit' });
    process.stderr.write(`global teardown: Slurm cluster down in ${((Date.now() - t1) / 1000).toFixed(1)} s\n`);
  };
}
