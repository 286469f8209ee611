import Foundation
import Simulator
import Synchronization

/// SIGINT and SIGTERM during a recording: the handler only notes the signal (an atomic
/// store is async-signal-safe; restoring tracefs from a handler would not be), and the
/// recording loop, which looks at it every 100 ms, stops the workload, restores tracefs
/// and writes what was recorded. The previous handlers come back when it is done.
enum SignalTrap {
    /// The signal received (0: none). Relaxed everywhere: the handler only records the
    /// number, and the recording loop that polls it orders nothing else by it (an atomic
    /// store is async-signal-safe; a lock or an allocation in the handler would not be).
    static let received = Atomic<Int32>(0)

    struct Installed {
        fileprivate var old: [(Int32, sigaction)]
        /// Puts the previous dispositions back.
        func uninstall() {
            for (sig, var action) in old { sigaction(sig, &action, nil) }
        }
    }

    static func install() -> Installed {
        // Touched here, so the lazy global is initialized before a handler can run.
        received.store(0, ordering: .relaxed)
        var old: [(Int32, sigaction)] = []
        for sig in [SIGINT, SIGTERM] {
            var sa = sigaction()
            sa.__sigaction_handler.sa_handler = { sig in SignalTrap.received.store(sig, ordering: .relaxed) }
            sigemptyset(&sa.sa_mask)
            // No SA_RESTART: a sleep is cut short, so the loop sees the signal at once.
            sa.sa_flags = 0
            var previous = sigaction()
            sigaction(sig, &sa, &previous)
            old.append((sig, previous))
        }
        // A closed stdout (`record -o - | head`) must be a write error (EPIPE), not death
        // by SIGPIPE before tracefs is restored.
        var ign = sigaction()
        ign.__sigaction_handler.sa_handler = SIG_IGN
        sigemptyset(&ign.sa_mask)
        var previousPipe = sigaction()
        sigaction(SIGPIPE, &ign, &previousPipe)
        old.append((SIGPIPE, previousPipe))
        return Installed(old: old)
    }

    static var pending: Int32? {
        let s = received.load(ordering: .relaxed)
        return s == 0 ? nil : s
    }
}

/// The `-- COMMAND` of a recording, run as a child process.
final class ChildProcess {
    let pid: pid_t
    let argv: [String]
    private(set) var status: Int32?
    /// Whether we stopped it (at --duration, on a signal or an error), rather than it ending.
    private(set) var stoppedByUs = false

    /// Starts `argv` (looked up in PATH). With `stdoutToStderr`, the child's standard
    /// output goes to standard error: the trace itself is going to standard output.
    init(_ argv: [String], stdoutToStderr: Bool) throws(RecorderError) {
        self.argv = argv
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        if stdoutToStderr { posix_spawn_file_actions_adddup2(&actions, 2, 1) }
        // The child starts with default SIGINT/SIGTERM/SIGPIPE (ours catch or ignore them;
        // a caught signal is reset by exec anyway, an ignored one would be inherited).
        var attr = posix_spawnattr_t()
        posix_spawnattr_init(&attr)
        defer { posix_spawnattr_destroy(&attr) }
        var defaults = sigset_t()
        sigemptyset(&defaults)
        for s in [SIGINT, SIGTERM, SIGPIPE] { sigaddset(&defaults, s) }
        posix_spawnattr_setsigdefault(&attr, &defaults)
        posix_spawnattr_setflags(&attr, Int16(POSIX_SPAWN_SETSIGDEF))
        var cargs: [UnsafeMutablePointer<CChar>?] = argv.map { strdup($0) } + [nil]
        defer { for p in cargs { free(p) } }
        var child: pid_t = 0
        let r = posix_spawnp(&child, argv[0], &actions, &attr, &cargs, environ)
        guard r == 0 else { throw RecorderError(.command, "COMMAND '\(argv[0])'", "cannot start it (posix_spawnp)", errno: r) }
        pid = child
    }

    /// Whether the child has exited (reaping it if so).
    func poll() -> Bool {
        if status != nil { return true }
        var st: Int32 = 0
        let r = waitpid(pid, &st, WNOHANG)
        if r == pid { status = st; return true }
        if r < 0 && errno != EINTR { status = -1; return true }
        return false
    }

    /// Stops the child: SIGTERM, then SIGKILL if it is still there after `grace` seconds.
    func terminate(grace: Double = 2) {
        guard !poll() else { return }
        stoppedByUs = true
        kill(pid, SIGTERM)
        let deadline = monotonicSeconds() + grace
        while monotonicSeconds() < deadline {
            if poll() { return }
            sleepSeconds(0.02)
        }
        kill(pid, SIGKILL)
        while !poll() { sleepSeconds(0.01) }
    }

    /// "exited with status 3", "killed by signal 15".
    var statusText: String {
        guard let st = status else { return "still running" }
        if st == -1 { return "lost (waitpid failed)" }
        let sig = st & 0x7F
        if sig == 0 { return "exited with status \((st >> 8) & 0xFF)" }
        return "killed by signal \(sig)"
    }

    /// The exit status to report: its own, or 128 + the signal that killed it.
    var exitCode: Int32? {
        guard let st = status, st != -1 else { return nil }
        let sig = st & 0x7F
        return sig == 0 ? (st >> 8) & 0xFF : 128 + sig
    }

    /// Where `name` would be run from, looked up the way posix_spawnp does; nil if nowhere.
    static func resolve(_ name: String, path: String? = ProcessInfo.processInfo.environment["PATH"]) -> String? {
        if name.contains("/") { return access(name, X_OK) == 0 ? name : nil }
        for dir in (path ?? "/usr/bin:/bin").split(separator: ":", omittingEmptySubsequences: false) {
            let candidate = (dir.isEmpty ? "." : String(dir)) + "/" + name
            var st = stat()
            if stat(candidate, &st) == 0, (st.st_mode & S_IFMT) != S_IFDIR, access(candidate, X_OK) == 0 { return candidate }
        }
        return nil
    }
}

/// Where the trace goes: a file, or standard output for "-".
public enum OutputTarget {
    public static func isStdout(_ path: String) -> Bool { path == "-" }

    /// Checks, without creating or changing anything, that `path` could be created or
    /// overwritten (done before recording, so a bad path fails before any tracing): an
    /// existing file must not be a directory and must be writable; else its directory
    /// must exist and be writable.
    public static func checkWritable(_ path: String) throws(RecorderError) {
        if isStdout(path) { return }
        do { try OutputFile.checkWritable(path) } catch {
            throw RecorderError(.output, path, error.what, errno: error.errno)
        }
    }

    /// Writes `data` to `path` (created or truncated), or to standard output, through
    /// the package's one file writer (`OutputFile`).
    public static func write(_ data: Data, to path: String) throws(RecorderError) {
        do {
            let f = isStdout(path) ? OutputFile(standardOutput: ()) : try OutputFile(creating: path)
            try f.write(data)
            try f.close()
        } catch {
            throw RecorderError(.output, error.path, error.what, errno: error.errno)
        }
    }
}
