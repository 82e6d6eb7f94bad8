/*
 * mpibench.c - MPI point-to-point and collective bandwidth/latency kernel (after the OSU
 * micro-benchmarks' osu_latency, osu_bw-style ping-pong and osu_allreduce).
 *
 *   ping-pong  rank 0 and rank size/2 (on another node when ranks are placed node by node) bounce a
 *              message of each size; one-way latency = round trip / 2, bandwidth = bytes / one-way time
 *   allreduce  every rank, MPI_Allreduce(MPI_SUM) of doubles of each size; the time of a call is the
 *              slowest rank's; "bus bandwidth" = 2 (n-1)/n x bytes / time (what a ring algorithm moves)
 *
 * Sizes grow by 4x: ping-pong from 1 byte, allreduce from 8 bytes (one double), up to --max-bytes.
 * Every size up to 64 KiB runs --iters iterations; larger ones fewer, so each moves about the same
 * bytes (iters x 65536 / bytes, at least 10); each after an untimed warm-up of a tenth of that.
 *
 * Validation: the ping-pong payload comes back byte for byte; every element of every allreduce
 * result is the exact sum (small integers in doubles). Exit status 2 if anything is wrong.
 *
 * The program's own timing, `wall_s` of the metrics: rank 0's MPI_Wtime from the barrier before the
 * first measurement to the barrier after the last (warm-ups included; MPI_Init and MPI_Finalize,
 * process start and wire-up, are not). That is the number to compare between ways of launching it.
 *
 * Output: a table on stdout, and with --metrics FILE a JSON object (see README.md).
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <mpi.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

enum { MAX_SIZES = 40, TAG = 17 };

static int rank = 0;

static void die(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "mpibench[%d]: ", rank);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    MPI_Abort(MPI_COMM_WORLD, 1);
    exit(1);
}

static void usage(FILE *f) {
    fputs("usage: mpibench [--max-bytes N] [--iters N] [--metrics FILE]\n"
          "  --max-bytes N   largest message, bytes (default 4194304; 8..1073741824)\n"
          "  --iters N       iterations of messages up to 64 KiB (default 1000; 10..1000000); larger\n"
          "                  ones get iters x 65536 / bytes, at least 10\n"
          "  --metrics FILE  metrics as JSON (written by rank 0)\n"
          "Needs at least 2 ranks.\n",
          f);
}

static long iters_for(long iters, long bytes) {
    long n = bytes <= 65536 ? iters : iters * 65536 / bytes;
    return n < 10 ? 10 : n;
}

/* Written to a temporary file renamed into place; missing parent directories are created. */
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

static unsigned char pattern(long i, long bytes) { return (unsigned char)((i * 7 + bytes) & 0xff); }

/* Appends to a growing JSON buffer. */
typedef struct {
    char *s;
    size_t len, cap;
} buf_t;

static void put(buf_t *b, const char *fmt, ...) {
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(b->s + b->len, b->cap - b->len, fmt, ap);
        va_end(ap);
        if (n < 0) die("format error");
        if ((size_t)n < b->cap - b->len) {
            b->len += (size_t)n;
            return;
        }
        b->cap = b->cap * 2 + (size_t)n;
        b->s = realloc(b->s, b->cap);
        if (!b->s) die("out of memory");
    }
}

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    int size = 1;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);

    long max_bytes = 4L << 20, iters = 1000;
    const char *metrics = NULL;
    for (int k = 1; k < argc; k++) {
        const char *o = argv[k];
        if (!strcmp(o, "-h") || !strcmp(o, "--help")) {
            if (rank == 0) usage(stdout);
            MPI_Finalize();
            return 0;
        }
        if (k + 1 >= argc) {
            if (rank == 0) usage(stderr);
            die("missing value for %s", o);
        }
        const char *v = argv[++k];
        if (!strcmp(o, "--metrics")) {
            metrics = v;
            continue;
        }
        char *end = NULL;
        errno = 0;
        long x = strtol(v, &end, 10);
        if (errno || end == v || *end) die("%s: not an integer: %s", o, v);
        if (!strcmp(o, "--max-bytes")) max_bytes = x;
        else if (!strcmp(o, "--iters")) iters = x;
        else {
            if (rank == 0) usage(stderr);
            die("unknown option %s", o);
        }
    }
    if (max_bytes < 8 || max_bytes > (1L << 30)) die("--max-bytes must be 8..1073741824: %ld", max_bytes);
    if (iters < 10 || iters > 1000000) die("--iters must be 10..1000000: %ld", iters);
    if (size < 2) die("needs at least 2 ranks (got %d)", size);
    const int peer = size / 2;

    char host[MPI_MAX_PROCESSOR_NAME] = {0}, peer_host[MPI_MAX_PROCESSOR_NAME] = {0};
    int len = 0;
    MPI_Get_processor_name(host, &len);
    /* Distinct hosts: rank 0 gathers every name. */
    char *names = rank == 0 ? calloc((size_t)size, MPI_MAX_PROCESSOR_NAME) : NULL;
    if (rank == 0 && !names) die("out of memory");
    MPI_Gather(host, MPI_MAX_PROCESSOR_NAME, MPI_CHAR, names, MPI_MAX_PROCESSOR_NAME, MPI_CHAR, 0, MPI_COMM_WORLD);
    int nodes = 0;
    if (rank == 0) {
        for (int r = 0; r < size; r++) {
            int seen = 0;
            for (int q = 0; q < r && !seen; q++) seen = !strcmp(names + (size_t)r * MPI_MAX_PROCESSOR_NAME, names + (size_t)q * MPI_MAX_PROCESSOR_NAME);
            nodes += !seen;
        }
        snprintf(peer_host, sizeof peer_host, "%s", names + (size_t)peer * MPI_MAX_PROCESSOR_NAME);
    }

    unsigned char *msg = malloc((size_t)max_bytes);
    double *send = malloc((size_t)max_bytes);
    double *recv = malloc((size_t)max_bytes);
    if (!msg || !send || !recv) die("out of memory");

    long pp_bytes[MAX_SIZES], pp_iters[MAX_SIZES], ar_bytes[MAX_SIZES], ar_iters[MAX_SIZES];
    double pp_s[MAX_SIZES], ar_s[MAX_SIZES];
    int npp = 0, nar = 0, bad = 0;

    MPI_Barrier(MPI_COMM_WORLD);
    const double t_start = MPI_Wtime();

    /* ---- ping-pong between rank 0 and rank `peer` */
    for (long bytes = 1; bytes <= max_bytes && npp < MAX_SIZES; bytes *= 4) {
        const long n = iters_for(iters, bytes), warm = n / 10 < 2 ? 2 : n / 10;
        if (rank == 0)
            for (long i = 0; i < bytes; i++) msg[i] = pattern(i, bytes);
        double t0 = 0.0;
        MPI_Barrier(MPI_COMM_WORLD);
        for (long it = -warm; it < n; it++) {
            if (it == 0) t0 = MPI_Wtime();
            if (rank == 0) {
                MPI_Send(msg, (int)bytes, MPI_BYTE, peer, TAG, MPI_COMM_WORLD);
                MPI_Recv(msg, (int)bytes, MPI_BYTE, peer, TAG, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
            } else if (rank == peer) {
                MPI_Recv(msg, (int)bytes, MPI_BYTE, 0, TAG, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
                MPI_Send(msg, (int)bytes, MPI_BYTE, 0, TAG, MPI_COMM_WORLD);
            }
        }
        const double t = MPI_Wtime() - t0;
        if (rank == 0)
            for (long i = 0; i < bytes; i++) bad += msg[i] != pattern(i, bytes);
        pp_bytes[npp] = bytes;
        pp_iters[npp] = n;
        pp_s[npp] = t;
        npp++;
    }
    MPI_Barrier(MPI_COMM_WORLD);
    const double t_pp = MPI_Wtime();

    /* ---- allreduce of doubles on every rank */
    const double expect_base = (double)size * (size + 1) / 2.0; /* sum of rank + 1 */
    for (long bytes = 8; bytes <= max_bytes && nar < MAX_SIZES; bytes *= 4) {
        const long count = bytes / 8, n = iters_for(iters, bytes), warm = n / 10 < 2 ? 2 : n / 10;
        for (long i = 0; i < count; i++) send[i] = (double)(rank + 1) + (double)(i % 3);
        double t0 = 0.0;
        MPI_Barrier(MPI_COMM_WORLD);
        for (long it = -warm; it < n; it++) {
            if (it == 0) t0 = MPI_Wtime();
            MPI_Allreduce(send, recv, (int)count, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
        }
        double t = MPI_Wtime() - t0, slowest = 0.0;
        MPI_Reduce(&t, &slowest, 1, MPI_DOUBLE, MPI_MAX, 0, MPI_COMM_WORLD);
        for (long i = 0; i < count; i++) bad += recv[i] != expect_base + (double)size * (double)(i % 3);
        ar_bytes[nar] = bytes;
        ar_iters[nar] = n;
        ar_s[nar] = slowest;
        nar++;
    }
    MPI_Barrier(MPI_COMM_WORLD);
    const double t_end = MPI_Wtime();

    int bad_all = 0;
    MPI_Allreduce(&bad, &bad_all, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);

    if (rank == 0) {
        const double wall = t_end - t_start, pp_total = t_pp - t_start, ar_total = t_end - t_pp;
        printf("mpibench: %d ranks on %d node(s); ping-pong rank 0 (%s) <-> rank %d (%s)\n", size, nodes, host, peer, peer_host);
        printf("%-10s %8s %12s %12s\n", "pingpong", "iters", "latency us", "MB/s");
        for (int j = 0; j < npp; j++) {
            const double one_way = pp_s[j] / (2.0 * (double)pp_iters[j]);
            printf("%-10ld %8ld %12.2f %12.1f\n", pp_bytes[j], pp_iters[j], one_way * 1e6, (double)pp_bytes[j] / one_way / 1e6);
        }
        printf("%-10s %8s %12s %12s\n", "allreduce", "iters", "us/call", "busbw MB/s");
        for (int j = 0; j < nar; j++) {
            const double per = ar_s[j] / (double)ar_iters[j];
            printf("%-10ld %8ld %12.2f %12.1f\n", ar_bytes[j], ar_iters[j], per * 1e6, 2.0 * (size - 1) / size * (double)ar_bytes[j] / per / 1e6);
        }
        printf("mpibench: measured %.4f s (ping-pong %.4f s, allreduce %.4f s), validation %s\n", wall, pp_total, ar_total,
               bad_all == 0 ? "passed" : "FAILED");
        if (metrics) {
            buf_t b = {malloc(4096), 0, 4096};
            if (!b.s) die("out of memory");
            put(&b,
                "{\"kernel\":\"mpibench\",\"ranks\":%d,\"nodes\":%d,\"peer\":%d,\"host\":\"%s\",\"peer_host\":\"%s\",\"valid\":%s,"
                "\"wall_s\":%.9g,\"pingpong_s\":%.9g,\"allreduce_s\":%.9g,\"pingpong\":[",
                size, nodes, peer, host, peer_host, bad_all == 0 ? "true" : "false", wall, pp_total, ar_total);
            for (int j = 0; j < npp; j++) {
                const double one_way = pp_s[j] / (2.0 * (double)pp_iters[j]);
                put(&b, "%s{\"bytes\":%ld,\"iters\":%ld,\"latency_us\":%.6g,\"mb_per_s\":%.6g}", j ? "," : "", pp_bytes[j], pp_iters[j],
                    one_way * 1e6, (double)pp_bytes[j] / one_way / 1e6);
            }
            put(&b, "],\"allreduce\":[");
            for (int j = 0; j < nar; j++) {
                const double per = ar_s[j] / (double)ar_iters[j];
                put(&b, "%s{\"bytes\":%ld,\"iters\":%ld,\"us\":%.6g,\"busbw_mb_per_s\":%.6g}", j ? "," : "", ar_bytes[j], ar_iters[j],
                    per * 1e6, 2.0 * (size - 1) / size * (double)ar_bytes[j] / per / 1e6);
            }
            put(&b, "]}\n");
            write_metrics(metrics, b.s);
            free(b.s);
        }
    }
    free(names);
    free(msg);
    free(send);
    free(recv);
    MPI_Finalize();
    return bad_all == 0 ? 0 : 2;
}
