#!/usr/bin/env bash
# Throughput of `cpuflags analyze` on a large uncompressed ftrace text file, side by side
# in the same run with `grep -c ipi_send` on the same file (the issue's yardstick: within
# 5x of grep's time, peak RSS independent of the trace's length).
#
# Builds the release binary of the package this script lives in, makes one trace per size
# under a temp dir by concatenating the decompressed reference traces as many times as it
# takes (each copy shifted in time so that time keeps increasing; only the first copy's
# header is kept), warms the page cache with `cat FILE >/dev/null`, then times each command
# 3 times with /usr/bin/time -f '%e %M' and prints the medians.
#
#   Benchmarks/analyze-throughput.sh                   sizes 100 and 400 MB
#   Benchmarks/analyze-throughput.sh --sizes 50,200    other sizes (MB, approximate: whole traces)
#   Benchmarks/analyze-throughput.sh --runs 5          runs per command (median; default 3)
#   Benchmarks/analyze-throughput.sh --json            also a one-line JSON summary at the end
#   Benchmarks/analyze-throughput.sh --keep            keep the generated traces (path printed)
#
# Environment: CPUFLAGS_TRACES (default /work/shared/traces): the directory of the
# reference traces (bpf-filters.txt.xz, thread-churn.txt.xz, static-keys.txt.xz; any
# *.txt.xz, *.txt.gz or *.txt there is used); CPUFLAGS_BENCH_SIZES (e.g. "100 400"),
# overridden by --sizes; TMPDIR for the generated traces (they need about the largest
# size in free space, the sum with --keep); CPUFLAGS_BIN: time this cpuflags binary instead of building the
# package's (to compare builds).
#
# Times: '%e' of GNU time has a resolution of 10 ms, too coarse for grep on a file that is
# read in well under a second, so each run's wall clock is also taken with bash's
# EPOCHREALTIME around it (µs; includes starting /usr/bin/time, about a millisecond).
# The table's seconds and the ratio use that clock; '%e' is kept in the JSON for reference.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
traces=${CPUFLAGS_TRACES:-/work/shared/traces}
sizes=${CPUFLAGS_BENCH_SIZES:-100 400}
runs=3
json=0
keep=0
while [ $# -gt 0 ]; do
    case "$1" in
        --json) json=1 ;;
        --keep) keep=1 ;;
        --sizes) shift; sizes=${1//,/ } ;;
        --sizes=*) sizes=${1#--sizes=}; sizes=${sizes//,/ } ;;
        --runs) shift; runs=$1 ;;
        --runs=*) runs=${1#--runs=} ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) echo "analyze-throughput.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
    esac
    shift
done
for s in $sizes; do
    [[ "$s" =~ ^[0-9]+$ && "$s" -gt 0 ]] || { echo "analyze-throughput.sh: size '$s': expected a whole number of MB" >&2; exit 2; }
done
[[ "$runs" =~ ^[0-9]+$ && "$runs" -gt 0 ]] || { echo "analyze-throughput.sh: --runs '$runs': expected a positive number" >&2; exit 2; }

# The reference traces, in a fixed order.
if [ ! -d "$traces" ]; then
    echo "analyze-throughput.sh: no reference traces: '$traces' is not a directory." >&2
    echo "  Set CPUFLAGS_TRACES to a directory holding ftrace text recordings (*.txt.xz, *.txt.gz or *.txt)," >&2
    echo "  e.g. those recorded with 'cpuflags record'." >&2
    exit 2
fi
sources=()
while IFS= read -r f; do sources+=("$f"); done < <(find "$traces" -maxdepth 1 -type f \
    \( -name '*.txt.xz' -o -name '*.txt.gz' -o -name '*.txt' \) | LC_ALL=C sort)
if [ ${#sources[@]} -eq 0 ]; then
    echo "analyze-throughput.sh: no reference traces in '$traces' (expected *.txt.xz, *.txt.gz or *.txt)." >&2
    echo "  Set CPUFLAGS_TRACES to a directory that holds some." >&2
    exit 2
fi
if [ ! -x /usr/bin/time ]; then
    echo "analyze-throughput.sh: /usr/bin/time (GNU time) is needed for peak RSS (Debian: apt-get install time)" >&2
    exit 2
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/analyze-throughput.XXXXXX")
if [ "$keep" = 1 ]; then
    trap 'echo "(generated traces kept in $tmp)" >&2' EXIT
else
    trap 'rm -rf "$tmp"' EXIT
fi

if [ -n "${CPUFLAGS_BIN:-}" ]; then
    # An A/B comparison: a binary built some other way (flags, a branch), as it is.
    bin=$CPUFLAGS_BIN
    [ -x "$bin" ] || { echo "analyze-throughput.sh: CPUFLAGS_BIN '$bin' is not an executable" >&2; exit 2; }
else
    echo "== building cpuflags (release) ==" >&2
    swift build -c release --package-path "$root" --product cpuflags > "$tmp/build.log" 2>&1 || {
        cat "$tmp/build.log" >&2
        exit 1
    }
    bin=$(swift build -c release --package-path "$root" --show-bin-path)/cpuflags
fi

# One decompressed copy of each reference trace.
parts=()
for f in "${sources[@]}"; do
    base=$(basename "$f")
    out="$tmp/src.$base"
    case "$f" in
        *.xz) xz -dc -- "$f" > "${out%.xz}"; out=${out%.xz} ;;
        *.gz) gzip -dc -- "$f" > "${out%.gz}"; out=${out%.gz} ;;
        *) cp -- "$f" "$out" ;;
    esac
    parts+=("$out")
done
pass_bytes=$(cat "${parts[@]}" | wc -c)

# Concatenates the given ftrace text files in order into one time-ordered recording:
# the header ('#' lines before the first event) of the first file only; every event
# line of a later file shifted by a whole number of seconds so that its first event
# comes one second after the previous file's last. Only the seconds of the TIMESTAMP
# column change (the fraction is copied as it is). Event lines are found as ftrace and
# trace-cmd report print them: "TASK-PID [CPU] [FLAGS] SECONDS.FRACTION: EVENT: ...";
# other lines ("CPU:N [LOST M EVENTS]", notes) are copied as they are.
concat_traces() {
    LC_ALL=C awk '
        FNR == 1 { files++; shifted = 0; inhdr = 1 }
        inhdr && /^#/ { if (files == 1) print; next }
        { inhdr = 0 }
        {
            # The CPU column "[digits] ", then the first "digits.digits:" after it.
            if (!match($0, /\[[0-9]+\] /)) { print; next }
            head = substr($0, 1, RSTART + RLENGTH - 1)
            rest = substr($0, RSTART + RLENGTH)
            if (!match(rest, /[0-9]+\.[0-9]+:/)) { print; next }
            ts = substr(rest, RSTART, RLENGTH - 1)
            dot = index(ts, ".")
            sec = substr(ts, 1, dot - 1) + 0
            if (!shifted) { off = (files == 1) ? 0 : last + 1 - sec; shifted = 1 }
            nsec = sec + off
            if (nsec > last) last = nsec
            pre = substr(rest, 1, RSTART - 1)
            s = sprintf("%d", nsec)
            # Keep the column aligned where the padding allows it.
            grow = length(s) - (dot - 1)
            if (grow > 0 && substr(pre, length(pre) - grow + 1) ~ /^ +$/) pre = substr(pre, 1, length(pre) - grow)
            print head pre s substr(ts, dot) substr(rest, RSTART + RLENGTH - 1)
        }' "$@"
}

# measure OUT CMD...: runs CMD $runs times with its standard output to OUT; prints the
# median wall clock (EPOCHREALTIME), the median %e and the largest peak RSS (KB) seen.
# (grep's output must not go to /dev/null: GNU grep notices and stops at the first
# match, -c or not, which would time nothing.)
measure() {
    local out=$1 i rc t0 t1 walls=() es=() rss=0 line
    shift
    for ((i = 0; i < runs; i++)); do
        t0=$EPOCHREALTIME
        rc=0
        /usr/bin/time -f '%e %M' -o "$tmp/time.out" "$@" > "$out" || rc=$?
        t1=$EPOCHREALTIME
        # grep -c exits with 1 when it counts nothing; any other failure stops here.
        if [ "$rc" != 0 ] && ! { [ "$1" = grep ] && [ "$rc" = 1 ]; }; then
            echo "analyze-throughput.sh: '$*' failed (exit status $rc)" >&2
            exit 1
        fi
        walls+=("$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.6f", b - a }')")
        line=$(tail -n 1 "$tmp/time.out")
        es+=("${line%% *}")
        if [ "${line##* }" -gt "$rss" ]; then rss=${line##* }; fi
    done
    median() { printf '%s\n' "$@" | LC_ALL=C sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
    echo "$(median "${walls[@]}") $(median "${es[@]}") $rss"
}

printf '%s\n' "cpuflags analyze --quiet --json FILE vs grep -c ipi_send FILE; median of $runs runs each, page cache warm" \
    "(cpuflags: $bin)" \
    "(reference traces: ${sources[*]##*/}, $(awk -v b="$pass_bytes" 'BEGIN { printf "%.1f", b / 1e6 }') MB per copy; $(nproc) CPUs; LANG=${LANG:-unset})"
printf '%8s %9s %8s %10s %11s %8s %11s %9s %9s\n' \
    "size MB" "ipi_send" "grep s" "analyze s" "analyze MB/s" "ratio" "grep RSS MB" "RSS MB" "RSS KB"
json_rows=()
for size in $sizes; do
    want=$((size * 1000 * 1000))
    copies=$(((want + pass_bytes - 1) / pass_bytes))
    list=()
    for ((k = 0; k < copies; k++)); do list+=("${parts[@]}"); done
    file="$tmp/trace-${size}MB.txt"
    concat_traces "${list[@]}" > "$file"
    bytes=$(wc -c < "$file")
    cat "$file" > /dev/null
    res=$(measure "$tmp/grep.out" grep -c ipi_send "$file")
    read -r g_wall g_e g_rss <<< "$res"
    matches=$(cat "$tmp/grep.out")
    res=$(measure /dev/null "$bin" analyze --quiet --json "$file")
    read -r a_wall a_e a_rss <<< "$res"
    # Once, on the first size: the analysis must read the generated file as a valid
    # recording (every event line an event, in time order, nothing malformed).
    if [ -z "${validated:-}" ]; then
        validated=1
        "$bin" analyze --quiet --json "$file" > "$tmp/report.json" || {
            echo "analyze-throughput.sh: cpuflags analyze failed on the generated $file" >&2
            exit 1
        }
        python3 - "$tmp/report.json" "$(grep -vc '^#' "$file")" <<'EOF_PY' >&2 || exit 1
import json, sys
r = json.load(open(sys.argv[1]))
w = r["warnings"]
bad = {k: w[k] for k in ("malformedLines", "outOfOrderEvents", "lostEvents") if w[k]}
if r["events"] != int(sys.argv[2]) or bad:
    sys.exit(f"analyze-throughput.sh: the generated trace is not read as a valid recording: "
             f"{r['events']} events of {sys.argv[2]} event lines, warnings {bad}")
EOF_PY
    fi
    mb=$(awk -v b="$bytes" 'BEGIN { printf "%.1f", b / 1e6 }')
    rate=$(awk -v b="$bytes" -v s="$a_wall" 'BEGIN { printf "%.1f", b / 1e6 / s }')
    ratio=$(awk -v a="$a_wall" -v g="$g_wall" 'BEGIN { printf "%.1f", a / g }')
    printf '%8s %9s %8.3f %10.3f %11s %7sx %11.1f %9.1f %9s\n' "$mb" "$matches" "$g_wall" "$a_wall" "$rate" "$ratio" \
        "$(awk -v k="$g_rss" 'BEGIN { print k / 1024 }')" "$(awk -v k="$a_rss" 'BEGIN { print k / 1024 }')" "$a_rss"
    json_rows+=("{\"bytes\":$bytes,\"copies\":$copies,\"ipiSendLines\":$matches,\"grepSeconds\":$g_wall,\"grepTimeE\":$g_e,\"grepPeakRSSKB\":$g_rss,\"analyzeSeconds\":$a_wall,\"analyzeTimeE\":$a_e,\"analyzeMBps\":$rate,\"ratio\":$ratio,\"analyzePeakRSSKB\":$a_rss}")
    if [ "$keep" = 0 ]; then rm -f "$file"; fi
done
echo "(goal: ratio <= 5, analyze RSS the same at every size)"
if [ "$json" = 1 ]; then
    rows=$(IFS=,; echo "${json_rows[*]}")
    echo "{\"benchmark\":\"analyze-throughput\",\"runs\":$runs,\"goalRatio\":5,\"sizes\":[$rows]}"
fi
