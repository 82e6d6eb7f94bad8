/*
 * heat.c - 2-D heat diffusion with an explicit Jacobi 5-point stencil, parallelised with OpenMP.
 *
 *   T'[j][i] = T[j][i] + alpha * (T[j][i-1] + T[j][i+1] + T[j-1][i] + T[j+1][i] - 4 T[j][i])
 *
 * alpha is the dimensionless diffusion number kappa*dt/dx^2; the explicit scheme is stable for
 * 0 < alpha <= 0.25 (alpha = 0.25 is the classic Jacobi iteration for Laplace's equation). Boundary
 * cells keep their initial values (Dirichlet). Every sweep reads one buffer and writes the other.
 *
 * Field file (little-endian): "HEAT" (4 bytes), uint32 nx, uint32 ny, float64 dx, then nx*ny float64,
 * row-major (x fastest). dx is carried along for post-processing (physical time = steps*alpha*dx^2/kappa).
 *
 * Generated initial conditions (--gen): `square` (default), 0 everywhere with a 100-degree square in
 * the middle; `modes`, two separable sine modes that vanish on the boundary,
 *
 *   T0(i,j) = 100 sin(pi i/(nx-1)) sin(pi j/(ny-1)) + 25 sin(3 pi i/(nx-1)) sin(2 pi j/(ny-1)),
 *
 * each an eigenvector of the sweep: after s sweeps mode (p,q) has been multiplied by lambda^s,
 * lambda = 1 - 4 alpha (sin^2(p pi/(2(nx-1))) + sin^2(q pi/(2(ny-1)))), so the result can be checked
 * against this exact solution of the discretised equation (kernels/heat/analysis/).
 *
 * Determinism: each cell's new value depends only on the previous field, and is computed by the same
 * expression whichever thread owns its row (-ffp-contract=off: no fused multiply-adds), so the field is
 * bitwise identical for ANY thread count, not just the same one. The residual and checksum are summed
 * per row in parallel, then over rows serially in row order, so they are thread-count independent too
 * (an OpenMP reduction clause would combine per-thread partials in an unspecified order and change
 * the last bits from run to run).
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <math.h>
#include <omp.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "heat.c reads and writes its little-endian files natively: add byte swapping for this host"
#endif

enum { HEADER_BYTES = 20, MAX_DIM = 1 << 20 };

/* M_PI is not in C11 (only in POSIX's XSI option). */
static const double PI = 3.14159265358979323846;

typedef enum { IC_SQUARE, IC_MODES } ic_t;

/* The sine modes of `--ic modes`: amplitude A, mode numbers p (along x) and q (along y). */
static const struct {
    double a;
    int p, q;
} MODES[] = {{100.0, 1, 1}, {25.0, 3, 2}};

typedef struct {
    uint32_t nx, ny; /* columns (x, fastest) and rows (y) */
    double dx;       /* grid spacing */
    double *t;       /* nx*ny temperatures, row-major */
} field_t;

static void usage(FILE *f) {
    fputs("usage: heat (--in FILE | --gen [--ic square|modes] [--nx N] [--ny N]) --out FILE\n"
          "            [--steps S] [--alpha A] [--metrics FILE]\n"
          "  --in FILE       initial field (HEAT binary file)\n"
          "  --gen           generate one instead (see --ic)\n"
          "  --ic IC         generated initial condition: square (default): 0 everywhere, a 100-degree\n"
          "                  square in the middle; modes: 100 sin(pi x) sin(pi y) + 25 sin(3 pi x) sin(2 pi y)\n"
          "                  on the unit square, 0 on the boundary (its exact discrete solution is known)\n"
          "  --nx, --ny N    size of the generated field (default 512 x 512, at least 3)\n"
          "  --steps S       Jacobi sweeps to run (default 0: write the initial field)\n"
          "  --alpha A       diffusion number kappa*dt/dx^2, 0 < A <= 0.25 (default 0.25)\n"
          "  --out FILE      final field (HEAT binary file)\n"
          "  --metrics FILE  metrics as JSON\n", f);
}

static _Noreturn void bad_usage(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fputs("heat: ", stderr);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    usage(stderr);
    exit(2);
}

static _Noreturn void die(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fputs("heat: error: ", stderr);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(1);
}

static long parse_long(const char *opt, const char *s, long lo, long hi) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi)
        bad_usage("%s wants an integer in [%ld, %ld], got '%s'", opt, lo, hi, s);
    return v;
}

static double parse_double(const char *opt, const char *s) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !isfinite(v)) bad_usage("%s wants a number, got '%s'", opt, s);
    return v;
}

/* Both buffers are first touched by the threads that will update them (static schedule over rows),
 * so on a NUMA node their pages land next to the cores that use them. */
static double *alloc_field(uint32_t nx, uint32_t ny) {
    double *p = malloc((size_t)nx * ny * sizeof *p);
    if (!p) die("out of memory for a %u x %u field", nx, ny);
#pragma omp parallel for schedule(static)
    for (long j = 0; j < (long)ny; j++) memset(p + (size_t)j * nx, 0, nx * sizeof *p);
    return p;
}

static void gen_field(field_t *f, ic_t ic) {
    f->dx = 1.0 / (f->nx - 1);
    f->t = alloc_field(f->nx, f->ny);
    if (ic == IC_SQUARE) {
        for (uint32_t j = f->ny * 3 / 8; j < f->ny * 5 / 8; j++)
            for (uint32_t i = f->nx * 3 / 8; i < f->nx * 5 / 8; i++) f->t[(size_t)j * f->nx + i] = 100.0;
        return;
    }
    /* Interior cells only: the boundary stays exactly 0 (sin(pi) in floating point is ~1e-16, not 0). */
    for (uint32_t j = 1; j + 1 < f->ny; j++)
        for (uint32_t i = 1; i + 1 < f->nx; i++) {
            double v = 0.0;
            for (size_t m = 0; m < sizeof MODES / sizeof *MODES; m++)
                v += MODES[m].a * sin(MODES[m].p * PI * i / (f->nx - 1)) * sin(MODES[m].q * PI * j / (f->ny - 1));
            f->t[(size_t)j * f->nx + i] = v;
        }
}

static void read_field(const char *path, field_t *f) {
    unsigned char h[HEADER_BYTES];
    FILE *fp = fopen(path, "rb");
    if (!fp) die("cannot open %s: %s", path, strerror(errno));
    if (fread(h, 1, sizeof h, fp) != sizeof h || memcmp(h, "HEAT", 4) != 0)
        die("%s is not a HEAT field file (bad or short header)", path);
    memcpy(&f->nx, h + 4, 4);
    memcpy(&f->ny, h + 8, 4);
    memcpy(&f->dx, h + 12, 8);
    if (f->nx < 3 || f->ny < 3 || f->nx > MAX_DIM || f->ny > MAX_DIM || !(f->dx > 0) || !isfinite(f->dx))
        die("%s: bad header (nx=%u ny=%u dx=%g)", path, f->nx, f->ny, f->dx);
    f->t = alloc_field(f->nx, f->ny);
    size_t n = (size_t)f->nx * f->ny;
    if (fread(f->t, sizeof *f->t, n, fp) != n || fgetc(fp) != EOF)
        die("%s: data size does not match the header's %u x %u", path, f->nx, f->ny);
    fclose(fp);
    for (size_t k = 0; k < n; k++)
        if (!isfinite(f->t[k])) die("%s: non-finite value at cell %zu", path, k);
}

/* Outputs are written to a temporary file that is renamed into place, so an interrupted run never
 * leaves a truncated file that looks like a result; missing parent directories are created. */
static FILE *open_output(const char *path, char *tmp, size_t tmp_len) {
    char dir[4096];
    if (snprintf(dir, sizeof dir, "%s", path) >= (int)sizeof dir) die("path too long: %s", path);
    for (char *p = dir + 1; *p; p++) {
        if (*p != '/') continue;
        *p = '\0';
        if (mkdir(dir, 0777) != 0 && errno != EEXIST) die("cannot create directory %s: %s", dir, strerror(errno));
        *p = '/';
    }
    snprintf(tmp, tmp_len, "%s.tmp.%ld", path, (long)getpid());
    FILE *fp = fopen(tmp, "wb");
    if (!fp) die("cannot write %s: %s", tmp, strerror(errno));
    return fp;
}

static void close_output(FILE *fp, const char *tmp, const char *path) {
    if (ferror(fp) | fclose(fp)) die("write error on %s", tmp);
    if (rename(tmp, path) != 0) die("cannot rename %s to %s: %s", tmp, path, strerror(errno));
}

static void write_field(const char *path, const field_t *f, const double *t) {
    char tmp[4200];
    unsigned char h[HEADER_BYTES];
    memcpy(h, "HEAT", 4);
    memcpy(h + 4, &f->nx, 4);
    memcpy(h + 8, &f->ny, 4);
    memcpy(h + 12, &f->dx, 8);
    FILE *fp = open_output(path, tmp, sizeof tmp);
    fwrite(h, 1, sizeof h, fp);
    fwrite(t, sizeof *t, (size_t)f->nx * f->ny, fp);
    close_output(fp, tmp, path);
}

/* One row of one sweep; restrict lets the compiler vectorise (the two buffers never overlap). */
static inline void sweep_row(const double *restrict up, const double *restrict row, const double *restrict dn,
                             double *restrict out, long nx, double alpha) {
    for (long i = 1; i < nx - 1; i++)
        out[i] = row[i] + alpha * ((row[i - 1] + row[i + 1]) + (up[i] + dn[i]) - 4.0 * row[i]);
}

/* Runs `steps` sweeps from a (b holds the same boundary); returns the buffer with the result and
 * leaves in row_res[j] the sum of squared changes of row j in the last sweep. */
static double *solve(double *a, double *b, long nx, long ny, double alpha, long steps, double *row_res,
                     int *threads) {
#pragma omp parallel firstprivate(a, b)
    {
#pragma omp single
        *threads = omp_get_num_threads();
        for (long s = 0; s < steps; s++) {
#pragma omp for schedule(static)
            for (long j = 1; j < ny - 1; j++) {
                const double *row = a + j * nx;
                double *out = b + j * nx;
                sweep_row(row - nx, row, row + nx, out, nx, alpha);
                if (s == steps - 1) {
                    double r = 0.0;
                    for (long i = 1; i < nx - 1; i++) r += (out[i] - row[i]) * (out[i] - row[i]);
                    row_res[j] = r;
                }
            } /* implicit barrier: the whole new field is written before anyone reads it */
            double *t = a; /* every thread swaps its private pointers in lockstep */
            a = b;
            b = t;
        }
    }
    return steps % 2 ? b : a;
}

int main(int argc, char **argv) {
    const char *in = NULL, *out = NULL, *metrics = NULL;
    long nx = 512, ny = 512, steps = 0;
    double alpha = 0.25;
    int gen = 0, sized = 0, ic_given = 0;
    ic_t ic = IC_SQUARE;
    for (int k = 1; k < argc; k++) {
        const char *o = argv[k];
        if (!strcmp(o, "-h") || !strcmp(o, "--help")) { usage(stdout); return 0; }
        if (!strcmp(o, "--gen")) { gen = 1; continue; }
        static const char *const valued[] = {"--in", "--out", "--metrics", "--nx", "--ny", "--steps", "--alpha",
                                             "--ic"};
        int known = 0;
        for (size_t q = 0; q < sizeof valued / sizeof *valued; q++) known |= !strcmp(o, valued[q]);
        if (!known) bad_usage(strncmp(o, "--", 2) ? "unexpected argument '%s'" : "unknown option '%s'", o);
        if (k + 1 >= argc) bad_usage("%s needs a value", o);
        const char *v = argv[++k];
        if (!strcmp(o, "--in")) in = v;
        else if (!strcmp(o, "--out")) out = v;
        else if (!strcmp(o, "--metrics")) metrics = v;
        else if (!strcmp(o, "--nx")) { nx = parse_long(o, v, 3, MAX_DIM); sized = 1; }
        else if (!strcmp(o, "--ny")) { ny = parse_long(o, v, 3, MAX_DIM); sized = 1; }
        else if (!strcmp(o, "--steps")) steps = parse_long(o, v, 0, 1000000000L);
        else if (!strcmp(o, "--ic")) {
            if (!strcmp(v, "square")) ic = IC_SQUARE;
            else if (!strcmp(v, "modes")) ic = IC_MODES;
            else bad_usage("--ic wants square or modes, got '%s'", v);
            ic_given = 1;
        }
        else alpha = parse_double(o, v); /* --alpha */
    }
    if (gen == (in != NULL)) bad_usage("give exactly one of --in FILE and --gen");
    if (sized && !gen) bad_usage("--nx/--ny size a generated field: use them with --gen");
    if (ic_given && !gen) bad_usage("--ic chooses a generated field: use it with --gen");
    if (!out) bad_usage("--out FILE is required");
    if (!(alpha > 0.0 && alpha <= 0.25)) bad_usage("--alpha must be in (0, 0.25] for stability, got %g", alpha);

    field_t f = {.nx = (uint32_t)nx, .ny = (uint32_t)ny};
    if (gen) gen_field(&f, ic);
    else read_field(in, &f);
    nx = f.nx;
    ny = f.ny;

    double *other = alloc_field(f.nx, f.ny);
    memcpy(other, f.t, (size_t)nx * ny * sizeof *other); /* the boundary lives in both buffers */
    double *row_res = calloc((size_t)ny, sizeof *row_res);
    if (!row_res) die("out of memory");

    int threads = 1;
    double t0 = omp_get_wtime();
    double *result = solve(f.t, other, nx, ny, alpha, steps, row_res, &threads);
    double wall = omp_get_wtime() - t0;

    double residual = 0.0, checksum = 0.0;
    for (long j = 0; j < ny; j++) residual += row_res[j];
    residual = sqrt(residual);
    for (size_t k = 0; k < (size_t)nx * ny; k++) checksum += result[k];
    double updates = (double)(nx - 2) * (double)(ny - 2) * (double)steps;
    double rate = updates > 0 && wall > 0 ? updates / wall : 0.0;

    write_field(out, &f, result);
    if (metrics) {
        char tmp[4200];
        FILE *fp = open_output(metrics, tmp, sizeof tmp);
        fprintf(fp,
                "{\"kernel\":\"heat-openmp\",\"impl\":\"openmp\",\"nx\":%ld,\"ny\":%ld,\"steps\":%ld,"
                "\"alpha\":%.17g,\"processes\":1,\"threads\":%d,\"wall_s\":%.17g,\"cell_updates_per_s\":%.17g,"
                "\"residual\":%.17g,\"checksum\":%.17g}\n",
                nx, ny, steps, alpha, threads, wall, rate, residual, checksum);
        close_output(fp, tmp, metrics);
    }
    printf("heat: %ld x %ld, %ld steps, alpha %g, %d threads: %.4f s, %.3e cell updates/s, "
           "residual %.6e, checksum %.10e\n",
           nx, ny, steps, alpha, threads, wall, rate, residual, checksum);
    free(f.t);
    free(other);
    free(row_res);
    return 0;
}
