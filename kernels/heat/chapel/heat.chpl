/*
 * heat.chpl - 2-D heat diffusion with an explicit Jacobi 5-point stencil, in Chapel 2.x.
 *
 * The Chapel implementation of the hpcflow heat demo. It mirrors kernels/heat/openmp/heat.c: same file
 * format, same sweep expression, same command line, same metrics, and (compiled as README.md says)
 * bitwise the same field:
 *
 *   T'[j][i] = T[j][i] + alpha * ((T[j][i-1] + T[j][i+1]) + (T[j-1][i] + T[j+1][i]) - 4 T[j][i])
 *
 * Field file (little-endian): "HEAT" (4 bytes), uint32 nx, uint32 ny, float64 dx, then nx*ny float64,
 * row-major (x fastest). Boundary cells keep their initial values (Dirichlet).
 *
 * Parallelism: the field lives in two block-distributed 2-D arrays (BlockDist). They are distributed by
 * bands of whole rows (a numLocales x 1 grid of locales), like heat.c's static row schedule: a locale
 * reads only the row just above and just below its band from its neighbours, and every row is summed on
 * one locale. Within a locale, `forall` runs one task per core (here.maxTaskPar). The same source runs on
 * one locale or on many (`-nl N` with a CHPL_COMM=gasnet build). Only locale 0 opens files, so the input
 * and output paths need only be visible where locale 0 runs.
 *
 * Determinism: every new cell is computed from the previous field by the same expression, whichever
 * locale or task owns it, so the field does not depend on the number of locales or tasks. The residual
 * is summed per row (each row serially, left to right) and then over the rows in order; the checksum is
 * a serial sum in file order. Both follow heat.c's summation order exactly.
 *
 * Command line: the Chapel runtime takes its own arguments first (-nl N, --numLocales=N, -v, -q,
 * --<config>=<value>, ...); everything else, -h and --help included, reaches main(args):
 *   heat --in FILE --out FILE [--steps S] [--alpha A] [--metrics FILE]
 * Bad usage: message on stderr, exit status 2. I/O or data error: "heat: error: ...", exit status 1.
 */
use BlockDist;                              // blockDist
use IO;                                     // openReader, openWriter, endianness, stdout, stderr
use FileSystem only exists, mkdir, rename;
use Path only dirname;
use Time only stopwatch;

// The file's magic bytes, "HEAT".
const magic: 4*uint(8) = (0x48: uint(8), 0x45: uint(8), 0x41: uint(8), 0x54: uint(8));
param maxDim = 1 << 20;                     // largest nx or ny accepted, as in heat.c

// C's getpid(): temporary output files are named <path>.tmp.<pid>, as in heat.c.
extern proc getpid(): int(32);

const usageText =
  "usage: heat --in FILE --out FILE [--steps S] [--alpha A] [--metrics FILE]\n" +
  "  --in FILE       initial field (HEAT binary file)\n" +
  "  --out FILE      final field (HEAT binary file)\n" +
  "  --steps S       Jacobi sweeps to run (default 0: write the initial field)\n" +
  "  --alpha A       diffusion number kappa*dt/dx^2, 0 < A <= 0.25 (default 0.25)\n" +
  "  --metrics FILE  metrics as JSON (one line)\n" +
  "Chapel runtime arguments (-nl N, --numLocales=N, -v, -q, ...) are taken by the runtime;\n" +
  "arguments after '--' are passed on untouched.\n";

/* An I/O or data error: reported as "heat: error: <message>" with exit status 1. */
class HeatError : Error {
  proc init(msg: string) { super.init(msg); }
}

record Options {
  var inPath, outPath, metricsPath: string;
  var steps: int = 0;
  var alpha: real = 0.25;
}

/* Bad command line: the message and the usage on stderr, exit status 2. */
proc badUsage(msg: string) {
  try! stderr.write("heat: ", msg, "\n", usageText);
  try! stderr.flush();
  exit(2);
}

proc parseInt(opt: string, s: string, lo: int, hi: int): int {
  var v = lo - 1;                           // out of range unless s parses
  try { v = s: int; } catch { v = lo - 1; }
  if v < lo || v > hi then
    badUsage(opt + " wants an integer in [" + lo:string + ", " + hi:string + "], got '" + s + "'");
  return v;
}

proc parseReal(opt: string, s: string): real {
  var v = 0.0;
  var ok = true;
  try { v = s: real; } catch { ok = false; }
  if !ok || !isFinite(v) then badUsage(opt + " wants a number, got '" + s + "'");
  return v;
}

/* GNU-style options with space-separated values, exactly those of heat.c's solver mode.
   args[0] is the program name; the runtime has already removed its own arguments. */
proc parseArgs(args: [] string): Options {
  var o: Options;
  var k = 1;
  while k < args.size {
    const a = args[k];
    if a == "-h" || a == "--help" {
      try! stdout.write(usageText);
      try! stdout.flush();
      exit(0);
    } else if a == "--" {
      k += 1;                               // end of runtime arguments, if the runtime passed it on
    } else if a == "--in" || a == "--out" || a == "--metrics" || a == "--steps" || a == "--alpha" {
      if k + 1 >= args.size then badUsage(a + " needs a value");
      const v = args[k + 1];
      select a {
        when "--in" { o.inPath = v; }
        when "--out" { o.outPath = v; }
        when "--metrics" { o.metricsPath = v; }
        when "--steps" { o.steps = parseInt(a, v, 0, 1000000000); }
        otherwise { o.alpha = parseReal(a, v); }      // --alpha
      }
      k += 2;
    } else if a.startsWith("--") {
      badUsage("unknown option '" + a + "'");
    } else {
      badUsage("unexpected argument '" + a + "'");
    }
  }
  if o.inPath == "" then badUsage("--in FILE is required");
  if o.outPath == "" then badUsage("--out FILE is required");
  if !(o.alpha > 0.0 && o.alpha <= 0.25) then
    badUsage("--alpha must be in (0, 0.25] for stability, got " + o.alpha:string);
  return o;
}

/* Reads one little-endian number; false at the end of the file or in the middle of the number. */
proc readLE(ref r, ref x): bool {
  try {
    return r.readBinary(x, endianness.little);
  } catch {
    return false;
  }
}

/* Reads a HEAT file into a new (local) array on the calling locale; sets nx, ny and dx. */
proc readField(path: string, ref nx: int, ref ny: int, ref dx: real) throws {
  var r = openReader(path, locking=false);
  var ok = true;
  for k in 0..<4 {
    var b: uint(8);
    ok = ok && readLE(r, b) && b == magic[k];
  }
  var nx32, ny32: uint(32);
  ok = ok && readLE(r, nx32) && readLE(r, ny32) && readLE(r, dx);
  if !ok then throw new HeatError(path + " is not a HEAT field file (bad or short header)");
  nx = nx32: int;
  ny = ny32: int;
  if nx < 3 || ny < 3 || nx > maxDim || ny > maxDim || !(dx > 0.0) || !isFinite(dx) then
    throw new HeatError(path + ": bad header (nx=" + nx:string + " ny=" + ny:string +
                        " dx=" + dx:string + ")");

  // readBinary takes whole non-distributed arrays; one row at a time keeps the buffer small.
  const sizeError = path + ": data size does not match the header's " + nx:string + " x " + ny:string;
  var T: [0..<ny, 0..<nx] real;
  var rowBuf: [0..<nx] real;
  for j in 0..<ny {
    var got = -1;
    try { got = r.readBinary(rowBuf, endianness.little); } catch { got = -1; }
    if got != nx then throw new HeatError(sizeError);
    for i in 0..<nx do T[j, i] = rowBuf[i];
  }
  var extra: uint(8);
  if readLE(r, extra) then throw new HeatError(sizeError);    // trailing bytes
  r.close();
  for (j, i) in T.domain do
    if !isFinite(T[j, i]) then
      throw new HeatError(path + ": non-finite value at cell " + (j * nx + i):string);
  return T;
}

/* Creates the missing parent directories of path and returns a temporary name next to it. Outputs
   are written to the temporary file and renamed into place, so an interrupted run never leaves a
   truncated file that looks like a result. */
proc tempFor(path: string): string throws {
  const dir = dirname(path);
  if dir != "" && !exists(dir) then mkdir(dir, parents=true);
  return path + ".tmp." + getpid():string;
}

/* Writes the local array T (ny x nx) as a HEAT file. */
proc writeField(path: string, const ref T: [] real, nx: int, ny: int, dx: real) throws {
  const tmp = tempFor(path);
  var w = openWriter(tmp, locking=false);
  for b in magic do w.writeBinary(b, endianness.little);
  w.writeBinary((nx: uint(32)), endianness.little);
  w.writeBinary((ny: uint(32)), endianness.little);
  w.writeBinary(dx, endianness.little);
  var rowBuf: [0..<nx] real;
  for j in 0..<ny {
    for i in 0..<nx do rowBuf[i] = T[j, i];
    w.writeBinary(rowBuf, endianness.little);
  }
  w.close();
  rename(tmp, path);
}

/* One Jacobi sweep over the interior cells, in exactly the contract's operation order:
   row[i] + alpha * ((row[i-1] + row[i+1]) + (up[i] + dn[i]) - 4.0 * row[i]). The forall runs each
   index on the locale that owns it, with here.maxTaskPar tasks per locale. */
proc sweep(const ref src: [] real, ref dst: [] real, const Inner, alpha: real) {
  forall (j, i) in Inner with (ref dst) {
    const row = src[j, i];
    dst[j, i] = row + alpha * ((src[j, i-1] + src[j, i+1]) + (src[j-1, i] + src[j+1, i]) - 4.0 * row);
  }
}

/* The residual of the last sweep: sqrt of the sum over interior cells of (cur - prev)^2. Each row is
   summed serially on the locale that owns it (Rows is blocked like the rows of the field), then the
   rows are added in order on locale 0, as heat.c does. */
proc lastChange(const ref cur: [] real, const ref prev: [] real, const Rows, nx: int, ny: int): real {
  var rowSum: [Rows] real;
  forall j in Rows[1..ny-2] with (ref rowSum) {
    var r = 0.0;
    for i in 1..nx-2 {
      const d = cur[j, i] - prev[j, i];
      r += d * d;
    }
    rowSum[j] = r;
  }
  var total = 0.0;
  for j in 1..ny-2 do total += rowSum[j];
  return sqrt(total);
}

proc run(opts: Options) throws {
  var nx, ny: int;
  var dx: real;
  var Local = readField(opts.inPath, nx, ny, dx);    // the whole field, on locale 0

  // Distribute by bands of rows: a numLocales x 1 grid of target locales.
  const Space = {0..<ny, 0..<nx};
  const rowGrid = reshape(Locales, {0..<numLocales, 0..0});
  const D = blockDist.createDomain(Space, targetLocales=rowGrid);
  const Rows = blockDist.createDomain({0..<ny});     // same row blocks as D
  const Inner = D[1..ny-2, 1..nx-2];                 // interior cells, distributed like D
  var A, B: [D] real;
  A = Local;                                         // both hold the boundary
  B = Local;

  // The sweeps alternate direction (A -> B, B -> A, ...) instead of swapping arrays. The residual of
  // the last sweep is computed inside the timed region, as heat.c computes it during that sweep.
  const threads = here.maxTaskPar;
  var sw: stopwatch;
  sw.start();
  for s in 1..opts.steps {
    if s % 2 == 1 { sweep(A, B, Inner, opts.alpha); } else { sweep(B, A, Inner, opts.alpha); }
  }
  var residual = 0.0;
  if opts.steps > 0 {
    if opts.steps % 2 == 1 { residual = lastChange(B, A, Rows, nx, ny); }
    else { residual = lastChange(A, B, Rows, nx, ny); }
  }
  sw.stop();
  const wall = sw.elapsed();

  if opts.steps % 2 == 1 { Local = B; } else { Local = A; }      // gather on locale 0
  var checksum = 0.0;
  for x in Local do checksum += x;                               // serial, in file order
  const updates = (nx - 2): real * (ny - 2): real * opts.steps: real;
  const rate = if updates > 0.0 && wall > 0.0 then updates / wall else 0.0;

  writeField(opts.outPath, Local, nx, ny, dx);
  if opts.metricsPath != "" {
    // %.17r is C's %.17g: 17 significant digits, enough to give back the same double.
    const tmp = tempFor(opts.metricsPath);
    var w = openWriter(tmp, locking=false);
    w.writef('{"kernel":"heat-chapel","impl":"chapel","nx":%i,"ny":%i,"steps":%i,"alpha":%.17r,' +
             '"processes":%i,"threads":%i,"wall_s":%.17r,"cell_updates_per_s":%.17r,' +
             '"residual":%.17r,"checksum":%.17r}\n',
             nx, ny, opts.steps, opts.alpha, numLocales, threads, wall, rate, residual, checksum);
    w.close();
    rename(tmp, opts.metricsPath);
  }
  stdout.writef("heat: %i x %i, %i steps, alpha %r, %i locales x %i threads: %.4dr s, " +
                "%.3er cell updates/s, residual %.6er, checksum %.10er\n",
                nx, ny, opts.steps, opts.alpha, numLocales, threads, wall, rate, residual, checksum);
}

proc main(args: [] string): int {
  const opts = parseArgs(args);
  try {
    run(opts);
  } catch err {
    try! stderr.writeln("heat: error: ", err.message());
    return 1;
  }
  return 0;
}
