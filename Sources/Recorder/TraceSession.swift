import Foundation

/// The events `cpuflags record` enables (BRIEF §5): who sends IPIs and what for
/// (ipi_send_*, csd_queue_cpu and the csd function it runs), where they land (the
/// call-function and reschedule vectors, the handlers' entry and exit), and the mode the
/// target CPU was in (user after sys_exit or a page fault, idle, a switch, a timer tick).
public struct TraceEvent: Hashable, Sendable, CustomStringConvertible {
    /// "system/event", as under `events/`.
    public var name: String
    /// An optional event is enabled when the kernel has it; its absence is not reported
    /// as missing (it only lets the analyzer see where a handler ends).
    public var optional: Bool

    public init(_ name: String, optional: Bool = false) {
        self.name = name
        self.optional = optional
    }

    public var description: String { name }

    public static let required: [TraceEvent] = [
        "ipi/ipi_send_cpu", "ipi/ipi_send_cpumask", "csd/csd_queue_cpu", "csd/csd_function_entry",
        "csd/csd_function_exit", "irq_vectors/call_function_entry", "irq_vectors/call_function_single_entry",
        "irq_vectors/reschedule_entry", "irq_vectors/local_timer_entry", "irq_vectors/local_timer_exit",
        "irq/irq_handler_entry", "raw_syscalls/sys_enter", "raw_syscalls/sys_exit", "exceptions/page_fault_user",
        "power/cpu_idle", "sched/sched_switch", "tlb/tlb_flush",
    ].map { TraceEvent($0) }

    public static let handlerExits: [TraceEvent] = [
        "irq/irq_handler_exit", "irq_vectors/call_function_exit", "irq_vectors/call_function_single_exit",
        "irq_vectors/reschedule_exit",
    ].map { TraceEvent($0, optional: true) }

    /// Every event a recording asks for, in the order they are enabled.
    public static let all: [TraceEvent] = required + handlerExits
}

/// One recording's use of tracefs: a directory (an instance of its own, or the top level
/// when the kernel has no instances), the settings changed in it, and how to undo them.
///
/// Every change goes through `set(_:to:)`, which reads the file's value first and keeps it
/// in a journal; `restore()` writes the journal back in reverse order, so the settings are
/// undone in the opposite order to how they were made (events off before tracing is
/// turned back on). `restore()` runs on every way out: after a recording, after an error
/// in the middle of `setup`, after a signal; it is idempotent.
public final class TraceSession {
    /// Whether to record in an instance of our own.
    public enum InstanceMode: Sendable, Equatable {
        /// An instance if the kernel can make one, else the top level (with a warning).
        case preferred
        /// Only an instance: fail if none can be made.
        case required
        /// The top level, the way trace-cmd and the reference script do.
        case topLevel
    }

    /// How an instance directory is made and removed. On tracefs a mkdir in `instances/`
    /// creates a whole tracing directory and rmdir tears it down; a test's fake tracefs
    /// replaces these with functions that build and remove the fake files.
    public struct InstanceOps: Sendable {
        public var make: @Sendable (String) throws(RecorderError) -> Void
        public var remove: @Sendable (String) throws(RecorderError) -> Void
        public init(make: @escaping @Sendable (String) throws(RecorderError) -> Void,
                    remove: @escaping @Sendable (String) throws(RecorderError) -> Void) {
            self.make = make
            self.remove = remove
        }

        public static let kernel = InstanceOps(
            make: { (path: String) throws(RecorderError) in
                guard mkdir(path, 0o755) == 0 else { throw RecorderError(.tracefs, path, "cannot create the instance (mkdir)", errno: errno) }
            },
            remove: { (path: String) throws(RecorderError) in
                guard rmdir(path) == 0 else { throw RecorderError(.tracefs, path, "cannot remove the instance (rmdir)", errno: errno) }
            })
    }

    /// The tracefs mount (or a fake one).
    public let root: String
    /// Where the recording happens: `root/instances/NAME`, or `root` itself.
    public private(set) var dir: String
    /// The instance's name, when recording in one.
    public private(set) var instance: String?
    public let instanceName: String
    public let mode: InstanceMode
    public let ops: InstanceOps

    /// The events enabled, and the required ones this kernel does not have.
    public private(set) var enabled: [TraceEvent] = []
    public private(set) var missing: [TraceEvent] = []
    /// Optional events this kernel does not have (not a problem, for the progress line).
    public private(set) var missingOptional: [TraceEvent] = []

    /// The settings changed, in order, with the value each had before.
    public private(set) var journal: [(path: String, original: String)] = []
    /// Whether the buffer may hold events of ours (it is cleared on restore).
    private var bufferUsed = false
    private var restored = false

    public init(root: String, mode: InstanceMode = .preferred, instanceName: String = "cpuflags-\(getpid())",
                ops: InstanceOps = .kernel) {
        self.root = root
        self.dir = root
        self.mode = mode
        self.instanceName = instanceName
        self.ops = ops
    }

    /// Changes a setting file, keeping its value for `restore()`. A file already holding
    /// `value` is not written (and nothing is kept: there is nothing to undo).
    public func set(_ file: String, to value: String) throws(RecorderError) {
        let path = "\(dir)/\(file)"
        let original = TraceFS.currentValue(ofSetting: try TraceFS.readText(path))
        if original == value { return }
        // Kept before writing: if the write fails halfway, writing the original back is
        // harmless, and forgetting a change that did happen is not.
        journal.append((path, original))
        try TraceFS.write(value, to: path)
    }

    /// Makes the instance (or settles for the top level), stops tracing in it, clears it,
    /// and sets the clock, the buffer size and the events. On an error, everything done
    /// so far is undone before the error is thrown.
    public func setup(events: [TraceEvent] = TraceEvent.all, clock: String = "mono", bufferKB: Int,
                      progress: (String) -> Void = { _ in }) throws(RecorderError) {
        do throws(RecorderError) {
            try makeDirectory(progress: progress)
            // Tracing off first, so that nothing is recorded while the rest is set up.
            try set("tracing_on", to: "0")
            if instance == nil { try quietTopLevel(keeping: events, progress: progress) }
            bufferUsed = true
            try TraceFS.write("", to: "\(dir)/trace")
            try set("trace_clock", to: clock)
            try set("buffer_size_kb", to: "\(bufferKB)")
            for e in events {
                let path = TraceFS.enablePath(dir, e.name)
                guard TraceFS.exists(path) else {
                    if e.optional { missingOptional.append(e) } else { missing.append(e) }
                    continue
                }
                try set("events/\(e.name)/enable", to: "1")
                enabled.append(e)
            }
            guard enabled.contains(where: { !$0.optional }) else {
                throw RecorderError(.noEvents, "\(dir)/events", "none of the \(events.filter { !$0.optional }.count) events exists on this kernel (\(missing.map(\.name).joined(separator: ", ")))",
                                    hint: "the kernel needs CONFIG_TRACEPOINTS and the IPI/CSD tracepoints (Linux 6.6 or later)")
            }
        } catch {
            _ = restore()
            throw error
        }
    }

    /// At the top level other tools' settings are in the same place as ours: events that
    /// were already enabled and a tracer other than nop would mix their lines into the
    /// recording, so they are turned off for the recording (and back on by `restore()`).
    private func quietTopLevel(keeping events: [TraceEvent], progress: (String) -> Void) throws(RecorderError) {
        let ours = Set(events.map(\.name))
        var turnedOff: [String] = []
        let eventsDir = "\(dir)/events"
        let systems = (try? FileManager.default.contentsOfDirectory(atPath: eventsDir)) ?? []
        for sys in systems.sorted() where TraceFS.isDirectory("\(eventsDir)/\(sys)") {
            let names = (try? FileManager.default.contentsOfDirectory(atPath: "\(eventsDir)/\(sys)")) ?? []
            for ev in names.sorted() where !ours.contains("\(sys)/\(ev)") {
                let file = "events/\(sys)/\(ev)/enable"
                guard TraceFS.exists("\(dir)/\(file)"),
                      let v = try? TraceFS.readText("\(dir)/\(file)"), v.hasPrefix("1") else { continue }
                try set(file, to: "0")
                turnedOff.append("\(sys)/\(ev)")
            }
        }
        if !turnedOff.isEmpty {
            progress("turned off \(turnedOff.count) event(s) enabled before at the top level, until the end: \(turnedOff.joined(separator: ", "))")
        }
        if TraceFS.exists("\(dir)/current_tracer") { try set("current_tracer", to: "nop") }
    }

    private func makeDirectory(progress: (String) -> Void) throws(RecorderError) {
        guard mode != .topLevel else {
            progress("recording at the top level of \(root) (settings restored at the end; its buffer is cleared)")
            return
        }
        let instances = "\(root)/instances"
        let path = "\(instances)/\(instanceName)"
        var why: String
        if TraceFS.isDirectory(instances) {
            do throws(RecorderError) {
                try ops.make(path)
                instance = instanceName
                dir = path
                return
            } catch {
                why = "\(error)"
            }
        } else {
            why = "\(instances): no such directory (a kernel without tracefs instances)"
        }
        if mode == .required {
            throw RecorderError(.tracefs, path, "cannot record in an instance: \(why)")
        }
        progress("warning: \(why); recording at the top level of \(root) instead (its settings are restored at the end, but what its buffer held before is cleared)")
    }

    /// Removes instances left by a cpuflags that was killed before it could clean up
    /// (SIGKILL, a crash): `cpuflags-PID` and `cpuflags-PID-keys` whose PID is not a
    /// running process. A left-over keys instance would keep its tracepoint's static key
    /// on, and a left-over recording instance holds its buffer's memory. rmdir disables
    /// the instance's events itself. Returns the names removed.
    @discardableResult
    public static func removeStaleInstances(root: String, progress: (String) -> Void = { _ in }) -> [String] {
        let instances = "\(root)/instances"
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: instances) else { return [] }
        var removed: [String] = []
        for name in names.sorted() where name.hasPrefix("cpuflags-") {
            let rest = name.dropFirst("cpuflags-".count)
            let digits = rest.hasSuffix("-keys") ? rest.dropLast("-keys".count) : rest
            guard let pid = pid_t(digits), pid > 0, pid != getpid() else { continue }
            // kill(pid, 0) fails with ESRCH only when no such process exists.
            guard kill(pid, 0) != 0 && errno == ESRCH else { continue }
            if rmdir("\(instances)/\(name)") == 0 {
                removed.append(name)
            } else {
                progress("warning: cannot remove the stale instance \(instances)/\(name) (rmdir): \(RecorderError.describe(errno: errno))")
            }
        }
        if !removed.isEmpty { progress("removed instance(s) left by a cpuflags that did not finish: \(removed.joined(separator: ", "))") }
        return removed
    }

    public func start() throws(RecorderError) { try TraceFS.write("1", to: "\(dir)/tracing_on") }
    public func stop() throws(RecorderError) { try TraceFS.write("0", to: "\(dir)/tracing_on") }

    /// What the kernel says about the recording: the text of `trace` (header included),
    /// the events in it, and the events it lost.
    public struct Recording: Sendable {
        public var text: Data
        /// Lines that are events (not `#` header lines).
        public var events: Int
        /// From the header `# entries-in-buffer/entries-written: A/B`.
        public var entriesInBuffer: Int?
        public var entriesWritten: Int?
        /// `overrun` of each CPU's `per_cpu/cpuN/stats`: events overwritten when its
        /// buffer was full.
        public var overrunPerCPU: [Int: Int]
        /// Events the kernel wrote and the buffer no longer holds: B - A of the header,
        /// or the per-CPU overruns' sum when there is no header.
        public var lost: Int {
            if let a = entriesInBuffer, let b = entriesWritten, b > a { return b - a }
            return overrunPerCPU.values.reduce(0, +)
        }
    }

    /// Reads `trace` and the per-CPU stats. Called with tracing stopped.
    public func read(cpus: CPUSet) throws(RecorderError) -> Recording {
        let text = try TraceFS.read("\(dir)/trace")
        var rec = TraceSession.parse(text)
        for cpu in cpus.cpus {
            let path = "\(dir)/per_cpu/cpu\(cpu)/stats"
            guard TraceFS.exists(path), let stats = try? TraceFS.readText(path) else { continue }
            for line in stats.split(separator: "\n") where line.hasPrefix("overrun:") {
                rec.overrunPerCPU[cpu] = Int(line.dropFirst("overrun:".count).trimmingCharacters(in: .whitespaces)) ?? 0
            }
        }
        return rec
    }

    /// Counts the event lines of a `trace` text and reads its header's entry counts.
    public static func parse(_ text: Data) -> Recording {
        var events = 0
        var inBuffer: Int?, written: Int?
        let marker = Array("# entries-in-buffer/entries-written:".utf8)
        text.withUnsafeBytes { (raw: UnsafeRawBufferPointer) in
            let b = raw.bindMemory(to: UInt8.self)
            var i = 0
            let n = b.count
            while i < n {
                // i is at the start of a line.
                var j = i
                while j < n && b[j] != 0x0A { j += 1 }
                if j > i {
                    if b[i] != UInt8(ascii: "#") {
                        events += 1
                    } else if inBuffer == nil, j - i > marker.count, (0..<marker.count).allSatisfy({ b[i + $0] == marker[$0] }) {
                        // "# entries-in-buffer/entries-written: 123/456   #P:2"
                        let rest = String(decoding: UnsafeBufferPointer(rebasing: b[(i + marker.count)..<j]), as: UTF8.self)
                        let counts = rest.trimmingCharacters(in: .whitespaces).prefix { $0 != " " }.split(separator: "/")
                        if counts.count == 2 { inBuffer = Int(counts[0]); written = Int(counts[1]) }
                    }
                }
                i = j + 1
            }
        }
        return Recording(text: text, events: events, entriesInBuffer: inBuffer, entriesWritten: written, overrunPerCPU: [:])
    }

    /// Undoes every change: clears the buffer used, writes each changed setting back (the
    /// last change first), and removes the instance. Every step is tried even when one
    /// fails; the failures are returned (a restore that cannot complete is reported, not
    /// thrown, so that it never hides the error that led to it).
    @discardableResult
    public func restore() -> [RecorderError] {
        guard !restored else { return [] }
        restored = true
        var failures: [RecorderError] = []
        // Tracing off before anything else, so no new events land while undoing.
        if TraceFS.exists("\(dir)/tracing_on") && journal.contains(where: { $0.path == "\(dir)/tracing_on" }) {
            do throws(RecorderError) { try TraceFS.write("0", to: "\(dir)/tracing_on") } catch { failures.append(error) }
        }
        if bufferUsed {
            do throws(RecorderError) { try TraceFS.write("", to: "\(dir)/trace") } catch { failures.append(error) }
        }
        for (path, original) in journal.reversed() {
            do throws(RecorderError) { try TraceFS.write(original, to: path) } catch { failures.append(error) }
        }
        journal.removeAll()
        if let name = instance {
            do throws(RecorderError) { try ops.remove(dir) } catch { failures.append(error) }
            instance = nil
            _ = name
            dir = root
        }
        return failures
    }
}
