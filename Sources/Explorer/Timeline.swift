import CPUFlags

/// A shortest path to a violation, with every shared access on it.
public struct Counterexample: Sendable, Codable {
    public var scenario: String
    public var model: MemoryModel
    public var mutations: [String]
    public var cpuCount: Int
    public var violation: Violation
    /// The explorer's choices, in order.
    public var moves: [String]
    /// What each choice did.
    public var events: [TimelineEvent]

    /// The counterexample as a per-CPU timeline: one column per CPU, one row per event,
    /// store-buffer contents after each event under TSO/PSO.
    public func timeline(columnWidth: Int = 36) -> String {
        var out = "counterexample: \(scenario) under \(model.description)"
        if !mutations.isEmpty { out += " with mutation \(mutations.joined(separator: ","))" }
        out += "\nviolation: \(violation)\n\n"
        let w = max(columnWidth, 20)
        func pad(_ s: String) -> String {
            s.count >= w ? s : s + String(repeating: " ", count: w - s.count)
        }
        var header = "step  "
        for c in 0..<cpuCount { header += pad("cpu\(c)") + " " }
        out += header.trimmingTrailing() + "\n"
        out += String(repeating: "-", count: 6 + (w + 1) * cpuCount) + "\n"
        var lastOp: [String] = Array(repeating: "", count: cpuCount)
        for e in events {
            var lines: [String] = []
            let opKey = "\(e.frame):\(e.op)"
            if lastOp[e.cpu] != opKey {
                lines.append(e.frame == "task" ? "[\(e.op)]" : "[\(e.frame): \(e.op)]")
                lastOp[e.cpu] = opKey
            }
            lines += wrap(e.action, width: w - 2).map { "  " + $0 }
            // Store buffers exist under TSO and PSO only.
            if (model == .tso || model == .pso) && e.frame != "memory" {
                let sb = e.storeBuffer.isEmpty ? "sb: empty" : "sb: " + e.storeBuffer.joined(separator: ", ")
                lines += wrap(sb, width: w - 2).map { "  " + $0 }
            }
            for (i, line) in lines.enumerated() {
                var row = i == 0 ? pad(String(e.step)).prefix(6).description : "      "
                if row.count < 6 { row += String(repeating: " ", count: 6 - row.count) }
                for c in 0..<cpuCount {
                    row += (c == e.cpu ? pad(line) : pad("|")) + " "
                }
                out += row.trimmingTrailing() + "\n"
            }
        }
        out += "\nviolation: \(violation)\n"
        return out
    }

    func wrap(_ s: String, width: Int) -> [String] {
        var lines: [String] = []
        var current = ""
        for word in s.split(separator: " ", omittingEmptySubsequences: false) {
            if current.isEmpty {
                current = String(word)
            } else if current.count + 1 + word.count <= width {
                current += " " + word
            } else {
                lines.append(current)
                current = String(word)
            }
            while current.count > width {
                lines.append(String(current.prefix(width)))
                current = String(current.dropFirst(width))
            }
        }
        if !current.isEmpty || lines.isEmpty { lines.append(current) }
        return lines
    }
}

extension String {
    func trimmingTrailing() -> String {
        var s = self
        while s.last == " " { s.removeLast() }
        return s
    }
}
