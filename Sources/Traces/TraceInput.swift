import Foundation

/// Where a recording comes from, and the bytes of its text, read in fixed-size chunks
/// (constant memory whatever the file's length).
///
/// Compressed files are recognised by their first bytes (not their name) and read
/// through the system's decompressor (`xz -dc`, `gzip -dc`), a trace-cmd `.dat` through
/// `trace-cmd report`: what those tools do well is not written again here. A
/// decompressor that fails (a truncated or corrupt file) is an error naming the file.
public final class TraceInput {
    /// What the first bytes said.
    public enum Container: String, Sendable, Codable {
        case plain, xz, gzip
        case traceDat = "trace-cmd-dat"
    }

    public struct Failure: Error, CustomStringConvertible, Sendable {
        public var input: String
        public var message: String
        public var description: String { "\(input): \(message)" }
    }

    /// The name given (a path, or "-" for standard input).
    public let name: String
    public private(set) var container: Container = .plain
    /// The number of bytes of text delivered so far.
    public private(set) var bytesRead: Int = 0

    private var fd: Int32
    private var ownsFD: Bool
    private var child: Process?
    private var childError: Pipe?
    private var tool = ""
    /// Bytes read while sniffing the container, delivered first.
    private var pending: [UInt8] = []

    /// The size of one read. Lines longer than `TraceLimits.lineBytesMax` are refused
    /// by the line splitter, so a chunk always holds at least one line's worth.
    public static let chunkBytes = 1 << 20

    /// Opens `name` ("-" for standard input) and starts the decompressor or
    /// `trace-cmd report` the first bytes call for.
    public init(_ name: String) throws(Failure) {
        self.name = name
        if name == "-" {
            fd = 0
            ownsFD = false
        } else {
            var st = stat()
            guard stat(name, &st) == 0 else { throw Failure(input: name, message: "cannot open: \(TraceInput.describe(errno))") }
            guard (st.st_mode & S_IFMT) != S_IFDIR else { throw Failure(input: name, message: "is a directory; expected a trace file") }
            fd = open(name, O_RDONLY | O_CLOEXEC)
            guard fd >= 0 else { throw Failure(input: name, message: "cannot open: \(TraceInput.describe(errno))") }
            ownsFD = true
        }
        // Sniff: xz FD 37 7A 58 5A 00, gzip 1F 8B, trace-cmd 17 08 44 "tracing".
        let want = 10
        var head = [UInt8](repeating: 0, count: want)
        var got = 0
        while got < want {
            let n = head.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress! + got, want - got) }
            if n < 0 { if errno == EINTR { continue }; throw Failure(input: name, message: "cannot read: \(TraceInput.describe(errno))") }
            if n == 0 { break }
            got += n
        }
        head.removeSubrange(got...)
        if head.starts(with: [0xFD, 0x37, 0x7A, 0x58, 0x5A, 0x00]) {
            container = .xz
        } else if head.starts(with: [0x1F, 0x8B]) {
            container = .gzip
        } else if head.starts(with: [0x17, 0x08, 0x44]) && head.count >= 10 && Array(head[3..<10]) == Array("tracing".utf8) {
            container = .traceDat
        }
        guard container != .plain else {
            pending = head
            return
        }
        guard name != "-" else {
            throw Failure(input: name, message: "standard input holds \(container.rawValue) data; pass the file's name, or decompress it first (xz -dc FILE | cpuflags analyze -)")
        }
        close(fd)
        ownsFD = false
        try startTool()
    }

    deinit {
        if ownsFD { close(fd) }
        if let child, child.isRunning { child.terminate() }
    }

    private func startTool() throws(Failure) {
        let p = Process()
        let args: [String]
        switch container {
        case .xz: (tool, args) = ("xz", ["-dc", "--", name])
        case .gzip: (tool, args) = ("gzip", ["-dc", "--", name])
        case .traceDat: (tool, args) = ("trace-cmd", ["report", "-i", name])
        case .plain: return
        }
        guard let path = TraceInput.findExecutable(tool) else {
            let how = container == .traceDat
                ? "a trace-cmd .dat file; reading it needs 'trace-cmd report' (Debian: apt-get install trace-cmd), which is not installed"
                : "\(container.rawValue)-compressed; reading it needs '\(tool)', which is not installed"
            throw Failure(input: name, message: how)
        }
        p.executableURL = URL(fileURLWithPath: path)
        p.arguments = args
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        p.standardInput = FileHandle.nullDevice
        do { try p.run() } catch { throw Failure(input: name, message: "cannot run \(tool): \(error)") }
        child = p
        childError = err
        fd = out.fileHandleForReading.fileDescriptor
    }

    /// `tool` in the directories of PATH (or /usr/bin:/bin when PATH is not set).
    static func findExecutable(_ tool: String) -> String? {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        for dir in path.split(separator: ":") {
            let candidate = "\(dir)/\(tool)"
            if access(candidate, X_OK) == 0 { return candidate }
        }
        return nil
    }

    /// Reads up to `buffer.count` bytes into `buffer`; 0 at the end. At the end of a
    /// decompressor's output, its exit status is checked: a truncated or corrupt file
    /// is an error naming it.
    public func read(into buffer: UnsafeMutableRawBufferPointer) throws(Failure) -> Int {
        if !pending.isEmpty {
            let n = min(pending.count, buffer.count)
            pending.withUnsafeBytes { buffer.baseAddress!.copyMemory(from: $0.baseAddress!, byteCount: n) }
            pending.removeFirst(n)
            bytesRead += n
            return n
        }
        while true {
            let n = Glibc.read(fd, buffer.baseAddress!, buffer.count)
            if n < 0 {
                if errno == EINTR { continue }
                throw Failure(input: name, message: "cannot read: \(TraceInput.describe(errno))")
            }
            if n == 0 { try finishTool() }
            bytesRead += n
            return n
        }
    }

    private func finishTool() throws(Failure) {
        guard let p = child else { return }
        child = nil
        p.waitUntilExit()
        guard p.terminationStatus != 0 || p.terminationReason != .exit else { return }
        let said = String(decoding: childError?.fileHandleForReading.readDataToEndOfFile() ?? Data(), as: UTF8.self)
            .split(separator: "\n").prefix(3).joined(separator: "; ")
        let what = container == .traceDat ? "trace-cmd report failed" : "truncated or corrupt \(container.rawValue) data"
        throw Failure(input: name, message: "\(what) (\(tool) exited with status \(p.terminationStatus)\(said.isEmpty ? "" : ": \(said)"))")
    }

    static func describe(_ e: Int32) -> String { String(cString: strerror(e)) }
}
