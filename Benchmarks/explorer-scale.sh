#!/usr/bin/env bash
# The explorer at scale: for each big scenario, one exhaustive run per memory model
# (release build, one job), printing states, transitions, seconds, states/s, bytes
# held per stored state (visited set + parent links, from the run's own accounting)
# and the process's peak resident memory. Then isolated-mix with a fourth CPU up to a
# state cap (it does not finish on this machine; the line says how far it got).
#
#   Benchmarks/explorer-scale.sh              # the table
#   Benchmarks/explorer-scale.sh --cap N      # the isolated-mix@4 cap (default 5000000)
#
# The reduction is sleep sets (README, "Scale"): they keep every state, so the factor
# printed is transitions without / with them (each run is made three times: the table's
# run with sleep sets on one thread, one with --no-reduction for its transitions and
# time, and one on two threads for the speed-up of a parallel level, `2-thr x`: seconds
# on one thread / on two, the same states). Then the depth-first search twice, with its
# transition cache (the default) and with --no-transition-cache: `dfs st/s` is its
# states per second with the cache, `cache x` seconds without / with it (the same
# states, checked), `cached %` the share of moves the cache answered.
set -euo pipefail
cd "$(dirname "$0")/.."

cap=5000000
while [ $# -gt 0 ]; do
    case "$1" in
        --cap) cap="${2:?--cap needs a number of states}"; shift 2 ;;
        -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
        *) echo "explorer-scale.sh: unknown argument '$1' (expected --cap N or --help)" >&2; exit 64 ;;
    esac
done
case "$cap" in ''|*[!0-9]*) echo "explorer-scale.sh: --cap '$cap': expected a positive integer" >&2; exit 64 ;; esac

swift build -c release --product cpuflags > /dev/null
bin="$(swift build -c release --show-bin-path)/cpuflags"
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

field() {  # name, json file -> first numeric value of "name"
    awk -v k="\"$1\"" '$1 == k { gsub(/[,]/, "", $3); print $3; exit }' "$2"
}

run() {  # label, verify arguments...
    local label="$1"; shift
    /usr/bin/time -f '%M' -o "$out/rss" "$bin" verify --sample 0 --jobs 1 --threads 1 --json "$@" > "$out/r.json" || true
    "$bin" verify --sample 0 --jobs 1 --threads 1 --json --no-reduction "$@" > "$out/full.json" || true
    "$bin" verify --sample 0 --jobs 1 --threads 2 --json "$@" > "$out/two.json" || true
    "$bin" verify --sample 0 --jobs 1 --json --depth-first "$@" > "$out/dfs.json" || true
    "$bin" verify --sample 0 --jobs 1 --json --depth-first --no-transition-cache "$@" > "$out/dfs0.json" || true
    local states trans secs bps rss verdict ftrans fsecs tsecs
    states=$(field states "$out/r.json"); trans=$(field transitions "$out/r.json")
    secs=$(field seconds "$out/r.json"); bps=$(field storedBytesPerState "$out/r.json")
    ftrans=$(field transitions "$out/full.json"); fsecs=$(field seconds "$out/full.json")
    tsecs=$(field seconds "$out/two.json")
    local dsecs d0secs hits ran
    dsecs=$(field seconds "$out/dfs.json"); d0secs=$(field seconds "$out/dfs0.json")
    hits=$(field cachedMoves "$out/dfs.json"); ran=$(field ranMoves "$out/dfs.json")
    rss=$(tail -1 "$out/rss")
    if grep -q '"incomplete"' "$out/r.json"; then verdict="incomplete"
    elif grep -q '"violation"' "$out/r.json"; then verdict="VIOLATED"
    else verdict="exhaustive, ok"; fi
    # The threads must not change what is found.
    [ "$(field states "$out/two.json")" = "$states" ] || verdict="$verdict; TWO THREADS FOUND $(field states "$out/two.json") STATES"
    # Neither does the search order, nor the transition cache.
    [ "$(field states "$out/dfs.json")" = "$states" ] || verdict="$verdict; DEPTH-FIRST FOUND $(field states "$out/dfs.json") STATES"
    [ "$(field states "$out/dfs0.json")" = "$states" ] || verdict="$verdict; DEPTH-FIRST WITHOUT CACHE FOUND $(field states "$out/dfs0.json") STATES"
    awk -v l="$label" -v s="$states" -v t="$trans" -v x="$secs" -v b="$bps" -v r="$rss" -v v="$verdict" \
        -v ft="$ftrans" -v fx="$fsecs" -v tx="$tsecs" -v dx="$dsecs" -v d0="$d0secs" -v h="$hits" -v n="$ran" \
        'BEGIN { printf "%-24s %10d %11d %6.1f %8.0f %6.0f %6.0f %6.2f %6.2f %8.2f %8.0f %7.2f %8.1f  %s\n", l, s, t, x, s / x, b, r / 1024, ft / t, fx / x, x / tx, s / dx, d0 / dx, 100 * h / (h + n), v }'
}

echo "(trans x, time x: transitions and seconds without sleep sets / with them; 2-thr x: seconds on one thread / on two; dfs st/s: depth-first with the transition cache; cache x: its seconds without / with the cache; same states)"
printf '%-24s %10s %11s %6s %8s %6s %6s %6s %6s %8s %8s %7s %8s  %s\n' run states transitions secs states/s B/st RSS-MB trans-x time-x 2-thr-x "dfs st/s" cache-x cached-% verdict
for s in three-cpus four-cpus four-cpus-pin-rcu isolated-mix; do
    for m in sc tso; do run "$s $m" --scenario "$s" --model "$m"; done
done
run "isolated-mix@4 sc (cap)" --scenario isolated-mix --cpus 4 --model sc --states-max "$cap"
