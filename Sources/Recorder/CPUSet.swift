import Foundation

/// A set of CPU numbers, read from and shown as a kernel cpulist ("0-3,8,10-11").
///
/// Recorder depends on nothing, so it cannot use the simulator's `CPUList`; this parser
/// takes the same region syntax that `--isolated` needs on a real machine (`N`, `N-M`,
/// `N-M:used/group`, comma separated, as `bitmap_parselist` reads them) and checks the
/// CPUs against the ones that are online, because a spinner cannot be pinned to a CPU
/// that is offline or absent.
public struct CPUSet: Hashable, Sendable, CustomStringConvertible {
    public private(set) var cpus: [Int]

    public init(_ cpus: [Int]) { self.cpus = Array(Set(cpus)).sorted() }

    /// A cpulist that cannot be used, with the text and what was expected instead.
    public struct ParseError: Error, CustomStringConvertible, Equatable, Sendable {
        public var input: String
        public var expected: String
        public var description: String {
            let shown = input.count > 60 ? String(input.prefix(57)) + "..." : input
            return "cpulist '\(shown)': expected \(expected)"
        }
    }

    /// The largest CPU number accepted in a list: Linux's NR_CPUS is at most 8192, and a
    /// bound keeps `0-4000000000` from allocating a huge array.
    public static let cpuMax = 8191

    /// Parses `text` (syntax only; see `checkOnline` for the machine).
    public init(parsing text: String) throws(ParseError) {
        func fail(_ what: String) -> ParseError {
            ParseError(input: text, expected: what)
        }
        let syntax = "a cpulist such as 1 or 1,3-5 (numbers 0 to \(CPUSet.cpuMax), ranges N-M with N <= M)"
        var result = Set<Int>()
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        guard !trimmed.isEmpty else { throw fail("at least one CPU: \(syntax)") }
        for region in trimmed.split(separator: ",", omittingEmptySubsequences: false) {
            let r = region.trimmingCharacters(in: .whitespaces)
            guard !r.isEmpty else { throw fail("a CPU number between commas: \(syntax)") }
            // `N-M:used/group`: in each group of `group` CPUs from N, the first `used`.
            let rangeAndStride = r.split(separator: ":", omittingEmptySubsequences: false)
            guard rangeAndStride.count <= 2 else { throw fail("one ':' at most in '\(r)': \(syntax)") }
            let bounds = rangeAndStride[0].split(separator: "-", omittingEmptySubsequences: false)
            func number(_ s: Substring) throws(ParseError) -> Int {
                guard !s.isEmpty, s.allSatisfy({ $0.isASCII && $0.isNumber }), let n = Int(s), n <= CPUSet.cpuMax else {
                    throw fail("'\(s)' in '\(r)' to be a CPU number from 0 to \(CPUSet.cpuMax): \(syntax)")
                }
                return n
            }
            guard bounds.count <= 2 else { throw fail("one '-' at most in '\(r)': \(syntax)") }
            let lo = try number(bounds[0])
            let hi = bounds.count == 2 ? try number(bounds[1]) : lo
            guard lo <= hi else { throw fail("N <= M in the range '\(r)': \(syntax)") }
            var used = 1, group = 1
            if rangeAndStride.count == 2 {
                guard bounds.count == 2 else { throw fail("a range N-M before ':' in '\(r)': \(syntax)") }
                let ug = rangeAndStride[1].split(separator: "/", omittingEmptySubsequences: false)
                guard ug.count == 2 else { throw fail("':used/group' after the range in '\(r)'") }
                used = try number(ug[0])
                group = try number(ug[1])
                guard group >= 1, used >= 1, used <= group else {
                    throw fail("1 <= used <= group in '\(r)'")
                }
            }
            var start = lo
            while start <= hi {
                for c in start..<min(start + used, hi + 1) { result.insert(c) }
                start += group
            }
        }
        cpus = result.sorted()
    }

    /// Throws unless every CPU of the set is online.
    public func checkOnline(_ online: CPUSet, input: String) throws(ParseError) {
        let offline = cpus.filter { !online.cpus.contains($0) }
        guard offline.isEmpty else {
            throw ParseError(input: input, expected: "online CPUs only (online: \(online)); not online: \(CPUSet(offline))")
        }
    }

    public var isEmpty: Bool { cpus.isEmpty }
    public func contains(_ cpu: Int) -> Bool { cpus.contains(cpu) }
    public func subtracting(_ other: CPUSet) -> CPUSet { CPUSet(cpus.filter { !other.cpus.contains($0) }) }

    /// The shortest cpulist: runs of consecutive CPUs as ranges ("0-3,8").
    public var description: String {
        var parts: [String] = []
        var i = 0
        while i < cpus.count {
            var j = i
            while j + 1 < cpus.count && cpus[j + 1] == cpus[j] + 1 { j += 1 }
            parts.append(j == i ? "\(cpus[i])" : "\(cpus[i])-\(cpus[j])")
            i = j + 1
        }
        return parts.joined(separator: ",")
    }

    /// The CPUs online now, from sysfs (`/sys/devices/system/cpu/online`, a cpulist); if it
    /// cannot be read (a container without /sys), the CPUs the C library counts.
    public static func online(sysfs: String = "/sys/devices/system/cpu/online") -> CPUSet {
        if let text = try? String(contentsOfFile: sysfs, encoding: .utf8),
           let set = try? CPUSet(parsing: text.trimmingCharacters(in: .whitespacesAndNewlines)), !set.isEmpty {
            return set
        }
        let n = max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))))
        return CPUSet(Array(0..<n))
    }
}
