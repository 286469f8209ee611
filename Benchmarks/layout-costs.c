// What candidate layouts of the cpu_flags word cost per user round trip (exit + entry)
// on this machine, back to back, in C so that nothing but the accesses is measured.
//   gcc -O2 -o /tmp/layout-costs Benchmarks/layout-costs.c && /tmp/layout-costs
#include <stdio.h>
#include <stdint.h>
#include <time.h>
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec * 1e9 + t.tv_nsec; }
static volatile uint64_t w[8] __attribute__((aligned(64)));   /* w[0] the word, w[3] a private copy */
#define UNIT (1ull << 40)                                      /* counter step, as in CPUWord */
int main(void) {
    const long n = 50000000;
    uint64_t acc = 0;
    for (int rep = 0; rep < 3; rep++) {
        double t0 = now();
        for (long i = 0; i < n; i++) {   /* hand-written: store USER, xchg KERNEL */
            __atomic_store_n(&w[0], ((uint64_t)i << 40) | 1, __ATOMIC_RELEASE);
            acc |= __atomic_exchange_n(&w[0], (uint64_t)i << 40, __ATOMIC_ACQ_REL);
        }
        double t1 = now();
        printf("store64 + xchg                          %.2f ns\n", (t1 - t0) / n);
        t0 = now();
        for (long i = 0; i < n; i++) {   /* exit stores the mode byte only; entry xadd */
            __atomic_store_n((volatile uint8_t *)&w[0], 1, __ATOMIC_RELEASE);
            acc |= __atomic_fetch_add(&w[0], UNIT - 1, __ATOMIC_ACQ_REL);
        }
        t1 = now();
        printf("store8 (mode byte) + xadd               %.2f ns\n", (t1 - t0) / n);
        t0 = now();
        for (long i = 0; i < n; i++) {   /* exit reads the word for its counter */
            uint64_t v = __atomic_load_n(&w[0], __ATOMIC_RELAXED);
            __atomic_store_n(&w[0], (v & ~0xffull) | 1, __ATOMIC_RELEASE);
            acc |= __atomic_fetch_add(&w[0], UNIT - 1, __ATOMIC_ACQ_REL);
        }
        t1 = now();
        printf("load word + store64 + xadd              %.2f ns\n", (t1 - t0) / n);
        t0 = now();
        for (long i = 0; i < n; i++) {   /* what the core does: private counter copy */
            uint64_t c = w[3];
            __atomic_store_n(&w[0], (c & ~0xffull) | 1, __ATOMIC_RELEASE);
            uint64_t o = __atomic_fetch_add(&w[0], UNIT - 1, __ATOMIC_ACQ_REL);
            acc |= o;
            w[3] = o + UNIT - 1;
        }
        t1 = now();
        printf("load copy + store64 + xadd + store copy %.2f ns\n\n", (t1 - t0) / n);
    }
    // acc only keeps the compiler from dropping the loops; a volatile sink does that
    // without making it the exit status (which must say "ran", 0).
    volatile uint64_t sink = acc;
    (void)sink;
    return 0;
}
