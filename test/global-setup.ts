import { execa } from 'execa';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));

/**
 * Once per test run: a reachable Docker engine (installed and started if missing), the test
 * images built without a registry (skipped when present), and the compiled CLI in dist/ that the
 * end-to-end tests spawn as a real process.
 */
export default async function setup(): Promise<void> {
  // `npm run check` runs only unit tests: no engine, images or build needed.
  if (process.env.HPCFLOW_UNIT_ONLY === '1') return;
  const t0 = Date.now();
  await execa('bash', ['scripts/build-test-images.sh'], { cwd: root, stdio: 'inherit' });
  await execa('npm', ['run', '--silent', 'build'], { cwd: root, stdio: 'inherit' });
  process.stderr.write(`global setup: engine, test images and build ready in ${((Date.now() - t0) / 1000).toFixed(1)} s\n`);
}
