import CPUFlags
import Foundation

/// Which work kind each cross-CPU callback is (`callbacks.catalog`, a data file users
/// extend with their own). The kind's class, and so every policy's possible routes,
/// comes from the protocol core (`WorkKind.workClass`): the catalog only names kinds.
public struct CallbackCatalog: Sendable {
    public struct Entry: Sendable, Codable, Hashable {
        public var callback: String
        public var kind: WorkKind
        public var note: String
        /// Where the entry comes from ("FILE:LINE").
        public var source: String
    }

    public private(set) var entries: [String: Entry] = [:]

    public init() {}

    public struct Failure: Error, CustomStringConvertible {
        public var message: String
        public var description: String { message }
    }

    /// The catalog shipped with cpuflags (`Sources/Traces/callbacks.catalog`).
    public static func builtIn() throws -> CallbackCatalog {
        var c = CallbackCatalog()
        try c.add(text: try String(contentsOf: builtInURL(), encoding: .utf8), source: "callbacks.catalog")
        return c
    }

    /// Finds the shipped file: in the resource bundle SwiftPM builds next to the
    /// executable (or test bundle), else in the source tree this was built from.
    static func builtInURL() throws -> URL {
        let name = "callbacks.catalog"
        var candidates: [URL] = []
        let exe = URL(fileURLWithPath: CommandLine.arguments.first ?? ".").resolvingSymlinksInPath().deletingLastPathComponent()
        for dir in [Bundle.main.bundleURL, exe, exe.deletingLastPathComponent()] {
            candidates.append(dir.appendingPathComponent("cpuflags_Traces.resources").appendingPathComponent(name))
        }
        candidates.append(URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent(name))
        if let found = candidates.first(where: { FileManager.default.fileExists(atPath: $0.path) }) { return found }
        throw Failure(message: "the built-in callback catalog (\(name)) is not next to the executable nor in the source tree; looked in: \(candidates.map(\.path).joined(separator: ", "))")
    }

    /// Adds the entries of a catalog file (they replace entries of the same callback).
    public mutating func add(file path: String) throws {
        let text: String
        do { text = try String(contentsOfFile: path, encoding: .utf8) } catch {
            throw Failure(message: "\(path): cannot read the catalog: \((error as NSError).localizedDescription)")
        }
        try add(text: text, source: path)
    }

    public mutating func add(text: String, source: String) throws {
        for (i, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false)[0]
            let words = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
            if words.isEmpty { continue }
            let at = "\(source):\(i + 1)"
            guard words.count >= 2 else {
                throw Failure(message: "\(at): expected 'CALLBACK KIND [NOTE...]', got '\(line.trimmingCharacters(in: .whitespaces))'")
            }
            guard let kind = WorkKind(rawValue: String(words[1])) else {
                throw Failure(message: "\(at): unknown kind '\(words[1])' for \(words[0]); expected one of: \(WorkKind.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            entries[String(words[0])] = Entry(callback: String(words[0]), kind: kind, note: words.dropFirst(2).joined(separator: " "), source: at)
        }
    }

    public func kind(of callback: String) -> WorkKind? { entries[callback]?.kind }
}

extension WorkClass {
    /// The catalog's words for a class (README, tables, JSON).
    public var catalogName: String {
        switch self {
        case .deferrable: return "deferrable"
        case .onBehalf: return "on-behalf-while-pinned"
        case .rcuIdleSkips: return "skipped-while-rcu-idle"
        case .wakesByBit: return "wake-by-bit-if-polling"
        case .mustInterrupt: return "must-interrupt"
        }
    }
}
