// runtime-bench: what CPUFlagsRuntime costs, beside what it stands for.
//
//   runtime-bench [--seconds D] [--json] [--seed S] [--rate R] [--leave-every-ms N]
//                 [--sync-workers W] [--sync-seconds S] [--only SECTIONS]
//   runtime-bench count KIND COUNT     run COUNT round trips of KIND once (for callgrind)
//
// Sections (--only takes a comma-separated subset, default all):
//   roundtrip   ns per user round trip: the runtime worker's enterUserStretch() +
//               leaveUserStretch() beside the core's round trip on HardwarePlatform, the
//               hand-written release store + exchange and a lock-xadd pair (median of 15
//               interleaved runs of 1,000,000, on CPU 0)
//   request     the requester's ns per rt.request(work, on:) to a worker on CPU 1 in its
//               user stretch (deferred) vs in its kernel stretch (signal round trip)
//   sync        rt.synchronize() latency with W workers (default 1) in their user stretch,
//               doing round trips, or (expedited) in their kernel stretch; S seconds each
//   isolation   oslat-style: gaps between clock reads of a worker on CPU 1 while CPU 0
//               requests work at R per second (default 1000) for D seconds (default 5),
//               per exit policy, plus "signals always" and "no requests"
//
// --json prints one JSON document on stdout instead of the tables (progress goes to
// stderr). The isolation requester's intervals are random (uniform in [0.5, 1.5] / R)
// from --seed (default 1), printed with the results. KIND (count): runtime-strict,
// runtime-lazy, core-strict, hand-written, lock-xadd-pair, core-lazy.

import CPUFlagsRuntime
import Glibc

func usage() -> Never {
    fail("""
        usage: runtime-bench [--seconds D] [--json] [--seed S] [--rate R] [--leave-every-ms N] \
        [--sync-workers W] [--sync-seconds S] [--only roundtrip,request,sync,isolation]
               runtime-bench count KIND COUNT   (KIND: \(RoundTripLoop.allCases.map(\.rawValue).joined(separator: ", ")))
        """)
}

let args = Array(CommandLine.arguments.dropFirst())
if args.first == "count" {
    guard args.count == 3, let loop = RoundTripLoop(rawValue: args[1]), let n = Int(args[2]), n > 0 else { usage() }
    LoopFixture().run(loop, count: n)
    exit(0)
}

var seconds = 5.0, json = false, seed: UInt64 = 1, rate = 1000.0, leaveEveryMs = 10.0
var syncWorkers = 1, syncSeconds = 1.0
var sections: Set<String> = ["roundtrip", "request", "sync", "isolation"]
var i = 0
@MainActor func value() -> String {
    i += 1
    guard i < args.count else { usage() }
    return args[i]
}
while i < args.count {
    switch args[i] {
    case "--seconds": guard let v = Double(value()), v > 0 else { usage() }; seconds = v
    case "--json": json = true
    case "--seed": guard let v = UInt64(value()) else { usage() }; seed = v
    case "--rate": guard let v = Double(value()), v > 0 else { usage() }; rate = v
    case "--leave-every-ms": guard let v = Double(value()), v > 0 else { usage() }; leaveEveryMs = v
    case "--sync-workers": guard let v = Int(value()), v >= 1, v <= 63 else { usage() }; syncWorkers = v
    case "--sync-seconds": guard let v = Double(value()), v > 0 else { usage() }; syncSeconds = v
    case "--only":
        sections = Set(value().split(separator: ",").map(String.init))
        let known: Set<String> = ["roundtrip", "request", "sync", "isolation"]
        guard sections.isSubset(of: known), !sections.isEmpty else { usage() }
    default: usage()
    }
    i += 1
}

let cpus = Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))
guard cpus >= 2 else { fail("needs at least 2 CPUs (housekeeping on CPU 0, the worker on CPU 1); this machine has \(cpus)") }

var doc: [(String, JSON)] = [
    ("cpus", .int(cpus)), ("seed", .string(String(seed))),
    ("command", .string((["runtime-bench"] + args).joined(separator: " "))),
]
if sections.contains("roundtrip") {
    progress("round trips ...")
    doc.append(("round trips", roundTripSection(count: 1_000_000, runs: 15)))
}
if sections.contains("request") {
    progress("requests ...")
    doc.append(("requests", requestSection()))
}
if sections.contains("sync") {
    progress("synchronize ...")
    doc.append(("synchronize", synchronizeSection(workers: syncWorkers, seconds: syncSeconds)))
}
if sections.contains("isolation") {
    progress("isolation (seed \(seed)) ...")
    doc.append(("isolation", isolationSection(seconds: seconds, rate: rate, leaveEveryMs: leaveEveryMs, seed: seed)))
}

if json {
    print(JSON.object(doc))
} else {
    printTables(doc)
}
