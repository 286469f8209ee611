import CPUFlags
import Foundation
import Simulator
import Testing

@testable import Traces

/// The fixtures: small excerpts of real recordings (Fixtures/README.md says which).
enum Fixture {
    static let dir = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures")
    static func path(_ name: String) -> String { dir.appendingPathComponent(name).path }
    /// The shared recordings of the brief (../shared/traces), when this checkout has them.
    static let sharedTraces: URL = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("shared/traces")
    static var sharedTraceFiles: [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: sharedTraces.path)) ?? [])
            .filter { $0.hasSuffix(".xz") }.sorted().map { sharedTraces.appendingPathComponent($0).path }
    }
}

/// A scratch directory for files a test writes.
struct Scratch {
    let dir: URL
    init() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("cpuflags-traces-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    }
    func file(_ name: String, _ text: String) -> String { file(name, Data(text.utf8)) }
    func file(_ name: String, _ data: Data) -> String {
        let path = dir.appendingPathComponent(name).path
        _ = FileManager.default.createFile(atPath: path, contents: data)
        return path
    }
    func remove() { try? FileManager.default.removeItem(at: dir) }
}

/// The outcome of analysing a file: the report and every request, or the error text.
struct Outcome {
    var report: AnalysisReport?
    var requests: [IPIRequest] = []
    var warnings: [String] = []
    var error: String?
    var analysis: Analysis
}

func analyze(_ path: String, isolated: [Int]? = nil, policies: [Policy] = Policy.allCases, mutations: Mutations = [],
             catalog: CallbackCatalog? = nil, badLinesMax: Int = TraceLimits.badLinesDefault) throws -> Outcome {
    var options = Analysis.Options()
    options.isolated = isolated
    options.policies = policies
    options.mutations = mutations
    options.badLinesMax = badLinesMax
    let a = Analysis(options: options, catalog: try catalog ?? CallbackCatalog.builtIn())
    var o = Outcome(analysis: a)
    var reqs: [IPIRequest] = []
    var warnings: [String] = []
    a.onRequest = { reqs.append($0) }
    a.onWarning = { warnings.append($0) }
    do {
        let input = try TraceInput(path)
        try a.run(input)
        o.report = a.report(input: path)
    } catch {
        o.error = "\(error)"
    }
    o.requests = reqs.sorted { $0.id < $1.id }
    o.warnings = warnings
    return o
}

/// Analyses `text` written to a scratch file.
func analyze(text: String, isolated: [Int]? = nil, policies: [Policy] = Policy.allCases, mutations: Mutations = [],
             catalog: CallbackCatalog? = nil, badLinesMax: Int = TraceLimits.badLinesDefault) throws -> Outcome {
    let s = try Scratch()
    defer { s.remove() }
    return try analyze(s.file("t.txt", text), isolated: isolated, policies: policies, mutations: mutations,
                       catalog: catalog, badLinesMax: badLinesMax)
}

/// Runs a shell command, returning its standard output.
func shell(_ command: String) throws -> (status: Int32, out: String) {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/bin/sh")
    p.arguments = ["-c", command]
    let pipe = Pipe()
    p.standardOutput = pipe
    p.standardError = FileHandle.nullDevice
    try p.run()
    let data = pipe.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    return (p.terminationStatus, String(decoding: data, as: UTF8.self))
}

func hasTool(_ name: String) -> Bool { (try? shell("command -v \(name)").status) == 0 }

/// A synthetic recording in raw ftrace form: header plus `events`, each
/// "(task-pid, cpu, flags, seconds, event, fields)".
func ftrace(_ events: [(String, Int, String, Double, String, String)], cpus: Int = 2) -> String {
    var s = "# tracer: nop\n#\n# entries-in-buffer/entries-written: \(events.count)/\(events.count)   #P:\(cpus)\n#\n"
    for (task, cpu, flags, t, name, fields) in events {
        s += String(format: "%16@ [%03d] %@ %12.6f: %@: %@\n", task, cpu, flags, t, name, fields)
    }
    return s
}
