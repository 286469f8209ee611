/// A kernel cpulist, the syntax of `nohz_full=` and `isolcpus=`: comma-separated CPU
/// numbers and ranges, with an optional stride (`0-7,16-23:2`).
public struct CPUList: Hashable, Sendable, CustomStringConvertible {
    public var cpus: [Int]

    public struct ParseError: Error, CustomStringConvertible, Equatable {
        public var input: String
        public var position: Int
        public var expected: String
        public var description: String {
            "cpulist '\(input)': at character \(position + 1): expected \(expected)"
        }
    }

    /// Parses `text`; every CPU must be below `cpuCount`.
    public init(parsing text: String, cpuCount: Int) throws(ParseError) {
        var set = Set<Int>()
        var offset = 0
        for part in text.split(separator: ",", omittingEmptySubsequences: false) {
            let p = String(part)
            func fail(_ what: String) -> ParseError { ParseError(input: text, position: offset, expected: what) }
            if p.isEmpty { throw fail("a CPU number or a range a-b") }
            let strideSplit = p.split(separator: ":", omittingEmptySubsequences: false)
            if strideSplit.count > 2 { throw fail("at most one ':stride'") }
            let range = strideSplit[0].split(separator: "-", omittingEmptySubsequences: false)
            guard range.count <= 2, let lo = Int(range[0]), lo >= 0 else { throw fail("a CPU number") }
            var hi = lo
            if range.count == 2 {
                guard let h = Int(range[1]) else { throw fail("a CPU number after '-'") }
                hi = h
            }
            if hi < lo { throw fail("a range whose end (\(hi)) is not below its start (\(lo))") }
            var stride = 1
            if strideSplit.count == 2 {
                guard let s = Int(strideSplit[1]), s > 0 else { throw fail("a positive stride after ':'") }
                stride = s
            }
            if hi >= cpuCount { throw fail("CPUs below \(cpuCount) (the machine's size), not \(hi)") }
            for c in Swift.stride(from: lo, through: hi, by: stride) { set.insert(c) }
            offset += p.count + 1
        }
        cpus = set.sorted()
    }

    public init(_ cpus: [Int]) { self.cpus = cpus.sorted() }

    public var description: String {
        var parts: [String] = []
        var i = 0
        while i < cpus.count {
            var j = i
            while j + 1 < cpus.count && cpus[j + 1] == cpus[j] + 1 { j += 1 }
            parts.append(i == j ? "\(cpus[i])" : "\(cpus[i])-\(cpus[j])")
            i = j + 1
        }
        return parts.joined(separator: ",")
    }
}
