import { execa } from 'execa';
import { copyFile, mkdir, mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../../helpers/cli.js';

/**
 * The OpenMP heat kernel (kernels/heat/openmp/) built and run inside the real containers/openmp image,
 * the way the heat pipeline runs it: compile, generate an initial condition, solve, and check the
 * results bitwise (thread-count independence), physically (maximum principle, symmetry, heat
 * conservation until the front reaches the cold boundary, then heat loss through it), and against the
 * exact solution of the discretised equation for the `--ic modes` initial condition.
 */

const IMAGE = `hpcflow-test/openmp-kernel:${process.pid}`;
const HEADER = 20; // "HEAT", uint32 nx, uint32 ny, float64 dx
const HOT = 100; // temperature of the generated hot square

let ws: string;

interface Run {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Run a shell command in the image, with the work dir mounted at the same path, as this user. */
async function inImage(cmd: string, env: Record<string, string> = {}): Promise<Run> {
  const user = typeof process.getuid === 'function' ? [`--user`, `${process.getuid()}:${process.getgid?.() ?? 0}`] : [];
  const envArgs = Object.entries(env).flatMap(([k, v]) => ['-e', `${k}=${v}`]);
  const r = await execa(
    'docker',
    ['run', '--rm', '--network', 'host', ...user, ...envArgs, '-v', `${ws}:${ws}`, '-w', ws, IMAGE, 'sh', '-c', cmd],
    { reject: false, timeout: 120_000 },
  );
  return { code: r.exitCode ?? -1, stdout: r.stdout, stderr: r.stderr };
}

async function heat(args: string, threads = 2): Promise<Run> {
  const r = await inImage(`./build/heat/heat ${args}`, { OMP_NUM_THREADS: String(threads), OMP_PROC_BIND: 'close' });
  if (r.code !== 0) throw new Error(`heat ${args} exited ${r.code}:\n${r.stderr}`);
  return r;
}

interface Field {
  readonly nx: number;
  readonly ny: number;
  readonly dx: number;
  readonly t: Float64Array;
  readonly raw: Buffer;
}

async function readField(rel: string): Promise<Field> {
  const raw = await readFile(join(ws, rel));
  expect(raw.subarray(0, 4).toString('latin1')).toBe('HEAT');
  const nx = raw.readUInt32LE(4);
  const ny = raw.readUInt32LE(8);
  const dx = raw.readDoubleLE(12);
  expect(raw.length).toBe(HEADER + 8 * nx * ny);
  // Copy the data out: at offset 20 it is not 8-byte aligned for a Float64Array view.
  const t = new Float64Array(raw.buffer.slice(raw.byteOffset + HEADER, raw.byteOffset + raw.length));
  return { nx, ny, dx, t, raw };
}

const sum = (t: Float64Array): number => t.reduce((a, b) => a + b, 0);

interface Metrics {
  kernel: string;
  impl: string;
  nx: number;
  ny: number;
  steps: number;
  alpha: number;
  processes: number;
  threads: number;
  wall_s: number;
  cell_updates_per_s: number;
  residual: number;
  checksum: number;
}

async function readMetrics(rel: string): Promise<Metrics> {
  return JSON.parse(await readFile(join(ws, rel), 'utf8')) as Metrics;
}

/** The sine modes (A, p, q) of `heat --gen --ic modes`. */
const MODES = [
  [100, 1, 1],
  [25, 3, 2],
] as const;

/**
 * The exact solution of the DISCRETISED equation for `--ic modes` after `steps` sweeps: each mode is
 * an eigenvector of the sweep (zero boundary), multiplied by lambda per sweep. Boundary cells are 0.
 */
function exactModes(nx: number, ny: number, steps: number, alpha: number): Float64Array {
  const t = new Float64Array(nx * ny);
  for (const [a, p, q] of MODES) {
    const sx = Math.sin((p * Math.PI) / (2 * (nx - 1)));
    const sy = Math.sin((q * Math.PI) / (2 * (ny - 1)));
    const amp = a * (1 - 4 * alpha * (sx * sx + sy * sy)) ** steps;
    for (let j = 1; j < ny - 1; j++) {
      const yj = Math.sin((q * Math.PI * j) / (ny - 1));
      for (let i = 1; i < nx - 1; i++) {
        t[j * nx + i] = (t[j * nx + i] ?? 0) + amp * Math.sin((p * Math.PI * i) / (nx - 1)) * yj;
      }
    }
  }
  return t;
}

/** max |t - exact| / max |exact| */
function relErr(t: Float64Array, exact: Float64Array): number {
  let diff = 0;
  let scale = 0;
  for (let k = 0; k < exact.length; k++) {
    diff = Math.max(diff, Math.abs((t[k] ?? NaN) - (exact[k] ?? NaN)));
    scale = Math.max(scale, Math.abs(exact[k] ?? NaN));
  }
  return diff / scale;
}

beforeAll(async () => {
  // Idempotent (skips images that exist) and serialised by a lock: cheap when already built.
  await execa('bash', ['scripts/build-base-images.sh'], { cwd: REPO_ROOT, stdio: 'inherit' });
  await execa('docker', ['build', '--quiet', '--network', 'host', '-t', IMAGE, join(REPO_ROOT, 'containers/openmp')]);
  ws = await mkdtemp(join(tmpdir(), 'hpcflow-heat-'));
  // The kernel's sources at the same place as in the repository, so the Makefile's root-relative
  // BUILD puts the binary at <ws>/build/heat/heat, as the pipeline's build stage expects.
  await mkdir(join(ws, 'kernels/heat/openmp'), { recursive: true });
  for (const f of ['heat.c', 'Makefile']) await copyFile(join(REPO_ROOT, 'kernels/heat/openmp', f), join(ws, 'kernels/heat/openmp', f));
}, 900_000);

afterAll(async () => {
  await execa('docker', ['image', 'rm', IMAGE], { reject: false });
  if (ws) await rm(ws, { recursive: true, force: true });
});

describe('heat kernel (OpenMP) in the containers/openmp image', () => {
  it('compiles with make, the binary landing in BUILD relative to the repository root', async () => {
    const r = await inImage('make -C kernels/heat/openmp BUILD=build/heat');
    expect(r.stderr).not.toMatch(/warning/i);
    expect(r.code).toBe(0);
    expect((await stat(join(ws, 'build/heat/heat'))).mode & 0o111).not.toBe(0);
  });

  it('generates the initial condition: 0 everywhere, a hot square in the middle', async () => {
    await heat('--gen --nx 512 --ny 512 --out data/heat/ic.bin'); // data/heat/ does not exist yet
    const f = await readField('data/heat/ic.bin');
    expect([f.nx, f.ny]).toEqual([512, 512]);
    expect(f.dx).toBeCloseTo(1 / 511, 15);
    expect(f.t.filter((v) => v === HOT).length).toBe(128 * 128);
    expect(f.t.filter((v) => v === 0).length).toBe(512 * 512 - 128 * 128);
    expect(f.t[256 * 512 + 256]).toBe(HOT);
    expect(f.t[191 * 512 + 256]).toBe(0); // the square is rows/columns 192..319
  });

  it('gives bitwise identical fields, residual and checksum with 1 and 2 threads', async () => {
    await heat('--in data/heat/ic.bin --steps 100 --out t1/T.bin --metrics t1/m.json', 1);
    await heat('--in data/heat/ic.bin --steps 100 --out t2/T.bin --metrics t2/m.json', 2);
    const [a, b] = [await readField('t1/T.bin'), await readField('t2/T.bin')];
    expect(a.raw.equals(b.raw)).toBe(true);
    const [m1, m2] = [await readMetrics('t1/m.json'), await readMetrics('t2/m.json')];
    expect([m1.threads, m2.threads]).toEqual([1, 2]);
    // Summed per row, then over rows in order: not dependent on the thread count (see heat.c).
    expect(m2.residual).toBe(m1.residual);
    expect(m2.checksum).toBe(m1.checksum);
  });

  it('writes metrics.json with every field of the shared kernel contract, in order, and sane values', async () => {
    const m = await readMetrics('t2/m.json');
    expect(Object.keys(m)).toEqual([
      'kernel',
      'impl',
      'nx',
      'ny',
      'steps',
      'alpha',
      'processes',
      'threads',
      'wall_s',
      'cell_updates_per_s',
      'residual',
      'checksum',
    ]);
    expect(m).toMatchObject({
      kernel: 'heat-openmp',
      impl: 'openmp',
      nx: 512,
      ny: 512,
      steps: 100,
      alpha: 0.25,
      processes: 1,
      threads: 2,
    });
    expect(m.wall_s).toBeGreaterThan(0);
    expect(m.wall_s).toBeLessThan(60);
    // Interior cells only: the boundary is fixed and never updated.
    expect(m.cell_updates_per_s / ((510 * 510 * 100) / m.wall_s)).toBeCloseTo(1, 9);
    expect(m.cell_updates_per_s).toBeGreaterThan(1e6);
    expect(m.residual).toBeGreaterThan(0);
    expect(Number.isFinite(m.residual)).toBe(true);
    expect(m.checksum).toBeCloseTo(sum((await readField('t2/T.bin')).t), 6);
  });

  it('obeys the maximum principle and keeps the mirror symmetry of the initial condition', async () => {
    const { nx, ny, t } = await readField('t2/T.bin');
    let lo = Infinity;
    let hi = -Infinity;
    for (const v of t) {
      lo = Math.min(lo, v);
      hi = Math.max(hi, v);
    }
    // Diffusion with 0 < alpha <= 0.25 averages neighbours with non-negative weights: no new extrema.
    expect(lo).toBeGreaterThanOrEqual(0);
    expect(hi).toBeLessThanOrEqual(HOT);
    // It has diffused: the square's corner cooled and the cell just outside warmed. (Its centre is
    // still exactly 100: 64 cells in, the cold front needs 64 steps to get there, and did not yet.)
    expect(t[192 * nx + 192]).toBeLessThan(HOT);
    expect(t[191 * nx + 256]).toBeGreaterThan(0);
    expect(hi).toBe(HOT);
    // Dirichlet boundary: untouched (all four edges still 0).
    const edge: number[] = [];
    for (let i = 0; i < nx; i++) edge.push(t[i] ?? NaN, t[(ny - 1) * nx + i] ?? NaN);
    for (let j = 0; j < ny; j++) edge.push(t[j * nx] ?? NaN, t[j * nx + nx - 1] ?? NaN);
    expect(edge.every((v) => v === 0)).toBe(true);
    // x -> nx-1-x maps the problem onto itself and the stencil's sums commute: exactly symmetric.
    for (let j = 0; j < ny; j += 7) {
      for (let i = 0; i < nx; i++) expect(t[j * nx + i]).toBe(t[j * nx + (nx - 1 - i)]);
    }
  });

  it('conserves heat until the front reaches the cold boundary', async () => {
    // One sweep moves information one cell. The square starts at cell 192, 191 cells from the cells
    // next to the boundary (1 and 510): for up to 191 steps no heat can leave, so the total changes
    // only by rounding.
    const m = await readMetrics('t2/m.json');
    const initial = HOT * 128 * 128;
    expect(Math.abs(m.checksum - initial) / initial).toBeLessThan(1e-12);
  });

  it('loses heat through the boundary once it gets there, and smooths out (residual falls)', async () => {
    // A small grid (square at 12..19 of 32): the front reaches the boundary after 11 steps.
    await heat('--gen --nx 32 --ny 32 --out small/ic.bin');
    const seq = [0, 50, 200, 1000];
    const ms: Metrics[] = [];
    for (const s of seq) {
      await heat(`--in small/ic.bin --steps ${s} --out small/T-${s}.bin --metrics small/m-${s}.json`);
      ms.push(await readMetrics(`small/m-${s}.json`));
    }
    const totals = ms.map((m) => m.checksum);
    expect(totals[0]).toBe(HOT * 8 * 8);
    for (let k = 1; k < totals.length; k++) {
      expect(totals[k]).toBeLessThan(totals[k - 1] as number); // heat leaves, never enters (T >= 0 = boundary)
      expect(totals[k]).toBeGreaterThan(0);
    }
    expect(totals[3]).toBeLessThan(0.01 * (totals[0] as number)); // after 1000 steps nearly all gone
    const res = ms.slice(1).map((m) => m.residual);
    expect(res[1]).toBeLessThan(res[0] as number);
    expect(res[2]).toBeLessThan(res[1] as number);
  });

  it('--ic modes: the sine modes, 0 on the boundary, and N sweeps match the exact discrete solution', async () => {
    // nx != ny and p != q: a transposed field or swapped mode numbers would not match.
    const [nx, ny, steps, alpha] = [40, 30, 200, 0.2];
    await heat(`--gen --ic modes --nx ${nx} --ny ${ny} --out modes/ic.bin`);
    await heat(`--in modes/ic.bin --steps ${steps} --alpha ${alpha} --out modes/T.bin --metrics modes/m.json`);
    const ic = await readField('modes/ic.bin');
    expect([ic.nx, ic.ny, ic.dx]).toEqual([nx, ny, 1 / (nx - 1)]);
    for (let i = 0; i < nx; i++) expect([ic.t[i], ic.t[(ny - 1) * nx + i]]).toEqual([0, 0]);
    for (let j = 0; j < ny; j++) expect([ic.t[j * nx], ic.t[j * nx + nx - 1]]).toEqual([0, 0]);
    expect(relErr(ic.t, exactModes(nx, ny, 0, alpha))).toBeLessThan(1e-14);

    const t = await readField('modes/T.bin');
    const m = await readMetrics('modes/m.json');
    expect(m).toMatchObject({ nx, ny, steps, alpha, processes: 1 });
    expect(relErr(t.t, exactModes(nx, ny, steps, alpha))).toBeLessThan(1e-12);
    // The check is sharp: one sweep more or less is far outside the tolerance.
    expect(relErr(t.t, exactModes(nx, ny, steps - 1, alpha))).toBeGreaterThan(1e-4);
    expect(relErr(t.t, exactModes(nx, ny, steps + 1, alpha))).toBeGreaterThan(1e-4);

    // --ic square is the default: the same bytes as plain --gen.
    await heat('--gen --ic square --nx 32 --ny 32 --out modes/square.bin');
    await heat('--gen --nx 32 --ny 32 --out modes/default.bin');
    expect((await readField('modes/square.bin')).raw.equals((await readField('modes/default.bin')).raw)).toBe(true);
  });

  it('rejects a bad argument with a usage message and a non-zero exit', async () => {
    const r = await inImage('./build/heat/heat --gen --out x.bin --bogus 1');
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/unknown option '--bogus'/);
    expect(r.stderr).toMatch(/^usage: heat /m);
    const unstable = await inImage('./build/heat/heat --gen --alpha 0.3 --out x.bin');
    expect(unstable.code).toBe(2);
    expect(unstable.stderr).toMatch(/--alpha must be in \(0, 0\.25\]/);
    const badIc = await inImage('./build/heat/heat --gen --ic cubes --out x.bin');
    expect(badIc.code).toBe(2);
    expect(badIc.stderr).toMatch(/--ic wants square or modes, got 'cubes'/);
    const icWithIn = await inImage('./build/heat/heat --in data/heat/ic.bin --ic modes --out x.bin');
    expect(icWithIn.code).toBe(2);
    expect(icWithIn.stderr).toMatch(/--ic chooses a generated field: use it with --gen/);
    const missing = await inImage('./build/heat/heat --in nowhere.bin --out x.bin');
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/cannot open nowhere\.bin/);
    await expect(stat(join(ws, 'x.bin'))).rejects.toThrow(); // nothing written on error
  });
});
