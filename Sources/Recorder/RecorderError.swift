import Foundation
import Simulator

/// Why a recording could not be made or finished. The description names the file or the
/// setting, what was being done and the errno, so that a user can repeat the step by hand
/// (`echo mono > .../trace_clock`) and see the same failure.
public struct RecorderError: Error, CustomStringConvertible, Sendable, Equatable {
    public enum Kind: Sendable, Equatable {
        /// Not running as root: tracefs files are root-only.
        case notRoot
        /// No tracefs to be found or mounted.
        case tracefsUnavailable
        /// A tracefs file could not be read or written.
        case tracefs
        /// None of the events exists on this kernel.
        case noEvents
        /// A workload could not start or run (mmap, socket, thread...).
        case workload
        /// The `-- COMMAND` could not be started.
        case command
        /// The output file could not be written.
        case output
    }

    public var kind: Kind
    /// The file or setting concerned (a path, or a name such as "COMMAND").
    public var subject: String
    /// What was being done: "cannot write 'mono'", "cannot read", ...
    public var what: String
    public var errno: Int32?
    /// What to do about it, when there is something to say.
    public var hint: String?

    public init(_ kind: Kind, _ subject: String, _ what: String, errno: Int32? = nil, hint: String? = nil) {
        self.kind = kind
        self.subject = subject
        self.what = what
        self.errno = errno
        self.hint = hint
    }

    public var description: String {
        var s = "\(subject): \(what)"
        if let e = errno { s += ": \(RecorderError.describe(errno: e))" }
        if let h = hint { s += " (\(h))" }
        return s
    }

    /// The exit status `cpuflags record` uses for this error (sysexits.h): 77 EX_NOPERM,
    /// 69 EX_UNAVAILABLE, 74 EX_IOERR, 71 EX_OSERR, 73 EX_CANTCREAT.
    public var exitStatus: Int32 {
        switch kind {
        case .notRoot: return 77
        case .tracefsUnavailable, .noEvents, .command: return 69
        case .tracefs: return 74
        case .workload: return 71
        case .output: return 73
        }
    }

    /// "ENOENT (No such file or directory)": the package's one errno describer.
    public static func describe(errno code: Int32) -> String { OutputFile.describe(errno: code) }
}
