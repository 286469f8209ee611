import Foundation

/// Recording a trace of IPIs and CPU modes through tracefs (`cpuflags record`).
///
/// `record(_:progress:)` enables the events of `TraceEvent.all` in a tracefs instance of
/// its own, with the mono clock and a buffer sized for the duration, while a workload or
/// a command runs (or for a duration), and writes the text of the instance's `trace`.
/// Every tracefs setting it changes is restored on every way out.
public enum Recorder {
    /// The defaults of `cpuflags record`.
    public static let defaultOutput = "cpuflags-trace.txt"
    public static let defaultDuration = 10.0
    /// The longest recording accepted: a day (the buffer is sized by the duration, up to
    /// its cap, so longer runs would only lose their start).
    public static let durationMax = 86_400.0
    /// Without --duration, a command's buffer is sized for this many seconds.
    public static let commandSizingSeconds = 30.0

    /// Buffer per CPU (buffer_size_kb) for `seconds` of recording. A busy isolated CPU
    /// logs a few thousand events a second (a tick's entry and exit at HZ=1000, plus what
    /// the workload sends), a housekeeping CPU running a paced workload ten times that, at
    /// 30 to 70 bytes an event: 2 MB a second per CPU holds that with room to spare. At
    /// least 4 MB; at most 256 MB per CPU and a quarter of the available memory overall.
    public static func bufferKB(seconds: Double, cpus: Int, memAvailableKB: Int? = memAvailableKB()) -> Int {
        let wanted = Int((seconds * 2048).rounded(.up))
        var cap = 262_144
        if let m = memAvailableKB, cpus > 0 { cap = min(cap, max(4096, m / 4 / cpus)) }
        return min(max(wanted, 4096), cap)
    }

    /// Why a user of effective uid `euid` cannot record (nil for root).
    public static func rootProblem(euid: uid_t) -> RecorderError? {
        guard euid != 0 else { return nil }
        return RecorderError(.notRoot, "cpuflags record", "needs root (effective uid \(euid)): tracefs files can be read and written only by root, and mounting it needs CAP_SYS_ADMIN",
                             hint: "run it with sudo")
    }

    /// MemAvailable of /proc/meminfo, in KB.
    public static func memAvailableKB() -> Int? {
        guard let text = try? String(contentsOfFile: "/proc/meminfo", encoding: .utf8) else { return nil }
        for line in text.split(separator: "\n") where line.hasPrefix("MemAvailable:") {
            return Int(line.split(separator: " ").dropFirst().first ?? "")
        }
        return nil
    }
}

/// An option that cannot be used: the option, the text given and what was expected.
/// `cpuflags record` turns it into a ValidationError (exit 64).
public struct OptionError: Error, CustomStringConvertible, Sendable, Equatable {
    public var option: String
    public var message: String
    public init(_ option: String, _ message: String) {
        self.option = option
        self.message = message
    }
    public var description: String { "\(option) \(message)" }
}

/// Everything a recording needs, checked.
public struct RecordOptions: Sendable {
    /// CPUs the spinners run on (a workload's target), and the others.
    public var isolated: CPUSet
    public var housekeeping: CPUSet
    public var online: CPUSet
    /// Seconds to record; nil means until the command exits.
    public var duration: Double?
    /// A file, or "-" for standard output.
    public var output: String
    public var command: [String]
    public var workload: Workload?
    /// The tracefs mount to use; nil finds (or mounts) the standard one.
    public var tracefsRoot: String?
    public var instanceMode: TraceSession.InstanceMode = .preferred
    public var instanceOps: TraceSession.InstanceOps = .kernel
    public var events: [TraceEvent] = TraceEvent.all
    /// buffer_size_kb; nil sizes it by `Recorder.bufferKB(seconds:cpus:)`.
    public var bufferKB: Int?
    /// Refuse to start unless root (tests with a fake tracefs turn it off).
    public var requireRoot = true
    /// Catch SIGINT/SIGTERM for the recording's length.
    public var trapSignals = true

    public init(isolated: CPUSet, online: CPUSet, duration: Double?, output: String, command: [String] = [],
                workload: Workload? = nil) {
        self.isolated = isolated
        self.online = online
        self.housekeeping = online.subtracting(isolated)
        self.duration = duration
        self.output = output
        self.command = command
        self.workload = workload
    }

    /// Checks the options as typed. Every error names the option and what was expected.
    /// - isolated: a cpulist of online CPUs that leaves at least one housekeeping CPU
    ///   (default: the last online CPU);
    /// - duration: seconds, a number > 0 (default 10, or until COMMAND exits);
    /// - workload and COMMAND are exclusive; COMMAND must be found in PATH;
    /// - the output path must be writable now, before anything is recorded.
    public static func parse(isolated: String?, duration: String?, output: String?, workload: String?, command: [String],
                             online: CPUSet = CPUSet.online(), path: String? = ProcessInfo.processInfo.environment["PATH"]) throws(OptionError) -> RecordOptions {
        var iso: CPUSet
        if let text = isolated {
            do {
                iso = try CPUSet(parsing: text)
                try iso.checkOnline(online, input: text)
            } catch {
                throw OptionError("--isolated", "\(error)")
            }
        } else {
            guard let last = online.cpus.last else { throw OptionError("--isolated", "cannot be defaulted: no CPU is online") }
            iso = CPUSet([last])
        }
        guard !online.subtracting(iso).isEmpty else {
            throw OptionError("--isolated", "'\(isolated ?? iso.description)' covers every online CPU (\(online)): expected at least one CPU left for housekeeping")
        }

        var seconds: Double?
        if let text = duration {
            guard let d = Double(text.trimmingCharacters(in: .whitespaces)), d.isFinite else {
                throw OptionError("--duration", "'\(text)': expected a number of seconds greater than 0, e.g. 5 or 0.5")
            }
            guard d > 0, d <= Recorder.durationMax else {
                throw OptionError("--duration", "'\(text)': expected a number of seconds greater than 0 and at most \(Int(Recorder.durationMax))")
            }
            seconds = d
        }

        var load: Workload?
        if let name = workload {
            guard let w = Workload(rawValue: name) else {
                throw OptionError("--workload", "'\(name)': unknown workload; expected one of: \(Workload.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            load = w
        }
        if load != nil && !command.isEmpty {
            throw OptionError("--workload", "and '-- \(command.joined(separator: " "))' both say what to run: give one, not both")
        }
        if let name = command.first {
            guard !name.isEmpty, ChildProcess.resolve(name, path: path) != nil else {
                throw OptionError("COMMAND", "'\(name)': not found or not executable\(name.contains("/") ? "" : " in PATH"); expected a program to run while recording")
            }
        }
        if command.isEmpty && seconds == nil { seconds = Recorder.defaultDuration }

        let out = output ?? Recorder.defaultOutput
        do { try OutputTarget.checkWritable(out) } catch { throw OptionError("-o/--output", "\(error)") }
        return RecordOptions(isolated: iso, online: online, duration: seconds, output: out, command: command, workload: load)
    }
}

/// What a recording produced.
public struct RecordResult: Sendable {
    /// Event lines written to the output.
    public var events: Int
    /// Events the kernel lost (its buffer was full), and the per-CPU overruns.
    public var lost: Int
    public var overrunPerCPU: [Int: Int]
    public var entriesInBuffer: Int?
    public var entriesWritten: Int?
    /// Required events this kernel does not have (the rest were recorded).
    public var missingEvents: [String]
    public var enabledEvents: [String]
    public var output: String
    /// The tracefs directory recorded in (an instance, or the top level).
    public var tracefsDirectory: String
    public var usedInstance: Bool
    public var bufferKB: Int
    /// Seconds between tracing on and off.
    public var seconds: Double
    /// The signal that ended the recording early (SIGINT, SIGTERM), if one did.
    public var interruptedBy: Int32?
    /// The command's exit code (128 + signal if it was killed).
    public var commandExitCode: Int32?
    /// Whether the recording stopped the command (at --duration or on a signal).
    public var commandStopped: Bool
    public var workloadIterations: Int
    /// Settings that could not be restored (reported, also as warnings on progress).
    public var restoreFailures: [RecorderError]
}

/// Records a trace as `options` say; `progress` gets one line at a time (for stderr).
/// Setup, recording and restore: whatever happens after tracefs was touched (an error,
/// a signal), the settings are restored before this returns or throws.
public func record(_ options: RecordOptions, progress: @escaping (String) -> Void) throws(RecorderError) -> RecordResult {
    if options.requireRoot, let e = Recorder.rootProblem(euid: geteuid()) { throw e }
    // Checked again here (parse checked it too): the API can be called without parse.
    try OutputTarget.checkWritable(options.output)
    let root: String
    if let given = options.tracefsRoot { root = given } else { root = try TraceFS.locate(progress: progress).root }
    if options.instanceMode != .topLevel { TraceSession.removeStaleInstances(root: root, progress: progress) }

    let trap = options.trapSignals ? SignalTrap.install() : nil
    defer { trap?.uninstall() }

    let sizingSeconds = options.duration ?? Recorder.commandSizingSeconds
    let bufferKB = options.bufferKB ?? Recorder.bufferKB(seconds: sizingSeconds, cpus: options.online.cpus.count)
    let session = TraceSession(root: root, mode: options.instanceMode, ops: options.instanceOps)
    var run: WorkloadRun?
    var child: ChildProcess?
    let mainAffinity = Affinity.currentThread()

    // The one way out after setup started: stop what runs, then restore tracefs.
    func cleanUp() -> [RecorderError] {
        var failures: [RecorderError] = []
        child?.terminate()
        if let r = run { failures += r.stop() }
        if options.workload != nil, let a = mainAffinity { try? Affinity.pinCurrentThread(to: a) }
        failures += session.restore()
        return failures
    }

    let recording: TraceSession.Recording
    let seconds: Double
    // Where the recording was made (the session forgets its instance once removed).
    var usedDirectory = root
    var usedInstance = false
    var interrupted: Int32?
    do throws(RecorderError) {
        try session.setup(events: options.events, clock: "mono", bufferKB: bufferKB, progress: progress)
        usedDirectory = session.dir
        usedInstance = session.instance != nil
        let place = session.instance.map { "instance \($0) of \(root)" } ?? "the top level of \(root)"
        progress("recording in \(place): trace_clock mono, buffer_size_kb \(bufferKB) per CPU (\(options.online.cpus.count) CPUs)")
        progress("enabled \(session.enabled.count) events: \(session.enabled.map(\.name).joined(separator: " "))")
        if !session.missing.isEmpty {
            progress("warning: \(session.missing.count) event(s) do not exist on this kernel and are not recorded: \(session.missing.map(\.name).joined(separator: " "))")
        }
        if !session.missingOptional.isEmpty {
            progress("not on this kernel (optional, handler ends): \(session.missingOptional.map(\.name).joined(separator: " "))")
        }

        if let w = options.workload {
            let r = WorkloadRun(workload: w, isolated: options.isolated, housekeeping: options.housekeeping, tracefsRoot: root)
            run = r
            try r.prepare(progress: progress)
            // The recording loop itself runs on the housekeeping CPUs too: only the
            // spinners are on the isolated ones.
            try Affinity.pinCurrentThread(to: options.housekeeping)
        }

        try session.start()
        let started = monotonicSeconds()
        if let r = run {
            // The spinners start once the recording is on: their first syscalls (the
            // affinity change, and the one `spin` makes on its CPU) are recorded, the
            // analyzer's evidence that the spinner then runs in user mode. A spinner
            // already spinning when the recording began would show no such event,
            // and its mode would be reported unknown.
            try r.startSpinners()
            progress("spinner 'spin' on isolated CPU(s) \(options.isolated); \(run!.workload.rawValue) on housekeeping CPU(s) \(options.housekeeping)")
            try r.startWorker()
        }
        if !options.command.isEmpty {
            child = try ChildProcess(options.command, stdoutToStderr: OutputTarget.isStdout(options.output))
            progress("running: \(options.command.joined(separator: " ")) (pid \(child!.pid))")
        }

        var lastReport = started
        while true {
            if let sig = SignalTrap.pending, options.trapSignals {
                interrupted = sig
                progress("\(sig == SIGINT ? "SIGINT" : sig == SIGTERM ? "SIGTERM" : "signal \(sig)"): stopping; what was recorded so far is kept")
                break
            }
            let now = monotonicSeconds()
            let elapsed = now - started
            if let c = child, c.poll() {
                progress("command \(c.statusText) after \(String(format: "%.1f", elapsed)) s")
                break
            }
            if let d = options.duration, elapsed >= d {
                if let c = child { progress("--duration \(Workload.show(d)) s reached: stopping the command"); c.terminate() }
                break
            }
            if let f = run?.failed { throw f }
            if now - lastReport >= 1 {
                lastReport = now
                if let d = options.duration {
                    progress("recording: \(Int((d - elapsed).rounded(.up))) s left")
                } else {
                    progress("recording: \(Int(elapsed)) s (until the command exits)")
                }
            }
            let left = options.duration.map { $0 - elapsed } ?? 0.1
            sleepSeconds(min(0.1, max(0.001, left)))
        }
        // Tracing off before the workload stops, so the trace ends with the load still on.
        try session.stop()
        seconds = monotonicSeconds() - started
        child?.terminate()
        if let r = run {
            let failures = r.stop()
            if let f = failures.first { throw f }
            progress("\(r.workload.rawValue): \(r.iterations.load(ordering: .relaxed)) iterations")
        }
        recording = try session.read(cpus: options.online)
    } catch {
        let failures = cleanUp()
        for f in failures where f != error { progress("warning: while cleaning up: \(f)") }
        throw error
    }
    let restoreFailures = cleanUp()
    for f in restoreFailures { progress("warning: could not restore: \(f)") }
    if restoreFailures.isEmpty {
        progress(usedInstance ? "restored the instance's settings and removed it; the top level was not touched"
                              : "restored every top-level tracefs setting changed")
    }

    if let a = recording.entriesInBuffer, let b = recording.entriesWritten {
        progress("entries: \(a) in buffer, \(b) written")
    }
    if recording.lost > 0 {
        let per = recording.overrunPerCPU.filter { $0.value > 0 }.sorted { $0.key < $1.key }.map { "cpu\($0.key) \($0.value)" }
        progress("warning: the kernel lost \(recording.lost) events: the buffer (\(bufferKB) KB per CPU) filled and the oldest were overwritten\(per.isEmpty ? "" : " (overrun: \(per.joined(separator: ", ")))"); the trace starts later than the recording did")
    }
    try OutputTarget.write(recording.text, to: options.output)
    progress("wrote \(recording.events) events to \(options.output == "-" ? "- (standard output)" : options.output)")

    return RecordResult(events: recording.events, lost: recording.lost, overrunPerCPU: recording.overrunPerCPU,
                        entriesInBuffer: recording.entriesInBuffer, entriesWritten: recording.entriesWritten,
                        missingEvents: session.missing.map(\.name), enabledEvents: session.enabled.map(\.name),
                        output: options.output, tracefsDirectory: usedDirectory, usedInstance: usedInstance, bufferKB: bufferKB, seconds: seconds, interruptedBy: interrupted,
                        commandExitCode: child?.exitCode, commandStopped: child?.stoppedByUs ?? false, workloadIterations: run?.iterations.load(ordering: .relaxed) ?? 0,
                        restoreFailures: restoreFailures)
}
