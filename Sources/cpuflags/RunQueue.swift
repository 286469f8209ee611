import Dispatch
import Explorer
import Foundation

/// Explores a list of (scenario, model) runs on `jobs` threads (each run is
/// independent: its own machine, its own state table), keeping the results in the
/// order of the list, so that the output does not depend on which thread finished
/// first. With `failFast`, no run starts after the first violation (runs already
/// started finish); the runs not made are nil.
final class RunQueue {
    let runs: [(Scenario, MemoryModel)]
    let limits: Limits
    let jobs: Int
    let failFast: Bool
    let quiet: Bool
    /// One progress line per run (a short list); otherwise one summary line about
    /// every two seconds (the generated set).
    let verbose: Bool

    private let lock = NSLock()
    private var results: [Report?]
    /// The order runs start in: biggest first by `costGuess`, so that with two jobs
    /// the two biggest runs overlap instead of one of them starting last and running
    /// alone (the hand-written set under rc11: 191 s in list order, its two big runs
    /// taking 135 and 157 s). Only when runs start changes; what they find and the
    /// order of the output do not.
    private let order: [Int]
    private var next = 0
    private var done = 0
    private var violated = 0
    private var incomplete = 0
    private var stop = false
    private let start = ContinuousClock.now
    private var lastLine = ContinuousClock.now

    init(runs: [(Scenario, MemoryModel)], limits: Limits, jobs: Int, failFast: Bool, quiet: Bool, verbose: Bool) {
        self.runs = runs
        self.limits = limits
        self.jobs = jobs
        self.failFast = failFast
        self.quiet = quiet
        self.verbose = verbose
        results = Array(repeating: nil, count: runs.count)
        order = runs.indices.sorted { a, b in
            let (ca, cb) = (Self.costGuess(runs[a].0, runs[a].1), Self.costGuess(runs[b].0, runs[b].1))
            return ca != cb ? ca > cb : a < b
        }
    }

    /// A guess at a run's size, only to order the starts: states grow about tenfold
    /// per CPU, with the ops and interrupt budgets, and rc11 runs are several times
    /// their TSO ones (README, verify table).
    static func costGuess(_ s: Scenario, _ m: MemoryModel) -> Double {
        let work = s.programs.reduce(0) { $0 + $1.count } + s.nmis.reduce(0, +) + s.irqs.reduce(0, +) + s.mces.reduce(0, +)
        let model: Double = m == .rc11 ? 8 : m == .sc ? 1 : 1.5
        return model * pow(10, Double(s.cpuCount)) * Double(work)
    }

    func run() -> (reports: [Report?], seconds: Double) {
        if !runs.isEmpty {
            DispatchQueue.concurrentPerform(iterations: min(jobs, runs.count)) { _ in worker() }
        }
        return (results, (ContinuousClock.now - start).seconds)
    }

    private func say(_ line: String) {
        guard !quiet else { return }
        FileHandle.standardError.write((line + "\n").data(using: .utf8)!)
    }

    private func worker() {
        while true {
            lock.lock()
            if stop || next >= runs.count {
                lock.unlock()
                return
            }
            let i = order[next]
            next += 1
            lock.unlock()
            let (s, m) = runs[i]
            let label = "\(s.name) \(m.description)"
            let verbose = self.verbose
            let began = ContinuousClock.now
            let explorer = Explorer(scenario: s, model: m, limits: limits) { [weak self] states, frontier, depth in
                guard verbose else { return }
                let secs = max((ContinuousClock.now - began).seconds, 1e-9)
                self?.say(String(format: "  %@: %d states (%.0f/s), frontier %d, depth %d, resident %.0f MB",
                                 label, states, Double(states) / secs, frontier, depth, RunQueue.residentMB()))
            }
            let r = explorer.run()
            lock.lock()
            results[i] = r
            done += 1
            if r.violation != nil { violated += 1 }
            if r.violation == nil && r.incomplete != nil { incomplete += 1 }
            if failFast && r.violation != nil { stop = true }
            let now = ContinuousClock.now
            if verbose {
                let how = r.incomplete.map { "stopped (incomplete: \($0))" }
                    ?? r.violation.map { "stopped at a violation of \($0.invariant.rawValue)" }
                    ?? (r.probable != nil ? "done over fingerprints (hash-compact: probable, not a proof)" : "done, exhaustive")
                say("  \(label): \(how), \(r.states) states")
            } else {
                if let v = r.violation { say("  \(label): VIOLATED \(v.invariant.rawValue): \(v.message)") }
                if r.violation == nil, let why = r.incomplete { say("  \(label): incomplete: \(why)") }
                if now - lastLine >= .seconds(2) || done == runs.count {
                    lastLine = now
                    let elapsed = (now - start).seconds
                    let left = elapsed / Double(done) * Double(runs.count - done)
                    say(String(format: "  %d/%d runs, %d violated, %d incomplete, %.0fs elapsed, about %.0fs left",
                               done, runs.count, violated, incomplete, elapsed, left))
                }
            }
            lock.unlock()
        }
    }

    /// This process's resident memory (/proc/self/statm), MB; 0 if unreadable.
    static func residentMB() -> Double {
        guard let text = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) else { return 0 }
        let fields = text.split(separator: " ")
        guard fields.count > 1, let pages = Double(fields[1]) else { return 0 }
        return pages * Double(sysconf(Int32(_SC_PAGESIZE))) / 1e6
    }
}
