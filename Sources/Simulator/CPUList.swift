/// A kernel cpulist, the syntax of `nohz_full=` and `isolcpus=`, parsed exactly as Linux
/// parses it (`bitmap_parselist` and `bitmap_parse_region` in lib/bitmap-str.c, Linux 6.x):
///
/// - regions separated by commas and/or whitespace (leading, trailing and repeated
///   separators are allowed, so `""` and `" ,, "` are the empty list);
/// - a region is `N`, `N-M` or `N-M:used/group_size` (in each group of `group_size` CPUs
///   starting at `N`, the first `used`: `8-63:2/4` is 8,9,12,13,...,60,61), or `all`
///   (`0-N`, case-insensitive, with an optional `:used/group_size` too);
/// - the letter `N` in place of a number is the last CPU (cpuCount - 1): `0-N`, `4-N:1/2`;
/// - a newline (or a NUL) ends the list, as it ends the kernel's string;
/// - errors: bad syntax (-EINVAL: a missing number, a stray character, `10-15:2` since the
///   kernel has no bare stride, `start > end`, `group_size` 0, `used > group_size`), a CPU
///   beyond the machine (-ERANGE), a number that does not fit 32 bits (-EOVERFLOW).
///
/// The list is parsed into a bitmap of `cpuCount` bits (at most `SimulatorLimits.cpusMax`),
/// never into ranges materialized first, and the text is bounded (`lengthMax`), so no input
/// can make the parser allocate more than the machine or run long.
public struct CPUList: Hashable, Sendable, CustomStringConvertible {
    public var cpus: [Int]

    /// The longest cpulist text accepted, in characters: enough to name each of
    /// `SimulatorLimits.cpusMax` CPUs one by one ("0,1,...,4095" is about 19,000); the
    /// kernel's own command line is far shorter (COMMAND_LINE_SIZE is 2048 on x86).
    public static let lengthMax = 32_768

    public struct ParseError: Error, CustomStringConvertible, Equatable {
        /// The kernel's error for the same input (`tooLong` is ours: the length bound).
        public enum Kind: Equatable, Sendable {
            /// -EINVAL: bad syntax or an inconsistent region.
            case invalid
            /// -ERANGE: a CPU at or beyond the machine's size.
            case outOfRange
            /// -EOVERFLOW: a number that does not fit an unsigned 32-bit integer.
            case overflow
            /// Longer than `CPUList.lengthMax`, or a machine size beyond the simulator's.
            case tooLong
        }
        public var input: String
        /// 0-based offset (in Unicode scalars) of the offending character; the input's
        /// length when the text ended where something was expected.
        public var position: Int
        public var expected: String
        public var kind: Kind = .invalid
        public var description: String {
            // Long inputs are cut in the message (a 100 MB list must not become a 100 MB line).
            let shown = input.count > 60 ? String(input.prefix(57)) + "..." : input
            let end = position >= input.unicodeScalars.count ? " (the end)" : ""
            return "cpulist '\(shown)': at character \(position + 1)\(end): expected \(expected)"
        }
    }

    /// Parses `text` for a machine of `cpuCount` CPUs; every CPU must be below `cpuCount`.
    public init(parsing text: String, cpuCount: Int) throws(ParseError) {
        let s = Array(text.unicodeScalars)
        func fail(_ at: Int, _ what: String, _ kind: ParseError.Kind = .invalid) -> ParseError {
            ParseError(input: text, position: at, expected: what, kind: kind)
        }
        guard s.count <= CPUList.lengthMax else {
            throw fail(CPUList.lengthMax, "at most \(CPUList.lengthMax) characters, not \(s.count)", .tooLong)
        }
        guard cpuCount >= 1 && cpuCount <= SimulatorLimits.cpusMax else {
            throw fail(0, "a machine of 1 to \(SimulatorLimits.cpusMax) CPUs, not \(cpuCount)", .tooLong)
        }
        let nbits = cpuCount, lastbit = nbits - 1
        var bits = [Bool](repeating: false, count: nbits)

        func at(_ k: Int) -> Unicode.Scalar? { k < s.count ? s[k] : nil }
        // The kernel works on a C string: its end, a NUL or a newline ends the list.
        func endOfString(_ k: Int) -> Bool {
            guard let c = at(k) else { return true }
            return c == "\0" || c == "\n"
        }
        // isspace() in the C locale, or a comma (`__end_of_region`).
        func separator(_ k: Int) -> Bool {
            guard let c = at(k) else { return false }
            return c == " " || c == "\t" || c == "\n" || c == "\u{0B}" || c == "\u{0C}" || c == "\r" || c == ","
        }
        func endOfRegion(_ k: Int) -> Bool { separator(k) || endOfString(k) }
        // `bitmap_getnum`: `N` is the last bit; else decimal digits that fit 32 bits.
        func number(_ k: inout Int, _ what: String) throws(ParseError) -> Int {
            if at(k) == "N" {
                k += 1
                return lastbit
            }
            let start = k
            var n: UInt64 = 0
            var overflow = false
            while let c = at(k), c.value >= 48 && c.value <= 57 {
                if !overflow {
                    let (m, o1) = n.multipliedReportingOverflow(by: 10)
                    let (a, o2) = m.addingReportingOverflow(UInt64(c.value - 48))
                    if o1 || o2 || a > UInt64(UInt32.max) { overflow = true } else { n = a }
                }
                k += 1
            }
            if k == start { throw fail(start, what) }
            if overflow { throw fail(start, "a number below 2^32 (4294967296)", .overflow) }
            return Int(n)
        }

        var next: Int? = 0
        while var k = next {
            // `bitmap_find_region`: skip separators; the end of the string ends the list.
            while separator(k) { k += 1 }
            if endOfString(k) { break }
            // `bitmap_parse_region`.
            var start: Int, end: Int, used: Int, group: Int
            var endAt = k, usedAt = k, groupAt = k
            var pattern = false
            let word = (0..<3).compactMap { at(k + $0) }.map { Character($0).lowercased() }.joined()
            if word == "all" {
                start = 0
                end = lastbit
                k += 3
            } else {
                start = try number(&k, "a CPU number, N or 'all'")
                if endOfRegion(k) {
                    // A single CPU (the kernel's `no_end`): the separator that follows it
                    // also skips the pattern below.
                    end = start
                } else {
                    guard at(k) == "-" else { throw fail(k, "'-', ',' or the end after a CPU number") }
                    k += 1
                    endAt = k
                    end = try number(&k, "a CPU number or N after '-'")
                }
            }
            if !endOfRegion(k) {
                guard at(k) == ":" else { throw fail(k, "':used/group_size', ',' or the end after a range") }
                k += 1
                usedAt = k
                used = try number(&k, "the number of CPUs used in each group after ':'")
                // `10-15:2` is not the kernel's syntax: it has no bare stride.
                guard at(k) == "/" else {
                    throw fail(k, "'/' and a group size after ':\(used)' (the kernel has no bare stride: write N-M:1/STRIDE)")
                }
                k += 1
                groupAt = k
                group = try number(&k, "a group size after '/'")
                pattern = true
                // As the kernel, the next region is looked for right after the group size.
                next = k
            } else {
                used = end + 1
                group = end + 1
                next = endOfString(k) ? nil : k
            }
            // `bitmap_check_region`.
            if start > end { throw fail(endAt, "a range end at least its start (\(start)), not \(end)") }
            if pattern && group == 0 { throw fail(groupAt, "a group size of at least 1") }
            if pattern && used > group { throw fail(usedAt, "at most the group size (\(group)) CPUs used per group, not \(used)") }
            if end >= nbits { throw fail(endAt, "CPUs below \(nbits) (the machine's size), not \(end)", .outOfRange) }
            // `bitmap_set_region`: bounded by the machine (end < nbits); Int arithmetic, so
            // unlike the kernel's unsigned int it cannot wrap around on a huge group size.
            var g = start
            while g <= end {
                for b in g..<min(end + 1, g + used) { bits[b] = true }
                g += group
            }
        }
        cpus = bits.indices.filter { bits[$0] }
    }

    public init(_ cpus: [Int]) { self.cpus = Array(Set(cpus)).sorted() }

    /// The normalized list: sorted, each run of consecutive CPUs as a range (`1-3,7`).
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
