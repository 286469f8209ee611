#!/usr/bin/env bash
# Runs the cpuflags benchmarks (ordo-one/benchmark, release build) and prints ns per
# user round trip for each round-trip benchmark, the ratio core (strict) / hand-written,
# and, where valgrind is installed, instructions per round trip counted by callgrind
# (this kind of VM has no hardware performance counters, so the benchmark's own
# `instructions` metric stays empty). Then the explorer's throughput: the suite's
# "explorer three-cpus SC/TSO" benchmarks (one exhaustive exploration per iteration),
# and the median states/second of three runs of Tools/ExplorerThroughput per model.
#
#   Benchmarks/run.sh                    everything (about a minute after the first build)
#   Benchmarks/run.sh --no-callgrind     skip the instruction counts
#   Benchmarks/run.sh --no-explorer      skip the explorer-throughput section
#   Benchmarks/run.sh --runtime          then Benchmarks/runtime.sh: CPUFlagsRuntime's costs
#                                        beside liburcu QSBR, signals and oslat (see there)
#   Benchmarks/run.sh --filter '.*strict.*'  further arguments go to `swift package benchmark`
#                                        (its --filter is a regex the whole name must match)
#
# Everything it builds or writes stays in Benchmarks/.build (gitignored). For the
# plugin's own tables: cd Benchmarks && swift package benchmark
set -euo pipefail
cd "$(dirname "$0")"

callgrind=1
explorer=1
runtime=0
args=()
for a in "$@"; do
    case "$a" in
        --no-callgrind) callgrind=0 ;;
        --no-explorer) explorer=0 ;;
        --runtime) runtime=1 ;;
        *) args+=("$a") ;;
    esac
done

out=.build/benchmark-results
mkdir -p "$out"

build_product() {  # product: build it in release mode, or show its log and stop
    swift build -c release --product "$1" > "$out/$1-build.log" 2>&1 || {
        cat "$out/$1-build.log" >&2
        exit 1
    }
}

echo "== swift package benchmark (release) =="
# JMH export to stdout: the only format that keeps sub-nanosecond precision for a
# per-round-trip figure (wall clock per iteration of 1,000,000 round trips, in µs).
swift package benchmark --no-progress --format jmh --path stdout ${args[@]+"${args[@]}"} \
    > "$out/run.txt" 2> "$out/build.log" || {
    cat "$out/build.log" "$out/run.txt" >&2
    echo "benchmark run failed (log: Benchmarks/$out/)" >&2
    exit 1
}
grep -m1 '^\[{' "$out/run.txt" > "$out/results.jmh.json" || {
    cat "$out/run.txt" >&2
    echo "no results in the benchmark output" >&2
    exit 1
}

python3 - "$out/results.jmh.json" <<'EOF'
import json, sys
rows = {}
explorer = {}
for b in json.load(open(sys.argv[1])):
    name = b["benchmark"].split(".", 3)[-1].replace("_", " ")
    m = b["secondaryMetrics"]
    wall = m["Time (wall clock)"]
    p = wall["scorePercentiles"]
    if name.startswith("explorer "):
        # One exploration per iteration; wall clock in µs. (The JMH exporter carries
        # secondary metrics over from one benchmark to the next, so the custom ones are
        # read only here, where they were recorded.)
        c = lambda k: m[k]["scorePercentiles"]["50.0"]
        explorer[name] = (p["50.0"] / 1e6, int(c("states")), int(c("transitions")),
                          c("states per second"), len(wall["rawData"][0]))
        continue
    # µs per iteration of 1,000,000 round trips == ns per 1,000 round trips.
    per = lambda us: us / 1000.0
    rows[name] = (per(p["0.0"]), per(p["50.0"]), per(p["90.0"]), len(wall["rawData"][0]))
if rows:
    print(f'{"benchmark":44} {"p0":>8} {"p50":>8} {"p90":>8}  samples  (ns per round trip)')
order = ["strict", "hand-written", "lazy"]
key = lambda k: next((i for i, w in enumerate(order) if w in k), len(order))
for name, (p0, p50, p90, n) in sorted(rows.items(), key=lambda kv: key(kv[0])):
    print(f"{name:44} {p0:8.2f} {p50:8.2f} {p90:8.2f}  {n:7}")
core = next((v for k, v in rows.items() if "core, strict" in k), None)
hand = next((v for k, v in rows.items() if "hand-written" in k), None)
if core and hand:
    print(f"ratio core strict / hand-written (p50): {core[1] / hand[1]:.2f}   (goal: <= 1.20)")
if explorer:
    if rows:
        print()
    print(f'{"benchmark (one exploration per iteration)":44} {"p50 s":>8} {"states":>8} {"transitions":>12} {"states/s":>9}  samples')
    for name, (s, n, t, r, k) in sorted(explorer.items()):
        print(f"{name:44} {s:8.3f} {n:8} {t:12} {r:9.0f}  {k:7}")
EOF

if [ "$callgrind" = 1 ] && ! command -v valgrind > /dev/null; then
    # The instruction counts are half of what this script reports: install valgrind
    # (Debian's package) when we may, and say so plainly when we may not.
    if [ "$(id -u)" = 0 ] && command -v apt-get > /dev/null; then
        echo "(installing valgrind for the instruction counts: apt-get install valgrind)"
        { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq valgrind; } \
            > "$out/apt.log" 2>&1 || echo "(apt-get failed, see Benchmarks/$out/apt.log)"
    fi
fi
if [ "$callgrind" = 1 ] && ! command -v valgrind > /dev/null; then
    echo "(valgrind not installed and not installable here: no instruction counts; --no-callgrind skips this)"
elif [ "$callgrind" = 1 ]; then
    echo
    echo "== instructions per round trip (valgrind --tool=callgrind) =="
    build_product roundtrip-count
    # valgrind 3.19 cannot read the toolchain's DWARF 5; the symbol table is enough.
    bin=$(swift build -c release --show-bin-path)/roundtrip-count
    objcopy --strip-debug "$bin" "$out/roundtrip-count.nodebug"
    count() {  # kind, function-name fragment, round trips -> instructions inside the loop
        valgrind --tool=callgrind --callgrind-out-file="$out/callgrind.$1.$3" \
            "--toggle-collect=*$2*" "$out/roundtrip-count.nodebug" "$1" "$3" > /dev/null 2>&1
        awk '/^totals:/ { print $2 }' "$out/callgrind.$1.$3"
    }
    declare -A ins
    for k in core-strict:coreStrict hand-written:handWritten core-lazy:coreLazy; do
        kind=${k%%:*} fn=${k##*:}
        # Two lengths, so that the loop's entry and exit cancel out.
        a=$(count "$kind" "$fn" 100000)
        b=$(count "$kind" "$fn" 200000)
        ins[$kind]=$(awk -v a="$a" -v b="$b" 'BEGIN { printf "%.1f", (b - a) / 100000 }')
        printf '%-14s %8s instructions\n' "$kind" "${ins[$kind]}"
    done
    awk -v c="${ins[core-strict]}" -v h="${ins[hand-written]}" \
        'BEGIN { if (h > 0) printf "ratio core strict / hand-written (instructions): %.2f\n", c / h }'
fi

if [ "$explorer" = 1 ]; then
    echo
    echo "== explorer throughput (three-cpus, median of 3 exhaustive runs, Tools/ExplorerThroughput) =="
    build_product explorer-throughput
    bin=$(swift build -c release --show-bin-path)/explorer-throughput
    printf '%-6s %9s %12s %10s %10s\n' model states transitions "median s" "states/s"
    for model in sc tso; do
        # Exits non-zero (saying why on stderr) if a run finds a violation or stops at a
        # limit; the per-run table stays in $out for a look at the spread.
        "$bin" three-cpus "$model" 3 > "$out/explorer-throughput.$model.txt" || {
            cat "$out/explorer-throughput.$model.txt" >&2
            exit 1
        }
        awk -v m="$(echo "$model" | tr a-z A-Z)" \
            '$1 == "median" && NF == 6 { printf "%-6s %9s %12s %10s %10s\n", m, $2, $3, $5, $6 }' \
            "$out/explorer-throughput.$model.txt"
    done
fi

if [ "$runtime" = 1 ]; then
    echo
    ./runtime.sh
fi
