/// What a set of exploration runs established, invariant by invariant. A run that
/// stopped early (at a limit, or at another invariant's violation) establishes nothing
/// about the invariants it did not see fail: they are "not established" for that run,
/// never "ok". The verdict of an invariant over the set is `ok` only when every run
/// explored its whole state space and found it holding.
public struct Summary: Sendable, Codable, Equatable {
    public struct Line: Sendable, Codable, Equatable {
        public var invariant: String
        /// Runs that explored every state and found the invariant holding.
        public var ok: [String]
        /// Runs that found it holding over fingerprinted states (hash compaction): probable.
        public var probable: [String] = []
        /// Runs that found the invariant broken.
        public var violated: [String]
        /// Runs that stopped before the invariant was established, with the reason.
        public var notEstablished: [String]
        /// "ok", "VIOLATED", "not established" or "probable" (every run passed, some over
        /// fingerprints only).
        public var verdict: String {
            if !violated.isEmpty { return "VIOLATED" }
            if !notEstablished.isEmpty { return "not established" }
            return probable.isEmpty ? "ok" : "probable"
        }
    }

    public var runs: Int
    public var lines: [Line]

    public init(_ reports: [Report]) {
        runs = reports.count
        lines = Violation.Invariant.allCases.filter { $0 != .litmusOutcome }.map { inv in
            var line = Line(invariant: inv.rawValue, ok: [], violated: [], notEstablished: [])
            for r in reports {
                let label = "\(r.scenario) \(r.model.description)"
                switch r.invariants[inv.rawValue] {
                case "ok": line.ok.append(label)
                case "probable": line.probable.append(label)
                case "VIOLATED": line.violated.append(label)
                default:
                    let why = r.incomplete.map { _ in "incomplete" }
                        ?? r.violation.map { "stopped at \($0.invariant.rawValue)" } ?? "not run"
                    line.notEstablished.append("\(label) (\(why))")
                }
            }
            return line
        }
    }

    /// One line per invariant, for people: says exactly which runs established what.
    public func rendered() -> [String] {
        lines.map { l in
            var parts: [String] = []
            if l.verdict == "ok" {
                parts.append("ok in all \(runs) runs")
            } else if l.verdict == "probable" {
                parts.append("probably ok (hash-compact, not a proof) in \(l.probable.count) of \(runs) runs; ok in \(l.ok.count)")
            } else {
                if !l.violated.isEmpty { parts.append("VIOLATED in " + l.violated.joined(separator: ", ")) }
                if !l.notEstablished.isEmpty {
                    let shown = l.notEstablished.prefix(4).joined(separator: ", ")
                    let more = l.notEstablished.count > 4 ? ", +\(l.notEstablished.count - 4) more" : ""
                    parts.append("not established in \(l.notEstablished.count) of \(runs) runs: \(shown)\(more)")
                }
                parts.append("ok in \(l.ok.count) of \(runs)")
            }
            return "  \(l.invariant + String(repeating: " ", count: max(0, 22 - l.invariant.count))) " + parts.joined(separator: "; ")
        }
    }
}
