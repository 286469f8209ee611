// explorer-throughput [SCENARIO] [MODEL] [RUNS]
//
// Explores SCENARIO (default three-cpus) under MODEL (sc, tso or pso; default tso) RUNS
// times (default 3), one full exhaustive exploration per run, and prints per run the
// states, transitions, executions, seconds and states/second, then the medians. The state
// count is deterministic: a run that finds a different count from the first is reported.
// Exit status: 0 on success, 1 if a run found a violation or stopped at a limit (its
// throughput is not comparable), 2 on bad arguments.
//
//   swift run -c release --package-path Benchmarks explorer-throughput three-cpus tso 3

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Explorer

let scenarioNames = Scenario.standard.map(\.name)
let modelNames = MemoryModel.allCases.map(\.rawValue)

func printUsage() {
    print("""
        usage: explorer-throughput [SCENARIO] [MODEL] [RUNS]
          SCENARIO  one of: \(scenarioNames.joined(separator: ", ")) (default three-cpus)
          MODEL     one of: \(modelNames.joined(separator: ", ")) (default tso)
          RUNS      explorations to time, a positive integer (default 3)
        """)
}

func fail(_ message: String) -> Never {
    var err = StandardError()
    print("explorer-throughput: \(message)", to: &err)
    print("usage: explorer-throughput [SCENARIO] [MODEL] [RUNS]  (--help for details)", to: &err)
    exit(2)
}

/// Writes to file descriptor 2 (the C `stderr` global is not concurrency-safe in Swift 6).
func writeStandardError(_ string: String) {
    var s = string
    s.withUTF8 { b in _ = write(2, b.baseAddress, b.count) }
}

struct StandardError: TextOutputStream {
    mutating func write(_ string: String) { writeStandardError(string) }
}

var args = Array(CommandLine.arguments.dropFirst())
if args.contains(where: { $0 == "-h" || $0 == "--help" }) {
    printUsage()
    exit(0)
}
if args.count > 3 {
    fail("too many arguments (\(args.count)): expected at most 3, SCENARIO MODEL RUNS")
}

let scenarioName = args.count > 0 ? args[0] : "three-cpus"
guard let scenario = Scenario.named(scenarioName) else {
    fail("unknown scenario '\(scenarioName)' (argument 1, SCENARIO): expected one of \(scenarioNames.joined(separator: ", "))")
}
let modelName = args.count > 1 ? args[1] : "tso"
guard let model = MemoryModel(rawValue: modelName.lowercased()) else {
    fail("unknown memory model '\(modelName)' (argument 2, MODEL): expected one of \(modelNames.joined(separator: ", "))")
}
let runsText = args.count > 2 ? args[2] : "3"
guard let runs = Int(runsText), runs >= 1 else {
    fail("bad run count '\(runsText)' (argument 3, RUNS): expected a positive integer")
}

func median(_ xs: [Double]) -> Double {
    let s = xs.sorted()
    return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
}

func column(_ s: String, _ width: Int) -> String {
    String(repeating: " ", count: max(0, width - s.count)) + s
}

func fixed(_ x: Double, _ decimals: Int) -> String {
    var scale = 1.0
    for _ in 0..<decimals { scale *= 10 }
    let r = (x * scale).rounded() / scale
    var s = String(r)
    if let dot = s.firstIndex(of: ".") {
        let have = s.distance(from: dot, to: s.endIndex) - 1
        if have < decimals { s += String(repeating: "0", count: decimals - have) }
    }
    return s
}

print("explorer-throughput: \(scenario.name) under \(model.description), \(runs) run\(runs == 1 ? "" : "s")")
print("run" + column("states", 12) + column("transitions", 14) + column("executions", 12)
    + column("seconds", 10) + column("states/s", 12))
fflush(nil)

var seconds: [Double] = []
var rates: [Double] = []
var first: Report?
var problems: [String] = []
for i in 1...runs {
    let r = Explorer(scenario: scenario, model: model).run()
    print(column(String(i), 3) + column(String(r.states), 12) + column(String(r.transitions), 14)
        + column(String(r.executions), 12) + column(fixed(r.seconds, 3), 10)
        + column(String(Int(r.statesPerSecond.rounded())), 12))
    fflush(nil)
    seconds.append(r.seconds)
    rates.append(r.statesPerSecond)
    if let v = r.violation { problems.append("run \(i) stopped at a violation: \(v)") }
    if let why = r.incomplete { problems.append("run \(i) is incomplete: \(why)") }
    if let f = first {
        if r.states != f.states || r.transitions != f.transitions {
            problems.append("run \(i) found \(r.states) states, \(r.transitions) transitions; run 1 found \(f.states), \(f.transitions) (the counts should not vary)")
        }
    } else {
        first = r
    }
}
let f = first!
print("median" + column(String(f.states), 9) + column(String(f.transitions), 14) + column(String(f.executions), 12)
    + column(fixed(median(seconds), 3), 10) + column(String(Int(median(rates).rounded())), 12))
print("median states/s: \(Int(median(rates).rounded()))  (\(scenario.name), \(model.description), \(f.states) states, \(runs) run\(runs == 1 ? "" : "s"))")
if !problems.isEmpty {
    var err = StandardError()
    for p in problems { print("explorer-throughput: \(p)", to: &err) }
    exit(1)
}
