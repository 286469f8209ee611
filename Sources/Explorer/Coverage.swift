import CPUFlags

/// Which features of the core were explored together: for every pair of features
/// (housekeeping ops, isolated-CPU program features, interrupt budgets, machine
/// shapes), and every feature with every exit policy and pin protocol, the number of
/// runs that explored a scenario with both, exhaustively. A zero says that combination
/// was never checked, whatever the verdict says.
public struct Coverage: Sendable, Codable, Equatable {
    /// The feature names, in a fixed order (`Coverage.features`).
    public var features: [String]
    /// `pairs[i][j]`: exhaustive runs whose scenario has features i and j (i == j: i alone).
    public var pairs: [[Int]]
    /// Exit policies, then pin protocols.
    public var configurations: [String]
    /// `byConfiguration[i][k]`: exhaustive runs with feature i under configuration k.
    public var byConfiguration: [[Int]]
    /// Runs counted (exhaustive ones), and runs left out (violated or incomplete).
    public var runs: Int
    public var leftOut: Int

    public static let features: [String] = [
        "flush", "patch", "queue-callback", "run-on-behalf", "wake", "interrupt", "grace-period", "gp-expedited",
        "user-round-trip", "run-text", "idle", "poll-idle", "rcu-reader", "context-switch", "nmi", "timer-irq",
        "2-housekeepers", "2-isolated", "task-migration", "mce",
    ]

    /// The features a scenario exercises.
    public static func features(of s: Scenario) -> Set<String> {
        var f: Set<String> = []
        for p in s.programs {
            for op in p {
                switch op {
                case .flushKernelTLB: f.insert("flush")
                case .patchText: f.insert("patch")
                case .queueCallback: f.insert("queue-callback")
                case .runOnBehalf: f.insert("run-on-behalf")
                case .wake: f.insert("wake")
                case .interrupt: f.insert("interrupt")
                case .synchronizeRCU: f.insert(s.expeditedRCU ? "gp-expedited" : "grace-period")
                case .exitToUser, .enterFromUser: f.insert("user-round-trip")
                case .runText: f.insert("run-text")
                case .enterIdle(let polling): f.insert(polling ? "poll-idle" : "idle")
                case .pollIdle: f.insert("poll-idle")
                case .exitIdle, .kernelAccess, .litmusStore, .litmusLoad, .litmusAdd, .litmusFence: break
                case .contextSwitch: f.insert("context-switch")
                case .switchTo: f.insert("task-migration")
                case .rcuReader: f.insert("rcu-reader")
                }
            }
        }
        if s.nmis.contains(where: { $0 > 0 }) { f.insert("nmi") }
        if s.mces.contains(where: { $0 > 0 }) { f.insert("mce") }
        if s.irqs.contains(where: { $0 > 0 }) { f.insert("timer-irq") }
        let housekeepers = s.programs.filter { $0.contains(where: \.isHousekeeping) }.count
        if housekeepers >= 2 { f.insert("2-housekeepers") }
        if s.cpuCount - housekeepers >= 2 { f.insert("2-isolated") }
        return f
    }

    public static let configurationNames: [String] =
        ExitPolicy.allCases.map(\.rawValue) + PinProtocol.allCases.map(\.rawValue)

    /// Coverage of the exhaustive, passing runs among `runs` (a run that stopped early
    /// explored only part of its scenario and counts for nothing).
    public init(_ runs: [(scenario: Scenario, report: Report)]) {
        let names = Self.features
        let index = Dictionary(uniqueKeysWithValues: names.enumerated().map { ($1, $0) })
        features = names
        configurations = Self.configurationNames
        pairs = Array(repeating: Array(repeating: 0, count: names.count), count: names.count)
        byConfiguration = Array(repeating: Array(repeating: 0, count: configurations.count), count: names.count)
        self.runs = 0
        leftOut = 0
        for (s, r) in runs {
            guard r.passed else { leftOut += 1; continue }
            self.runs += 1
            let f = Self.features(of: s).compactMap { index[$0] }
            let policy = ExitPolicy.allCases.firstIndex(of: s.config.exitPolicy)!
            let proto = ExitPolicy.allCases.count + PinProtocol.allCases.firstIndex(of: s.config.pinProtocol)!
            for i in f {
                for j in f { pairs[i][j] += 1 }
                byConfiguration[i][policy] += 1
                byConfiguration[i][proto] += 1
            }
        }
    }

    /// Pairs of features never explored together.
    public var missingPairs: [(String, String)] {
        var out: [(String, String)] = []
        for i in features.indices { for j in features.indices where j > i && pairs[i][j] == 0 { out.append((features[i], features[j])) } }
        return out
    }

    /// The tables for people: the pair matrix (lower triangle, columns numbered as the
    /// rows) and the feature-by-configuration table.
    public func rendered() -> [String] {
        var lines: [String] = []
        let w = features.map(\.count).max() ?? 0
        func pad(_ s: String, _ n: Int) -> String { String(repeating: " ", count: max(0, n - s.count)) + s }
        func padRight(_ s: String, _ n: Int) -> String { s + String(repeating: " ", count: max(0, n - s.count)) }
        let cells = pairs.flatMap { $0 }.map { String($0).count }.max() ?? 1
        let cw = max(cells, 2) + 1
        lines.append("runs with both features (exhaustive runs only: \(runs); left out, violated or incomplete: \(leftOut))")
        lines.append(padRight("", w + 5) + features.indices.map { pad(String($0 + 1), cw) }.joined())
        for (i, name) in features.enumerated() {
            let row = (0...i).map { pad(String(pairs[i][$0]), cw) }.joined()
            lines.append(pad(String(i + 1), 3) + " " + padRight(name, w) + " " + row)
        }
        lines.append("")
        let cfgW = max(configurations.map(\.count).max() ?? 0, cells) + 2
        lines.append(padRight("runs per configuration", w + 5) + configurations.map { pad($0, cfgW) }.joined())
        for (i, name) in features.enumerated() {
            lines.append(pad(String(i + 1), 3) + " " + padRight(name, w) + " " + byConfiguration[i].map { pad(String($0), cfgW) }.joined())
        }
        let missing = missingPairs
        lines.append("")
        if missing.isEmpty {
            lines.append("every pair of features was explored together")
        } else {
            lines.append("never explored together (\(missing.count) pairs): " + missing.map { "\($0.0)+\($0.1)" }.joined(separator: ", "))
        }
        return lines
    }
}
