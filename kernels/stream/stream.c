/*
 * stream.c - a STREAM-like memory-bandwidth kernel (after John McCalpin's STREAM), OpenMP.
 *
 *   copy   c[i] = a[i]                 2 arrays moved (16 bytes per element)
 *   scale  b[i] = s * c[i]             2 arrays moved (16 bytes per element)
 *   add    c[i] = a[i] + b[i]          3 arrays moved (24 bytes per element)
 *   triad  a[i] = b[i] + s * c[i]      3 arrays moved (24 bytes per element)
 *
 * STREAM's rules, followed here:
 *   - each array is much larger than the last-level cache: the default is the larger of 64 MiB and
 *     4 x the last-level cache that sysconf reports (rounded up to 64 MiB) (a warning is printed if --mib asks for less);
 *   - the arrays are first touched by the same OpenMP threads and static schedule as the kernels, so
 *     on a NUMA machine each page lives next to the thread that streams it;
 *   - every op is timed separately, NTIMES times; the first iteration is excluded (page faults,
 *     thread start-up) and the best (minimum) time of the rest is reported, with the average and max;
 *   - the bytes counted are the bytes the op must read and write (no write-allocate traffic);
 *   - the results are validated against the same recurrence computed on scalars.
 *
 * Output: one line per op on stdout, and with --metrics FILE a JSON object with GB/s (10^9 bytes/s)
 * per op, the best/avg/max times and the program's own timing (`wall_s`: the timed loop alone,
 * `total_s`: allocation, first touch, loop and validation).
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <float.h>
#include <math.h>
#include <omp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

enum { NOPS = 4, ALIGN = 4096 };
static const char *const NAMES[NOPS] = {"copy", "scale", "add", "triad"};
static const double WORDS[NOPS] = {2.0, 2.0, 3.0, 3.0}; /* arrays moved per element */
static const double SCALAR = 3.0;

static void die(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fputs("stream: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(1);
}

static void usage(FILE *f) {
    fputs("usage: stream [--mib M] [--ntimes N] [--metrics FILE]\n"
          "  --mib M         size of EACH of the 3 arrays, MiB (default: max(64, 4 x last-level cache))\n"
          "  --ntimes N      iterations of the 4 ops; the first is not counted (default 10, 2..100)\n"
          "  --metrics FILE  metrics as JSON\n", f);
}

static double now(void) { return omp_get_wtime(); }

static long llc_bytes(void) {
    long c = -1;
#ifdef _SC_LEVEL3_CACHE_SIZE
    c = sysconf(_SC_LEVEL3_CACHE_SIZE);
#endif
#ifdef _SC_LEVEL2_CACHE_SIZE
    if (c <= 0) c = sysconf(_SC_LEVEL2_CACHE_SIZE);
#endif
    return c > 0 ? c : 0;
}

static double *alloc_array(size_t n) {
    void *p = NULL;
    if (posix_memalign(&p, ALIGN, n * sizeof(double)) != 0) die("cannot allocate %zu MiB", n * sizeof(double) >> 20);
    return p;
}

/* Outputs go to a temporary file renamed into place; missing parent directories are created. */
static void write_metrics(const char *path, const char *json) {
    char dir[4096], tmp[4200];
    if (snprintf(dir, sizeof dir, "%s", path) >= (int)sizeof dir) die("path too long: %s", path);
    for (char *p = dir + 1; *p; p++) {
        if (*p != '/') continue;
        *p = '\0';
        if (mkdir(dir, 0777) != 0 && errno != EEXIST) die("cannot create directory %s: %s", dir, strerror(errno));
        *p = '/';
    }
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    FILE *fp = fopen(tmp, "wb");
    if (!fp) die("cannot write %s: %s", tmp, strerror(errno));
    fputs(json, fp);
    if (ferror(fp) | fclose(fp)) die("write error on %s", tmp);
    if (rename(tmp, path) != 0) die("cannot rename %s to %s: %s", tmp, path, strerror(errno));
}

/* Average |x - expected| over the array, relative to expected (an OpenMP reduction: its order may
 * change the last bits of the sum, far below the tolerance). */
static double avg_rel_err(const double *x, size_t n, double expected) {
    double err = 0.0;
#pragma omp parallel for schedule(static) reduction(+ : err)
    for (size_t i = 0; i < n; i++) err += fabs(x[i] - expected);
    return err / (double)n / fabs(expected);
}

int main(int argc, char **argv) {
    long mib = 0, ntimes = 10;
    const char *metrics = NULL;
    for (int k = 1; k < argc; k++) {
        const char *o = argv[k];
        if (!strcmp(o, "-h") || !strcmp(o, "--help")) {
            usage(stdout);
            return 0;
        }
        if (k + 1 >= argc) {
            usage(stderr);
            die("missing value for %s", o);
        }
        const char *v = argv[++k];
        char *end = NULL;
        if (!strcmp(o, "--metrics")) {
            metrics = v;
            continue;
        }
        errno = 0;
        long x = strtol(v, &end, 10);
        if (errno || end == v || *end) die("%s: not an integer: %s", o, v);
        if (!strcmp(o, "--mib")) mib = x;
        else if (!strcmp(o, "--ntimes")) ntimes = x;
        else {
            usage(stderr);
            die("unknown option %s", o);
        }
    }
    const long llc = llc_bytes();
    if (mib == 0) {
        mib = (4 * llc + (64L << 20) - 1) / (64L << 20) * 64; /* 4 x LLC, rounded up to 64 MiB */
        if (mib < 64) mib = 64;
    }
    if (mib < 1 || mib > (1L << 20)) die("--mib out of range: %ld", mib);
    if (ntimes < 2 || ntimes > 100) die("--ntimes must be 2..100: %ld", ntimes);
    if (llc > 0 && mib * (1L << 20) < 4 * llc)
        fprintf(stderr, "stream: warning: %ld MiB arrays are less than 4 x the %ld MiB last-level cache\n", mib, llc >> 20);

    const double t_start = now();
    const size_t n = (size_t)mib * (1u << 20) / sizeof(double);
    double *restrict a = alloc_array(n);
    double *restrict b = alloc_array(n);
    double *restrict c = alloc_array(n);
    int threads = 1;
    /* First touch in parallel, by the same static schedule as the kernels. */
#pragma omp parallel
    {
#pragma omp single
        threads = omp_get_num_threads();
#pragma omp for schedule(static)
        for (size_t i = 0; i < n; i++) {
            a[i] = 1.0;
            b[i] = 2.0;
            c[i] = 0.0;
        }
    }
    /* STREAM does this too: a first pass that changes a, so the timed loop starts from touched pages. */
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) a[i] = 2.0 * a[i];

    double *times = calloc((size_t)ntimes * NOPS, sizeof *times);
    if (!times) die("out of memory");
    const double t_loop = now();
    for (long k = 0; k < ntimes; k++) {
        double t;
        t = now();
#pragma omp parallel for schedule(static)
        for (size_t i = 0; i < n; i++) c[i] = a[i];
        times[k * NOPS + 0] = now() - t;
        t = now();
#pragma omp parallel for schedule(static)
        for (size_t i = 0; i < n; i++) b[i] = SCALAR * c[i];
        times[k * NOPS + 1] = now() - t;
        t = now();
#pragma omp parallel for schedule(static)
        for (size_t i = 0; i < n; i++) c[i] = a[i] + b[i];
        times[k * NOPS + 2] = now() - t;
        t = now();
#pragma omp parallel for schedule(static)
        for (size_t i = 0; i < n; i++) a[i] = b[i] + SCALAR * c[i];
        times[k * NOPS + 3] = now() - t;
    }
    const double wall = now() - t_loop;

    /* Validation: the same recurrence on scalars (every element of an array holds the same value). */
    double ea = 2.0, eb = 2.0, ec = 0.0;
    for (long k = 0; k < ntimes; k++) {
        ec = ea;
        eb = SCALAR * ec;
        ec = ea + eb;
        ea = eb + SCALAR * ec;
    }
    const double errs[3] = {avg_rel_err(a, n, ea), avg_rel_err(b, n, eb), avg_rel_err(c, n, ec)};
    const double eps = 1e-13;
    const int valid = errs[0] <= eps && errs[1] <= eps && errs[2] <= eps;
    const double total = now() - t_start;

    double best[NOPS], avg[NOPS], worst[NOPS], gbs[NOPS];
    for (int j = 0; j < NOPS; j++) {
        best[j] = DBL_MAX;
        avg[j] = 0.0;
        worst[j] = 0.0;
        for (long k = 1; k < ntimes; k++) { /* the first iteration is not counted */
            const double t = times[k * NOPS + j];
            best[j] = t < best[j] ? t : best[j];
            worst[j] = t > worst[j] ? t : worst[j];
            avg[j] += t;
        }
        avg[j] /= (double)(ntimes - 1);
        gbs[j] = WORDS[j] * sizeof(double) * (double)n / best[j] / 1e9;
    }

    printf("stream: 3 x %ld MiB arrays (%zu doubles), %d threads, %ld iterations (first not counted), LLC %ld MiB\n", mib, n,
           threads, ntimes, llc >> 20);
    printf("%-6s %12s %12s %12s %12s\n", "op", "best GB/s", "best s", "avg s", "max s");
    for (int j = 0; j < NOPS; j++) printf("%-6s %12.3f %12.6f %12.6f %12.6f\n", NAMES[j], gbs[j], best[j], avg[j], worst[j]);
    printf("stream: timed loop %.4f s, total %.4f s, validation %s (avg rel err a %.2e b %.2e c %.2e)\n", wall, total,
           valid ? "passed" : "FAILED", errs[0], errs[1], errs[2]);

    if (metrics) {
        char json[4096];
        int len = snprintf(json, sizeof json,
                           "{\"kernel\":\"stream\",\"array_mib\":%ld,\"elements\":%zu,\"threads\":%d,\"ntimes\":%ld,"
                           "\"llc_bytes\":%ld,\"valid\":%s,\"wall_s\":%.9g,\"total_s\":%.9g,\"ops\":{",
                           mib, n, threads, ntimes, llc, valid ? "true" : "false", wall, total);
        for (int j = 0; j < NOPS; j++)
            len += snprintf(json + len, sizeof json - (size_t)len,
                            "%s\"%s\":{\"gb_per_s\":%.6g,\"best_s\":%.9g,\"avg_s\":%.9g,\"max_s\":%.9g,\"bytes\":%.17g}",
                            j ? "," : "", NAMES[j], gbs[j], best[j], avg[j], worst[j], WORDS[j] * sizeof(double) * (double)n);
        snprintf(json + len, sizeof json - (size_t)len, "}}\n");
        write_metrics(metrics, json);
    }
    free(times);
    free(a);
    free(b);
    free(c);
    return valid ? 0 : 2;
}
