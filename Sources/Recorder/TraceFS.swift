import Foundation

/// Reading and writing tracefs control files, and finding (or mounting) tracefs.
///
/// tracefs files are not ordinary files: they report a size of 0, so they are read until
/// EOF rather than by their size; and each write() is parsed as one command, so a value
/// is written with a single write() call (a value split over two writes could be read
/// by the kernel as two values).
public enum TraceFS {
    /// Where tracefs lives on current kernels, and where it lived under debugfs before 4.1.
    public static let standardRoot = "/sys/kernel/tracing"
    public static let debugfsRoot = "/sys/kernel/debug/tracing"

    /// Reads the whole file (to EOF, in chunks).
    public static func read(_ path: String) throws(RecorderError) -> Data {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw RecorderError(.tracefs, path, "cannot open for reading", errno: errno) }
        defer { close(fd) }
        var data = Data()
        let chunk = 1 << 20
        var buffer = [UInt8](repeating: 0, count: chunk)
        while true {
            let n = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, chunk) }
            if n < 0 {
                if errno == EINTR { continue }
                throw RecorderError(.tracefs, path, "cannot read", errno: errno)
            }
            if n == 0 { break }
            data.append(buffer, count: n)
        }
        return data
    }

    /// The file's text, without the trailing newline.
    public static func readText(_ path: String) throws(RecorderError) -> String {
        let text = String(decoding: try read(path), as: UTF8.self)
        return text.hasSuffix("\n") ? String(text.dropLast()) : text
    }

    /// Writes `value` in one write(). The file is opened with O_TRUNC: that is what
    /// `echo > trace` does, and it is how the `trace` file is cleared; other tracefs files
    /// ignore it (and a fake tracefs of regular files then holds just the new value).
    public static func write(_ value: String, to path: String) throws(RecorderError) {
        let shown = value.isEmpty ? "an empty line" : "'\(value)'"
        let fd = open(path, O_WRONLY | O_TRUNC | O_CLOEXEC)
        guard fd >= 0 else { throw RecorderError(.tracefs, path, "cannot open to write \(shown)", errno: errno) }
        defer { close(fd) }
        let bytes = Array(value.utf8)
        // An empty write() is a no-op for the kernel; truncating at open already cleared
        // the buffer, which is the only empty value written.
        guard !bytes.isEmpty else { return }
        while true {
            let n = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            if n < 0 { throw RecorderError(.tracefs, path, "cannot write \(shown)", errno: errno) }
            if n != bytes.count { throw RecorderError(.tracefs, path, "short write of \(shown) (\(n) of \(bytes.count) bytes)") }
            return
        }
    }

    public static func exists(_ path: String) -> Bool { access(path, F_OK) == 0 }

    public static func isDirectory(_ path: String) -> Bool {
        var st = stat()
        return stat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFDIR
    }

    /// The value a setting file shows, as it would be written back: `trace_clock` lists
    /// every clock with the current one in brackets ("[local] global mono"); an unused
    /// top-level `buffer_size_kb` reads "7 (expanded: 1408)", where 1408 is the size the
    /// buffer takes when tracing starts, so that is what is restored.
    public static func currentValue(ofSetting text: String) -> String {
        if let open = text.firstIndex(of: "["), let close = text[open...].firstIndex(of: "]") {
            return String(text[text.index(after: open)..<close])
        }
        if let r = text.range(of: "(expanded: ") {
            let rest = text[r.upperBound...]
            return String(rest.prefix { $0.isNumber })
        }
        return text.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// Finds a usable tracefs: `/sys/kernel/tracing` (mounting tracefs there if it is not
    /// mounted, as `mount -t tracefs nodev /sys/kernel/tracing` does), else the old
    /// debugfs path. `mounted` is true when this call did the mount (it is left mounted:
    /// a mount is not a tracing setting, and unmounting could pull tracefs from under
    /// another tool that started using it meanwhile).
    public static func locate(progress: (String) -> Void) throws(RecorderError) -> (root: String, mounted: Bool) {
        let root = standardRoot
        if exists(root + "/trace") { return (root, false) }
        var tried: [String] = []
        if isDirectory(root) {
            if mount("nodev", root, "tracefs", 0, nil) == 0 {
                if exists(root + "/trace") {
                    progress("mounted tracefs at \(root) (left mounted)")
                    return (root, true)
                }
                tried.append("mounted tracefs at \(root) but it has no 'trace' file")
            } else {
                tried.append("mount -t tracefs nodev \(root): \(RecorderError.describe(errno: errno))")
            }
        } else {
            tried.append("\(root) is not a directory (kernel without CONFIG_TRACING or no sysfs)")
        }
        // Under debugfs, tracefs is mounted automatically when the directory is reached.
        if exists(debugfsRoot + "/trace") { return (debugfsRoot, false) }
        tried.append("\(debugfsRoot)/trace: \(RecorderError.describe(errno: errno))")
        throw RecorderError(.tracefsUnavailable, "tracefs", "not found and could not be mounted; tried: " + tried.joined(separator: "; "),
                            hint: "needs a kernel with CONFIG_FTRACE and root; mount it with: mount -t tracefs nodev \(root)")
    }

    /// The tracefs path of an event's `enable` file under `dir` (a root or an instance).
    public static func enablePath(_ dir: String, _ event: String) -> String { "\(dir)/events/\(event)/enable" }
}
