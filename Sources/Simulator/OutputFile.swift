import Foundation

/// A file the simulator writes (`--svg`, `--trace`, ...): created (or truncated) when
/// opened, so a path that cannot be written fails before any work is done, and every
/// error names the path and the reason (the errno's name and strerror).
public final class OutputFile {
    public struct Failure: Error, CustomStringConvertible, Sendable {
        public var path: String
        /// What was being done: "cannot create the file", "cannot write the file", ...
        public var what: String
        public var errno: Int32
        public var description: String { "\(path): \(what): \(OutputFile.describe(errno: errno))" }
    }

    public let path: String
    private var fd: Int32

    /// Creates `path` (mode 0666 less the umask) or truncates it, for writing.
    public init(creating path: String) throws(Failure) {
        self.path = path
        fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o666)
        guard fd >= 0 else { throw Failure(path: path, what: "cannot create the file", errno: errno) }
    }

    /// Standard output, through the same writer (closing it leaves fd 1 open).
    public init(standardOutput: ()) {
        path = "standard output"
        fd = 1
        ownsFD = false
    }

    private var ownsFD = true

    deinit { if fd >= 0 && ownsFD { _ = Glibc.close(fd) } }

    /// Writes all of `data` (retrying short writes and EINTR).
    public func write(_ data: Data) throws(Failure) {
        var failure: Int32 = 0
        data.withUnsafeBytes { (raw: UnsafeRawBufferPointer) in
            var done = 0
            while done < raw.count {
                let n = Glibc.write(fd, raw.baseAddress! + done, raw.count - done)
                if n < 0 {
                    if errno == EINTR { continue }
                    failure = errno
                    return
                }
                done += n
            }
        }
        if failure != 0 { throw Failure(path: path, what: "cannot write the file", errno: failure) }
    }

    /// Closes the file; a close that fails (NFS, a full disk) is a write error too.
    public func close() throws(Failure) {
        guard fd >= 0 else { return }
        guard ownsFD else { fd = -1; return }
        let r = Glibc.close(fd)
        fd = -1
        if r != 0 { throw Failure(path: path, what: "cannot write the file", errno: errno) }
    }

    /// Creates `path` and writes `data` to it.
    public static func write(_ data: Data, to path: String) throws(Failure) {
        let f = try OutputFile(creating: path)
        try f.write(data)
        try f.close()
    }

    /// Checks, without creating or changing anything, that `path` could be created or
    /// overwritten: an existing file must not be a directory and must be writable; else
    /// its directory must exist, be a directory and be writable. (Run before a long
    /// simulation, so that a bad path fails at once, not after the work.)
    public static func checkWritable(_ path: String) throws(Failure) {
        func fail(_ code: Int32) -> Failure { Failure(path: path, what: "cannot create the file", errno: code) }
        if path.isEmpty { throw fail(ENOENT) }
        var st = stat()
        if stat(path, &st) == 0 {
            if (st.st_mode & S_IFMT) == S_IFDIR { throw fail(EISDIR) }
            if access(path, W_OK) != 0 { throw fail(errno) }
            return
        }
        let statErrno = errno
        if statErrno != ENOENT { throw fail(statErrno) }
        let dir = (path as NSString).deletingLastPathComponent
        let parent = dir.isEmpty ? "." : dir
        guard stat(parent, &st) == 0 else { throw fail(errno) }
        if (st.st_mode & S_IFMT) != S_IFDIR { throw fail(ENOTDIR) }
        if access(parent, W_OK | X_OK) != 0 { throw fail(errno) }
    }

    /// "ENOENT (No such file or directory)": the errno's name, for searching, and its text.
    public static func describe(errno code: Int32) -> String {
        let names: [Int32: String] = [
            EPERM: "EPERM", ENOENT: "ENOENT", EIO: "EIO", EBADF: "EBADF", EACCES: "EACCES", EEXIST: "EEXIST",
            ENOTDIR: "ENOTDIR", EISDIR: "EISDIR", EINVAL: "EINVAL", EMFILE: "EMFILE", ENFILE: "ENFILE",
            EFBIG: "EFBIG", ENOSPC: "ENOSPC", EROFS: "EROFS", ELOOP: "ELOOP", ENAMETOOLONG: "ENAMETOOLONG",
            EDQUOT: "EDQUOT", ETXTBSY: "ETXTBSY", ENXIO: "ENXIO", EPIPE: "EPIPE", ENOMEM: "ENOMEM",
            EBUSY: "EBUSY", ENODEV: "ENODEV", ENOTEMPTY: "ENOTEMPTY", ESRCH: "ESRCH", EAGAIN: "EAGAIN",
            ENOTSUP: "ENOTSUP",
        ]
        let text = String(cString: strerror(code))
        return "\(names[code] ?? "errno \(code)") (\(text))"
    }
}

/// JSON for the user: pretty, keys sorted; a value JSON cannot hold (a non-finite Double)
/// is an error that says so, not a crash.
public enum JSONText {
    public struct Failure: Error, CustomStringConvertible, Sendable {
        public var reason: String
        public var description: String { "cannot encode the results as JSON: \(reason)" }
    }

    public static func render<T: Encodable>(_ value: T) throws(Failure) -> String {
        let enc = JSONEncoder()
        enc.outputFormatting = [.prettyPrinted, .sortedKeys]
        do {
            return String(decoding: try enc.encode(value), as: UTF8.self)
        } catch let EncodingError.invalidValue(v, ctx) {
            let path = ctx.codingPath.map(\.stringValue).joined(separator: ".")
            throw Failure(reason: "\(path.isEmpty ? "a value" : "'\(path)'"): \(v) is not a finite number (JSON has no NaN or infinity)")
        } catch {
            throw Failure(reason: "\(error)")
        }
    }
}
