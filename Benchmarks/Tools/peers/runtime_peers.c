// The C peers of runtime-bench (Benchmarks/runtime.sh builds and runs it): an extended
// copy of shared/tools/peer_costs.c. Prints one JSON object on stdout, all in ns:
//   - lock-xadd pair (context tracking's round trip: two atomic_add_return),
//   - liburcu QSBR rcu_thread_offline()+rcu_thread_online() (the EQS exit/enter analog)
//     and rcu_quiescent_state(): library calls, or inlined when built with
//     -D_LGPL_SOURCE (runtime.sh builds both),
//   - raw signal round trip: pthread_kill to a pinned spinning thread whose handler
//     bumps a counter, the sender spinning until it sees it (the IPI analog),
//   - synchronize_rcu() latency with THREADS reader threads, each pinned (CPUs 1.. in
//     turn) and either offline (spinning in an extended quiescent state: the workers'
//     user stretch), looping offline+online (the workers' round trips), or online
//     calling rcu_quiescent_state() in a loop (classic QSBR).
//
//   gcc -O2 runtime_peers.c -lurcu-qsbr -lpthread -o runtime-peers
//   ./runtime-peers [--threads N] [--seconds S]      (defaults 1 and 1)
//
// Nothing is randomized here. Needs Debian's liburcu-dev.
#define _GNU_SOURCE
#define RCU_QSBR
#include <urcu/urcu-qsbr.h>
#define rcu_register_thread urcu_qsbr_register_thread
#define rcu_unregister_thread urcu_qsbr_unregister_thread
#define rcu_thread_offline urcu_qsbr_thread_offline
#define rcu_thread_online urcu_qsbr_thread_online
#define rcu_quiescent_state urcu_qsbr_quiescent_state
#define synchronize_rcu urcu_qsbr_synchronize_rcu
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#ifdef _LGPL_SOURCE
#define URCU_LINKAGE "inlined"
#else
#define URCU_LINKAGE "call"
#endif

static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec * 1e9 + t.tv_nsec; }
static void pin(int c) { cpu_set_t s; CPU_ZERO(&s); CPU_SET(c, &s); sched_setaffinity(0, sizeof s, &s); }
static int ncpu;
static int reader_cpu(int i) { return ncpu > 1 ? 1 + i % (ncpu - 1) : 0; }

static int cmp_double(const void *a, const void *b) { double x = *(const double *)a, y = *(const double *)b; return (x > y) - (x < y); }

// ---- round trips: median of RUNS runs of N
#define RUNS 11
static double median(double *xs, int n) { qsort(xs, n, sizeof *xs, cmp_double); return xs[n / 2]; }

static double xadd_pairs(long n) {
    static _Atomic long w = 0; long sink = 0;
    double t0 = now();
    for (long i = 0; i < n; i++) { sink += atomic_fetch_add(&w, 1); sink += atomic_fetch_add(&w, 1); }
    double t1 = now();
    __asm__ volatile("" :: "r"(sink));
    return (t1 - t0) / n;
}
static double urcu_pairs(long n) {
    double t0 = now();
    for (long i = 0; i < n; i++) { rcu_thread_offline(); rcu_thread_online(); }
    return (now() - t0) / n;
}
static double urcu_qs(long n) {
    double t0 = now();
    for (long i = 0; i < n; i++) rcu_quiescent_state();
    return (now() - t0) / n;
}

// ---- raw signal round trip
static _Atomic long acked;
static volatile int stop;
static void handler(int sig) { (void)sig; atomic_fetch_add(&acked, 1); }
static void *victim(void *a) { (void)a; pin(reader_cpu(0)); while (!stop) {} return 0; }

// ---- synchronize_rcu with readers
enum mode { OFFLINE, ROUNDTRIPS, QS_LOOP };
static const char *mode_name[] = { "offline", "offline-online-loop", "quiescent-state-loop" };
static volatile int readers_stop;
static _Atomic int readers_ready;
struct reader { int cpu; enum mode mode; };
static void *reader(void *arg) {
    struct reader *r = arg;
    pin(r->cpu);
    rcu_register_thread();
    atomic_fetch_add(&readers_ready, 1);
    switch (r->mode) {
    case OFFLINE: rcu_thread_offline(); while (!readers_stop) {} rcu_thread_online(); break;
    case ROUNDTRIPS: while (!readers_stop) { rcu_thread_offline(); rcu_thread_online(); } break;
    case QS_LOOP: while (!readers_stop) rcu_quiescent_state(); break;
    }
    rcu_unregister_thread();
    return 0;
}
static void sync_bench(int threads, enum mode mode, double seconds, int first) {
    pthread_t th[64]; struct reader rs[64];
    readers_stop = 0; readers_ready = 0;
    for (int i = 0; i < threads; i++) { rs[i].cpu = reader_cpu(i); rs[i].mode = mode; pthread_create(&th[i], 0, reader, &rs[i]); }
    while (readers_ready < threads) {}
    usleep(20000);
    int cap = 2000000, n = 0;
    double *lat = malloc(cap * sizeof *lat);
    double end = now() + seconds * 1e9, t;
    for (int i = 0; i < 100; i++) synchronize_rcu();  // warm-up
    while ((t = now()) < end && n < cap) { synchronize_rcu(); lat[n++] = now() - t; }
    readers_stop = 1;
    for (int i = 0; i < threads; i++) pthread_join(th[i], 0);
    double sum = 0; for (int i = 0; i < n; i++) sum += lat[i];
    qsort(lat, n, sizeof *lat, cmp_double);
    printf("%s    \"synchronize_rcu %s\": {\"threads\": %d, \"calls\": %d, \"mean\": %.1f, \"p50\": %.1f, \"p99\": %.1f, \"max\": %.1f}",
           first ? "" : ",\n", mode_name[mode], threads, n, sum / n, lat[n / 2], lat[(long)(n * 0.99)], lat[n - 1]);
    free(lat);
}

int main(int argc, char **argv) {
    int threads = 1; double seconds = 1;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--threads") && i + 1 < argc) threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--seconds") && i + 1 < argc) seconds = atof(argv[++i]);
        else { fprintf(stderr, "usage: %s [--threads N] [--seconds S]\n", argv[0]); return 2; }
    }
    ncpu = (int)sysconf(_SC_NPROCESSORS_ONLN);
    if (threads < 1 || threads > 64) { fprintf(stderr, "--threads: 1 to 64\n"); return 2; }
    pin(0);
    printf("{\n  \"urcu_linkage\": \"%s\",\n  \"cpus\": %d,\n", URCU_LINKAGE, ncpu);

    long n = 2000000; double a[RUNS], b[RUNS], c[RUNS];
    rcu_register_thread();
    xadd_pairs(n / 10); urcu_pairs(n / 10);  // warm-up
    for (int r = 0; r < RUNS; r++) { a[r] = xadd_pairs(n); b[r] = urcu_pairs(n); c[r] = urcu_qs(n); }
    rcu_unregister_thread();
    printf("  \"round trips\": {\"lock-xadd pair\": %.3f, \"urcu-qsbr offline+online (%s)\": %.3f, \"urcu-qsbr quiescent_state (%s)\": %.3f, \"runs\": %d, \"per run\": %ld},\n",
           median(a, RUNS), URCU_LINKAGE, median(b, RUNS), URCU_LINKAGE, median(c, RUNS), RUNS, n);

    struct sigaction sa; memset(&sa, 0, sizeof sa); sa.sa_handler = handler; sigaction(SIGUSR1, &sa, 0);
    pthread_t th; pthread_create(&th, 0, victim, 0); usleep(100000);
    long m = 100000;
    for (long i = 0; i < 1000; i++) { long want = atomic_load(&acked) + 1; pthread_kill(th, SIGUSR1); while (atomic_load(&acked) < want) {} }
    long base = atomic_load(&acked);
    double t0 = now();
    for (long i = 0; i < m; i++) { pthread_kill(th, SIGUSR1); while (atomic_load(&acked) <= base + i) {} }
    double t1 = now();
    stop = 1; pthread_join(th, 0);
    printf("  \"signal round trip\": {\"ns\": %.1f, \"count\": %ld},\n", (t1 - t0) / m, m);

    printf("  \"synchronize\": {\n");
    sync_bench(threads, OFFLINE, seconds, 1);
    sync_bench(threads, ROUNDTRIPS, seconds, 0);
    sync_bench(threads, QS_LOOP, seconds, 0);
    printf("\n  }\n}\n");
    return 0;
}
