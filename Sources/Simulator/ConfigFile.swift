import Foundation

/// A value that does not fit its field: names the field, the value and what was expected.
public struct FieldValueError: Error, CustomStringConvertible, Sendable {
    public var path: String
    public var value: String
    public var expected: String
    public var description: String { "field '\(path)': \(value): expected \(expected)" }
}

extension MachineConfig {
    /// What a field holds. Read off `MachineConfig`'s own stored properties (a `Mirror`),
    /// so a field added to the model (a rate, a cost) is a config field and sweepable at
    /// once, and nothing else is: the simulator's limits are not fields.
    public enum FieldKind: Equatable, Sendable {
        /// A whole number in a range (`cpus`).
        case integer(ClosedRange<Int>)
        /// A whole number from 0 to UInt64.max (`seed`).
        case unsigned
        /// A number checked against the rule for its field (seconds, rate or cost).
        case number
        case boolean
        /// A string (`isolated`, a cpulist).
        case text

        var isNumeric: Bool {
            switch self {
            case .integer, .number: return true
            default: return false
            }
        }
    }

    public struct Field: Sendable {
        /// The JSON path, e.g. `workload.isolatedSyscallsPerSec`.
        public var path: String
        public var kind: FieldKind
    }

    /// The leaves (path, value) of `value`'s stored properties, nested structs flattened.
    static func leaves(_ value: Any, prefix: String = "") -> [(path: String, value: Any)] {
        var out: [(path: String, value: Any)] = []
        for child in Mirror(reflecting: value).children {
            guard let label = child.label else { continue }
            let v = child.value
            if v is Int || v is UInt64 || v is Double || v is Bool || v is String || v is String? {
                out.append((prefix + label, v))
            } else if Mirror(reflecting: v).displayStyle == .struct {
                out += leaves(v, prefix: prefix + label + ".")
            }
        }
        return out
    }

    /// Every field a config file may set, in declaration order.
    public static let fields: [Field] = leaves(MachineConfig()).map { leaf in
        let kind: FieldKind
        switch leaf.value {
        case is Bool: kind = .boolean
        case is Int: kind = .integer(leaf.path == "cpus" ? 2...SimulatorLimits.cpusMax : 0...Int.max)
        case is UInt64: kind = .unsigned
        case is Double: kind = .number
        default: kind = .text
        }
        return Field(path: leaf.path, kind: kind)
    }

    static func field(_ path: String) -> Field? { fields.first { $0.path == path } }

    /// The one rule for a numeric field's value: nil if `value` fits, else what was
    /// expected. Config files, options, sweep values and `validate()` all use it.
    public static func problem(field: Field, value: Double) -> String? {
        switch field.kind {
        case .integer(let range):
            guard let i = Int(exactly: value), range.contains(i) else {
                return "a whole number from \(range.lowerBound) to \(range.upperBound)"
            }
        case .unsigned:
            guard UInt64(exactly: value) != nil else { return "a whole number from 0 to \(UInt64.max)" }
        case .boolean:
            guard value == 0 || value == 1 else { return "0 or 1 (false or true)" }
        case .number:
            if field.path == "seconds" {
                guard value.isFinite, value >= SimulatorLimits.secondsMin, value <= SimulatorLimits.secondsMax else {
                    return "a number of seconds from \(show(SimulatorLimits.secondsMin)) to \(show(SimulatorLimits.secondsMax)) (the simulated clock counts nanoseconds and the model resolves nothing shorter than 1 ms)"
                }
            } else if field.path.hasSuffix("PerSec") {
                guard value.isFinite, value >= 0, value <= SimulatorLimits.ratePerSecondMax else {
                    return "a finite rate from 0 to \(show(SimulatorLimits.ratePerSecondMax)) per second (the simulator's limit)"
                }
            } else {
                guard value.isFinite, value >= 0, value <= SimulatorLimits.costNsMax else {
                    return "a finite number from 0 to \(show(SimulatorLimits.costNsMax)) (ns; the simulator's limit)"
                }
            }
        case .text:
            return nil
        }
        return nil
    }

    /// A number as a user wrote it: whole numbers without a fraction.
    static func show(_ d: Double) -> String {
        if d.isFinite, d == d.rounded(), abs(d) < 1e15 { return String(Int64(d)) }
        return "\(d)"
    }

    /// The numeric value of the field at `path` (a Bool as 0 or 1).
    func numericValue(at path: String) -> Double? {
        guard let v = MachineConfig.leaves(self).first(where: { $0.path == path })?.value else { return nil }
        switch v {
        case let i as Int: return Double(i)
        case let u as UInt64: return Double(u)
        case let d as Double: return d
        case let b as Bool: return b ? 1 : 0
        default: return nil
        }
    }

    /// Every parameter a sweep may vary, by its JSON path: the numbers and the booleans
    /// (swept as 0 and 1), not the seed (a sweep compares one workload, not samples).
    public static var sweepable: [String] {
        fields.filter { $0.kind != .unsigned && $0.kind != .text }.map(\.path).sorted()
    }

    /// This config with the field at `path` (e.g. `workload.isolatedSyscallsPerSec`) set to
    /// `value`, checked against the field's rule (a whole number for `cpus`, 0 or 1 for a
    /// boolean).
    public func setting(_ path: String, to value: Double) throws -> MachineConfig {
        guard let f = MachineConfig.field(path), MachineConfig.sweepable.contains(path) else {
            throw Simulation.SetupError.bad("unknown parameter '\(path)'; expected one of: \(MachineConfig.sweepable.joined(separator: ", "))")
        }
        if let expected = MachineConfig.problem(field: f, value: value) {
            throw FieldValueError(path: path, value: MachineConfig.show(value), expected: expected)
        }
        let converted: Any
        switch f.kind {
        case .integer: converted = Int(exactly: value)!  // checked by problem(field:value:)
        case .boolean: converted = value == 1
        default: converted = value
        }
        return try applying([(path, converted)], source: "\(path)=\(MachineConfig.show(value))")
    }

    /// This config with each (path, value) set; the values are of their field's Swift type.
    func applying(_ values: [(path: String, value: Any)], source: String) throws -> MachineConfig {
        guard var o = try JSONSerialization.jsonObject(with: JSONEncoder().encode(self)) as? [String: Any] else {
            throw Simulation.SetupError.bad("\(source): cannot encode the config")
        }
        func set(_ dict: inout [String: Any], _ parts: ArraySlice<String>, _ value: Any) {
            guard let first = parts.first else { return }
            if parts.count == 1 {
                dict[first] = value
            } else {
                var sub = dict[first] as? [String: Any] ?? [:]
                set(&sub, parts.dropFirst(), value)
                dict[first] = sub
            }
        }
        for (path, value) in values {
            set(&o, ArraySlice(path.split(separator: ".").map(String.init)), value)
        }
        do {
            return try JSONDecoder().decode(MachineConfig.self, from: JSONSerialization.data(withJSONObject: o))
        } catch {
            throw Simulation.SetupError.bad("\(source): \(error)")
        }
    }
}

// MARK: Config files

extension MachineConfig {
    /// Reads a JSON config file: any subset of `MachineConfig`'s fields (nested `workload`
    /// and `costs` objects too) over `base`. Every problem is an error that names the file
    /// and what is wrong: the file (ENOENT, EISDIR, EACCES; too large), the JSON (line and
    /// column; too deep), a field (unknown, with the list of fields; a value that does not
    /// fit, with the value and what was expected).
    public static func load(path: String, over base: MachineConfig = MachineConfig()) throws -> MachineConfig {
        let data = try readConfigFile(path)
        let user = try parseJSON(data, source: path)
        guard let object = user as? [String: Any] else {
            throw Simulation.SetupError.bad("\(path): expected a JSON object at the top level, found \(showJSON(user))")
        }
        var values: [(path: String, value: Any)] = []
        func walk(_ object: [String: Any], prefix: String) throws {
            let here = fields.filter { $0.path.hasPrefix(prefix) }.map { String($0.path.dropFirst(prefix.count)) }
            let names = Array(Set(here.map { String($0.split(separator: ".")[0]) })).sorted()
            // Unknown names first: a field that does not exist (such as a limit) is the
            // problem, whatever the values of the others.
            for k in object.keys.sorted() where !names.contains(k) {
                let what = prefix.isEmpty ? "" : " in '\(prefix.dropLast())'"
                throw Simulation.SetupError.bad("\(path): unknown field '\(prefix + k)'; expected one of\(what): \(names.joined(separator: ", "))")
            }
            for (k, v) in object.sorted(by: { $0.key < $1.key }) {
                let p = prefix + k
                if let f = field(p) {
                    values.append((p, try convert(v, for: f)))
                } else {
                    guard let sub = v as? [String: Any] else {
                        throw Simulation.SetupError.bad("\(path): field '\(p)': \(showJSON(v)): expected an object")
                    }
                    try walk(sub, prefix: p + ".")
                }
            }
        }
        do {
            try walk(object, prefix: "")
        } catch let e as FieldValueError {
            throw Simulation.SetupError.bad("\(path): \(e)")
        }
        return try base.applying(values, source: path)
    }

    /// A JSON value as a value of field `f`'s type, or an error naming the field.
    static func convert(_ v: Any, for f: Field) throws -> Any {
        func bad(_ expected: String) -> FieldValueError {
            FieldValueError(path: f.path, value: showJSON(v), expected: expected)
        }
        let number = v as? NSNumber
        let isBool = number.map(isBoolean) ?? false
        switch f.kind {
        case .text:
            guard let s = v as? String else { throw bad("a string (a kernel cpulist such as \"8-63\")") }
            return s
        case .boolean:
            guard let n = number, isBool else { throw bad("true or false") }
            return n.boolValue
        case .unsigned:
            // Exactly, from the number's own type: a Double cannot hold every UInt64.
            guard let n = number, !isBool, !(n is NSDecimalNumber) else { throw bad("a whole number from 0 to \(UInt64.max)") }
            switch String(cString: n.objCType) {
            case "Q", "L", "I", "S", "C": return n.uint64Value
            case "d", "f":
                guard let u = UInt64(exactly: n.doubleValue) else { throw bad("a whole number from 0 to \(UInt64.max)") }
                return u
            default:
                guard n.int64Value >= 0 else { throw bad("a whole number from 0 to \(UInt64.max)") }
                return UInt64(n.int64Value)
            }
        case .integer, .number:
            guard let n = number, !isBool else {
                throw bad(problem(field: f, value: .nan) ?? "a number")
            }
            let d = n.doubleValue
            if let expected = problem(field: f, value: d) { throw bad(expected) }
            if case .integer = f.kind { return Int(exactly: d)! }  // checked by problem(field:value:)
            return d
        }
    }

    /// JSON booleans come back as NSNumbers of type char ('c'); no JSON number does.
    static func isBoolean(_ n: NSNumber) -> Bool { String(cString: n.objCType) == "c" }

    static func showJSON(_ v: Any) -> String {
        switch v {
        case is NSNull: return "null"
        case let n as NSNumber: return isBoolean(n) ? (n.boolValue ? "true" : "false") : n.description
        case let s as String: return "\"\(s.count > 60 ? String(s.prefix(57)) + "..." : s)\""
        case is [String: Any]: return "an object"
        case is [Any]: return "an array"
        default: return "\(type(of: v))"
        }
    }

    /// The file's bytes: refuses a directory, a missing or unreadable file (with the
    /// errno's name and reason) and a file over `SimulatorLimits.configBytesMax` (checked
    /// from its size before reading, and by reading at most one byte more than the limit,
    /// so a FIFO or /dev/zero cannot make it read without end).
    static func readConfigFile(_ path: String) throws -> Data {
        func bad(_ code: Int32) -> Simulation.SetupError {
            .bad("\(path): cannot read the file: \(OutputFile.describe(errno: code))")
        }
        let limit = SimulatorLimits.configBytesMax
        func tooLarge(_ size: Int) -> Simulation.SetupError {
            .bad("\(path): \(size > limit ? "\(size) bytes" : "more than \(limit) bytes"), more than the limit for a config file (\(limit) bytes, 1 MiB)")
        }
        var st = stat()
        guard stat(path, &st) == 0 else { throw bad(errno) }
        if (st.st_mode & S_IFMT) == S_IFDIR { throw bad(EISDIR) }
        if (st.st_mode & S_IFMT) == S_IFREG && Int(st.st_size) > limit { throw tooLarge(Int(st.st_size)) }
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { throw bad(errno) }
        defer { close(fd) }
        var data = Data()
        var buffer = [UInt8](repeating: 0, count: 65536)
        while data.count <= limit {
            let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                throw bad(errno)
            }
            if n == 0 { break }
            data.append(contentsOf: buffer[0..<n])
        }
        if data.count > limit { throw tooLarge(data.count) }
        return data
    }

    /// Line and column (1-based; the column in characters) of byte `offset` in `data`.
    static func lineAndColumn(_ data: Data, offset: Int) -> (line: Int, column: Int) {
        let bytes = [UInt8](data.prefix(max(0, min(offset, data.count))))
        let line = bytes.reduce(1) { $0 + ($1 == 0x0A ? 1 : 0) }
        let lineStart = (bytes.lastIndex(of: 0x0A).map { $0 + 1 }) ?? 0
        let column = String(decoding: bytes[lineStart...], as: UTF8.self).count + 1
        return (line, column)
    }

    /// Parses JSON with Foundation, after a scan of the nesting depth (refused beyond
    /// `SimulatorLimits.configDepthMax`, where it is); a syntax error gives the line and
    /// column Foundation's byte offset points at.
    static func parseJSON(_ data: Data, source: String) throws -> Any {
        var depth = 0, inString = false, escaped = false
        for (i, b) in data.enumerated() {
            if inString {
                if escaped { escaped = false } else if b == UInt8(ascii: "\\") { escaped = true } else if b == UInt8(ascii: "\"") { inString = false }
                continue
            }
            switch b {
            case UInt8(ascii: "\""): inString = true
            case UInt8(ascii: "{"), UInt8(ascii: "["):
                depth += 1
                if depth > SimulatorLimits.configDepthMax {
                    let (l, c) = lineAndColumn(data, offset: i)
                    throw Simulation.SetupError.bad("\(source): line \(l), column \(c): objects and arrays nested deeper than \(SimulatorLimits.configDepthMax) levels (the limit for a config file)")
                }
            case UInt8(ascii: "}"), UInt8(ascii: "]"): depth = max(0, depth - 1)
            default: break
            }
        }
        if data.allSatisfy({ [0x20, 0x09, 0x0A, 0x0D].contains($0) }) {
            throw Simulation.SetupError.bad("\(source): not valid JSON: the file is empty; expected a JSON object such as {\"cpus\": 128}")
        }
        do {
            return try JSONSerialization.jsonObject(with: data, options: [.fragmentsAllowed])
        } catch {
            let info = (error as NSError).userInfo
            var detail = (info[NSDebugDescriptionErrorKey] as? String) ?? "\(error)"
            // The offset: the documented key if Foundation sets it, else the one its
            // message gives ("Invalid value around character 12.", a 0-based byte offset).
            var offset = info["NSJSONSerializationErrorIndex"] as? Int
            if let r = detail.range(of: #"\s*around character (\d+)\.?"#, options: .regularExpression) {
                let digits = detail[r].filter(\.isNumber)
                if offset == nil { offset = Int(digits) }
                detail.removeSubrange(r)
            }
            guard let offset else { throw Simulation.SetupError.bad("\(source): not valid JSON: \(detail)") }
            let (l, c) = lineAndColumn(data, offset: offset)
            throw Simulation.SetupError.bad("\(source): not valid JSON at line \(l), column \(c): \(detail)")
        }
    }
}
