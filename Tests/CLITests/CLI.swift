import Foundation
import Testing

/// Runs the built `cpuflags` executable (it sits next to the test bundle: the test target
/// depends on the executable target, so `swift test` builds it first) and captures its
/// exit status, stdout and stderr. Tests of what a user sees go through here: the
/// messages, the exit codes and the files, as a new user would meet them.
struct CLI {
    var status: Int32
    var stdout: String
    var stderr: String

    static var executable: URL {
        var dir = Bundle.main.executableURL ?? URL(fileURLWithPath: CommandLine.arguments[0])
        // On Linux the runner is `<products>/cpuflagsPackageTests.xctest`; walk up until
        // the directory that holds the `cpuflags` executable.
        for _ in 0..<4 {
            dir = dir.deletingLastPathComponent()
            let candidate = dir.appendingPathComponent("cpuflags")
            if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
        }
        return dir.appendingPathComponent("cpuflags")
    }

    /// Runs `cpuflags args...` with `stdin` (default: empty) and waits for it.
    static func run(_ args: [String], stdin: String = "", in directory: URL? = nil, environment: [String: String]? = nil) throws -> CLI {
        let p = Process()
        p.executableURL = executable
        p.arguments = args
        if let environment { p.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 } }
        if let directory { p.currentDirectoryURL = directory }
        // Output goes to files, not pipes: nothing can block on a full pipe, whatever it prints.
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let outURL = dir.appendingPathComponent("stdout"), errURL = dir.appendingPathComponent("stderr")
        let inURL = dir.appendingPathComponent("stdin")
        try stdin.write(to: inURL, atomically: true, encoding: .utf8)
        _ = FileManager.default.createFile(atPath: outURL.path, contents: nil)
        _ = FileManager.default.createFile(atPath: errURL.path, contents: nil)
        let out = try FileHandle(forWritingTo: outURL), err = try FileHandle(forWritingTo: errURL)
        p.standardOutput = out
        p.standardError = err
        p.standardInput = try FileHandle(forReadingFrom: inURL)
        try p.run()
        p.waitUntilExit()
        try out.close()
        try err.close()
        let outData = try Data(contentsOf: outURL), errData = try Data(contentsOf: errURL)
        return CLI(status: p.terminationStatus, stdout: String(decoding: outData, as: UTF8.self),
                   stderr: String(decoding: errData, as: UTF8.self))
    }

    /// A fresh temporary directory for files a test writes.
    static func temporaryDirectory() throws -> URL {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("cpuflags-cli-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        return dir
    }
}

@Test func theExecutableIsThere() throws {
    let r = try CLI.run(["--help"])
    #expect(r.status == 0, "\(CLI.executable.path): \(r.stderr)")
    #expect(r.stdout.contains("verify"))
}
