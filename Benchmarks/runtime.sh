#!/usr/bin/env bash
# The runtime's costs side by side with what it stands for, in one run (Tools/RuntimeBench
# and Tools/peers/runtime_peers.c):
#   1. ns per user round trip: the runtime worker's enterUserStretch()+leaveUserStretch(),
#      the core's on HardwarePlatform, the hand-written store+exchange, a lock-xadd pair
#      (Swift and C), liburcu QSBR rcu_thread_offline()+rcu_thread_online() (library call
#      and inlined); instructions per round trip by callgrind where valgrind is installed
#   2. the requester's cost of rt.request: deferred vs signal round trip vs raw pthread_kill
#   3. rt.synchronize() vs liburcu QSBR synchronize_rcu(), same number of threads
#   4. oslat-style isolation per exit policy on CPU 1, then Debian's oslat on CPU 1
#
#   Benchmarks/runtime.sh                      everything, 5 s per isolation case (~1.5 min
#                                              after the first build)
#   Benchmarks/runtime.sh --seconds 10         isolation cases and oslat run 10 s each
#   Benchmarks/runtime.sh --seed 7             the isolation requester's random intervals
#   Benchmarks/runtime.sh --sync-workers 2     threads for section 3 (both sides)
#   Benchmarks/runtime.sh --no-callgrind       skip the instruction counts
#
# Needs root where liburcu-dev or rt-tests (oslat) is missing: it installs them with
# apt-get. Everything it writes stays in Benchmarks/.build/runtime-results (gitignored).
set -euo pipefail
cd "$(dirname "$0")"

seconds=5 seed=1 workers=1 callgrind=1
while [ $# -gt 0 ]; do
    case "$1" in
        --seconds) seconds=${2:?--seconds needs a value}; shift ;;
        --seed) seed=${2:?--seed needs a value}; shift ;;
        --sync-workers) workers=${2:?--sync-workers needs a value}; shift ;;
        --no-callgrind) callgrind=0 ;;
        -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
        *) echo "runtime.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
    esac
    shift
done
case "$seconds" in ''|*[!0-9]*) echo "runtime.sh: --seconds takes whole seconds (oslat's --duration does)" >&2; exit 2 ;; esac
if [ "$(nproc)" -lt 2 ]; then
    echo "runtime.sh: needs at least 2 CPUs (housekeeping on CPU 0, the worker on CPU 1); this machine has $(nproc)" >&2
    exit 1
fi

out=.build/runtime-results
mkdir -p "$out"

# Debian packages: liburcu-dev (the QSBR peer) and rt-tests (oslat), installed when
# missing, as root; a clear stop otherwise.
missing=()
[ -e /usr/include/urcu-qsbr.h ] || [ -e /usr/include/x86_64-linux-gnu/urcu-qsbr.h ] \
    || dpkg -s liburcu-dev > /dev/null 2>&1 || missing+=(liburcu-dev)
command -v oslat > /dev/null || missing+=(rt-tests)
[ "$callgrind" = 1 ] && ! command -v valgrind > /dev/null && missing+=(valgrind)
command -v gcc > /dev/null || missing+=(gcc)
if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" != 0 ]; then
        echo "runtime.sh: missing ${missing[*]}; run as root (it installs them with apt-get) or install them: apt-get install ${missing[*]}" >&2
        exit 1
    fi
    if ! command -v apt-get > /dev/null; then
        echo "runtime.sh: missing ${missing[*]} and no apt-get here to install them" >&2
        exit 1
    fi
    echo "(installing ${missing[*]} with apt-get)"
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"; } \
        > "$out/apt.log" 2>&1 || { cat "$out/apt.log" >&2; echo "runtime.sh: apt-get install ${missing[*]} failed (log: Benchmarks/$out/apt.log)" >&2; exit 1; }
fi
if [ "$(id -u)" != 0 ]; then
    echo "runtime.sh: oslat needs root (it locks its memory); run as root" >&2
    exit 1
fi

echo "== building (release) =="
swift build -c release --product runtime-bench > "$out/build.log" 2>&1 || {
    cat "$out/build.log" >&2
    echo "runtime.sh: swift build failed (log: Benchmarks/$out/build.log)" >&2
    exit 1
}
bin=$(swift build -c release --show-bin-path)/runtime-bench
gcc -O2 -Wall -o "$out/runtime-peers" Tools/peers/runtime_peers.c -lurcu-qsbr -lpthread
gcc -O2 -Wall -D_LGPL_SOURCE -o "$out/runtime-peers-inlined" Tools/peers/runtime_peers.c -lurcu-qsbr -lpthread

echo "== running: runtime-bench --json --seconds $seconds --seed $seed --sync-workers $workers, the C peers, oslat =="
"$bin" --json --seconds "$seconds" --seed "$seed" --sync-workers "$workers" > "$out/runtime-bench.json"
"$out/runtime-peers" --threads "$workers" --seconds 1 > "$out/peers.json"
"$out/runtime-peers-inlined" --threads "$workers" --seconds 1 > "$out/peers-inlined.json"
oslat --cpu-list 1 --duration "$seconds" --quiet --json="$out/oslat.json" > "$out/oslat.txt" 2>&1 || {
    cat "$out/oslat.txt" >&2
    echo "runtime.sh: oslat failed" >&2
    exit 1
}

# Instructions per round trip (callgrind; this kind of VM has no hardware counters):
# two lengths, so that the loop's entry and exit cancel out. valgrind 3.19 cannot read
# the toolchain's DWARF 5: the symbol table is enough.
: > "$out/instructions.txt"
if [ "$callgrind" = 1 ]; then
    objcopy --strip-debug "$bin" "$out/runtime-bench.nodebug"
    count() {  # kind, function-name fragment, round trips -> instructions inside the loop
        valgrind --tool=callgrind --callgrind-out-file="$out/callgrind.$1.$3" \
            "--toggle-collect=*$2*" "$out/runtime-bench.nodebug" count "$1" "$3" > /dev/null 2>&1
        awk '/^totals:/ { print $2 }' "$out/callgrind.$1.$3"
    }
    for k in runtime-strict:workerStretchRoundTrips core-strict:coreStrict hand-written:handWritten \
             lock-xadd-pair:lockXaddPairs runtime-lazy:workerStretchRoundTrips core-lazy:coreLazy; do
        kind=${k%%:*} fn=${k##*:}
        a=$(count "$kind" "$fn" 100000)
        b=$(count "$kind" "$fn" 200000)
        echo "$kind $(awk -v a="$a" -v b="$b" 'BEGIN { printf "%.1f", (b - a) / 100000 }')" >> "$out/instructions.txt"
        # Where they go: instructions per round trip by function (self cost).
        callgrind_annotate --inclusive=no "$out/callgrind.$kind.200000" 2> /dev/null \
            | awk -v k="$kind" '/^ *[0-9,]+ \(/ && $0 !~ /PROGRAM TOTALS/ { n = $1; gsub(",", "", n); f = ""
                for (i = 2; i <= NF; i++) if ($i ~ /^\?\?\?:/) f = substr($i, 5)
                if (f != "") printf "%s@%s %.1f\n", k, f, n / 200000 }' \
            >> "$out/instructions.txt"
    done
fi

python3 - "$out" "$seconds" "$seed" "$workers" <<'PY'
import json, subprocess, sys
out, seconds, seed, workers = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
rb = json.load(open(f"{out}/runtime-bench.json"))
pc = json.load(open(f"{out}/peers.json"))
pi = json.load(open(f"{out}/peers-inlined.json"))
osl = json.load(open(f"{out}/oslat.json"))
print(f"\nruntime-bench seed {rb['seed']}, {rb['cpus']} CPUs; command: Benchmarks/runtime.sh --seconds {seconds} --seed {seed} --sync-workers {workers}")

print("\n== 1. user round trip (ns, medians; Swift: 15 runs of 1e6 on CPU 0; C: 11 runs of 2e6 on CPU 0) ==")
rows = [(k, v["ns"]) for k, v in rb["round trips"]["loops"].items()]
rows.append(("C lock-xadd pair", pc["round trips"]["lock-xadd pair"]))
rows.append(("C urcu-qsbr offline+online (call)", pc["round trips"]["urcu-qsbr offline+online (call)"]))
rows.append(("C urcu-qsbr offline+online (inlined)", pi["round trips"]["urcu-qsbr offline+online (inlined)"]))
rows.append(("C urcu-qsbr quiescent_state (call)", pc["round trips"]["urcu-qsbr quiescent_state (call)"]))
hand = dict(rows)["hand-written"]
ins = {}
breakdown = {}
try:
    for line in open(f"{out}/instructions.txt"):
        k, v = line.split()
        if "@" in k:
            kind, fn = k.split("@", 1)
            breakdown.setdefault(kind, []).append((fn, float(v)))
        else:
            ins[k] = float(v)
except FileNotFoundError:
    pass
print(f'{"round trip":40} {"ns":>8} {"x hand":>7} {"instr":>7} {"x hand":>7}')
for k, v in rows:
    i = ins.get(k)
    ih = ins.get("hand-written")
    print(f"{k:40} {v:8.2f} {v / hand:7.2f} {i if i is not None else '-':>7} {f'{i / ih:.2f}' if i and ih else '-':>7}")
print("goal (issue): core-strict <= 1.20 x hand-written")
if breakdown:
    print("instructions per round trip by function (callgrind self cost):")
    for kind in ("runtime-strict", "core-strict", "hand-written"):
        for fn, v in breakdown.get(kind, []):
            if v >= 0.5:
                name = subprocess.run(["swift", "demangle", "--compact", fn], capture_output=True, text=True).stdout.strip() or fn
                print(f"  {kind:15} {v:7.1f}  {name[:110]}")

print("\n== 2. remote request: the requester's ns per request (worker on CPU 1) ==")
rq = rb["requests"]
d = rq["deferred (worker in its user stretch)"]
s = rq["signal (worker in its kernel stretch)"]
raw = pc["signal round trip"]["ns"]
print(f'{"case":48} {"ns":>9} {"x deferred":>10} {"signals":>8} {"requests":>9} {"work runs":>9}')
print(f'{"rt.request, worker in its user stretch":48} {d["ns per request"]:9.1f} {1:10.1f} {d["routes interrupt (signals)"]:8} {d["requests"]:9} {d["work runs"]:9}')
print(f'{"rt.request, worker in its kernel stretch":48} {s["ns per request"]:9.1f} {s["ns per request"] / d["ns per request"]:10.1f} {s["routes interrupt (signals)"]:8} {s["requests"]:9} {s["work runs"]:9}')
print(f'{"C raw pthread_kill round trip":48} {raw:9.1f} {raw / d["ns per request"]:10.1f}')
print(f'goal: deferred >= 50x cheaper than the signal round trip: {s["ns per request"] / d["ns per request"]:.1f}x '
      f'({"met" if s["ns per request"] / d["ns per request"] >= 50 else "NOT met"}); rt signal / raw pthread_kill: {s["ns per request"] / raw:.2f}')

print(f"\n== 3. grace period latency (ns), {workers} worker/reader thread(s) on CPUs 1.. ==")
print(f'{"case":46} {"calls":>9} {"mean":>8} {"p50":>8} {"p99":>8} {"max":>9}')
for k, v in rb["synchronize"].items():
    print(f'{"rt." + k:46} {v["calls"]:9} {v["mean"]:8.0f} {v["p50"]:8} {v["p99"]:8} {v["max"]:9}')
for k, v in pc["synchronize"].items():
    print(f'{"C " + k:46} {v["calls"]:9} {v["mean"]:8.0f} {v["p50"]:8.0f} {v["p99"]:8.0f} {v["max"]:9.0f}')
a = rb["synchronize"]["synchronize, user stretch"]["p50"]; b = pc["synchronize"]["synchronize_rcu offline"]["p50"]
c = rb["synchronize"]["synchronize, round trips"]["p50"]; e = pc["synchronize"]["synchronize_rcu offline-online-loop"]["p50"]
print(f"ratio rt / urcu (p50): user stretch vs offline {a / b:.2f}; round trips vs offline-online loop {c / e:.2f}")

iso = rb["isolation"]
print(f"\n== 4. isolation on CPU {iso['cpu']}: gaps between clock reads, requests at {iso['rate per s']:.0f}/s for {seconds} s, "
      f"worker leaves its user stretch every {iso['leave every ms']:.0f} ms, seed {iso['seed']} ==")
print(f'{"case":16} {"requests":>8} {"signals":>8} {"deferred":>8} {"p50 ns":>7} {"p99.9 ns":>9} {"p99.99 ns":>10} {"max us":>9} {">10us":>6} {">100us":>7}')
for k, v in iso["cases"].items():
    print(f'{k:16} {v["requests"]:8} {v["signals (routes interrupt)"]:8} {v["routes deferred"]:8} {v["p50 gap ns"]:7} {v["p99.9 gap ns"]:9} '
          f'{v["p99.99 gap ns"]:10} {v["max gap ns"] / 1000:9.1f} {v["gaps over 10 us"]:6} {v["gaps over 100 us"]:7}')
t = osl["thread"]["0"]
hist = {int(k): v for k, v in t["histogram"].items()}
total = sum(hist.values())
over10 = sum(v for k, v in hist.items() if k > 10)
print(f'{"oslat (rt-tests)":16} {"":8} {"":8} {"":8} {"":7} {"":9} {"":10} {t["max"]:9.1f} {over10:6} {"":>7}   '
      f'(min {t["min"]} us, avg {t["avg"]:.3f} us, {total} loops; its buckets are 1 us wide, the last one "32 us and over")')
PY
