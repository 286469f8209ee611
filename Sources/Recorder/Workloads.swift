import Foundation
import Synchronization

/// A built-in housekeeping load: something the kernel answers with IPIs to every CPU the
/// process (or the kernel) runs on, run by a thread pinned to the housekeeping CPUs while
/// a spinner on each isolated CPU stays in user space, so that every interruption the
/// trace shows on an isolated CPU is one that a real isolated task would pay.
public enum Workload: String, CaseIterable, Sendable {
    case staticKeys = "static-keys"
    case bpfFilters = "bpf-filters"
    case threadChurn = "thread-churn"
    case mprotect

    /// One line for `--list-workloads`.
    public var summary: String {
        switch self {
        case .staticKeys:
            return "flips a tracepoint's static key in a second tracefs instance (\(Workload.show(perSecond)) flips/s): text patching sends do_sync_core IPIs to every CPU"
        case .bpfFilters:
            return "attaches a classic BPF socket filter to a UDP socket and closes it (\(Workload.show(perSecond))/s): the JIT's set_memory_* and frees flush kernel TLBs on every CPU"
        case .threadChurn:
            return "creates and joins a thread (\(Workload.show(perSecond))/s) on the housekeeping CPUs: stacks mapped and unmapped in the process's mm"
        case .mprotect:
            return "the spinner reads shared anonymous memory that the housekeeping thread mprotects and munmaps (\(Workload.show(perSecond))/s): flush_tlb_func IPIs to the spinner"
        }
    }

    /// Iterations a second (one iteration, then a sleep of 1/perSecond). Paced rather than
    /// flat out, so that a recording of seconds fits its buffer and the isolated CPU is
    /// interrupted at a rate a busy housekeeping side really produces.
    public var perSecond: Double {
        switch self {
        case .staticKeys: return 8
        case .bpfFilters: return 50
        case .threadChurn: return 200
        case .mprotect: return 200
        }
    }

    static func show(_ d: Double) -> String { d == d.rounded() ? "\(Int(d))" : "\(d)" }
}

/// State shared by the spinners and the housekeeping thread. Atomics only: a spinner must
/// not take a lock (a futex wait is a syscall, and it would leave user space).
///
/// Orderings: `stop` is relaxed (it only ends loops; the joins that follow order the
/// rest). `region` is published with a release store after `regionBytes` (relaxed) and
/// the page contents are written, and read with an acquire load: a spinner that sees an
/// address sees its length and a mapping that exists. A spinner's `seen`/`exited` are
/// release stores after its last read of a mapping, and the housekeeping thread's
/// acquire loads of them come before it unmaps: without that pairing it could unmap
/// pages a spinner is still reading (a SIGSEGV in the spinner).
final class SpinState: Sendable {
    let stop = Atomic<Bool>(false)
    /// The mprotect workload's mapping (its address, 0 when there is none) and its length.
    let region = Atomic<Int>(0)
    let regionBytes = Atomic<Int>(0)
    /// Keeps the spinners' reads of the mapping from being optimized away.
    let sink = Atomic<UInt>(0)

    /// One per spinner: the region it last finished reading (0: none).
    final class Slot: Sendable {
        let seen = Atomic<Int>(0)
        /// Set when the spinner has left its loop: it reads nothing any more.
        let exited = Atomic<Bool>(false)
    }
}

/// A running workload: the spinners on the isolated CPUs and the housekeeping thread.
final class WorkloadRun {
    let workload: Workload
    let isolated: CPUSet
    let housekeeping: CPUSet
    let tracefsRoot: String
    let state = SpinState()
    private var slots: [SpinState.Slot] = []
    private var spinners: [PinnedThread] = []
    private var worker: PinnedThread?
    /// Set by the housekeeping thread if an iteration fails (read after it is joined, or
    /// polled through `failed`).
    private let failure = Mutex<RecorderError?>(nil)
    let iterations = Atomic<Int>(0)
    /// For static-keys: the instance whose event is flipped and the event.
    private var flipInstance: String?
    private var flipEvent: String?
    private var flipInstanceMade = false

    init(workload: Workload, isolated: CPUSet, housekeeping: CPUSet, tracefsRoot: String) {
        self.workload = workload
        self.isolated = isolated
        self.housekeeping = housekeeping
        self.tracefsRoot = tracefsRoot
    }

    var failed: RecorderError? { failure.withLock { $0 } }

    /// Whatever the workload needs before it starts, checked on the calling thread so that
    /// a missing facility fails before the recording: the flip instance, the JIT setting.
    func prepare(progress: (String) -> Void) throws(RecorderError) {
        switch workload {
        case .staticKeys: try prepareStaticKeys(progress: progress)
        case .bpfFilters:
            let path = "/proc/sys/net/core/bpf_jit_enable"
            if let v = try? TraceFS.readText(path) {
                if v == "0" {
                    progress("warning: \(path) is 0: classic BPF filters run in the interpreter, whose programs live in ordinary memory; there is no JIT image to make read-only and executable, so expect few TLB-flush IPIs (echo 1 > \(path) for the JIT)")
                } else {
                    progress("\(path) is \(v): filters are JIT-compiled")
                }
            } else {
                progress("warning: cannot read \(path): JIT state unknown")
            }
        case .threadChurn, .mprotect: break
        }
    }

    /// Starts a spinner on each isolated CPU. They spin until `stop()`.
    func startSpinners() throws(RecorderError) {
        for cpu in isolated.cpus {
            let slot = SpinState.Slot()
            slots.append(slot)
            let state = self.state
            spinners.append(try PinnedThread(name: "spin", cpus: CPUSet([cpu])) {
                WorkloadRun.spin(state, slot)
            })
        }
    }

    /// The spinner: user space only, no syscalls, no locks. It reads the mprotect
    /// workload's mapping when there is one (so its CPU holds TLB entries for it), and
    /// says which mapping it has finished reading, so the housekeeping thread unmaps a
    /// mapping only once no spinner can touch it any more.
    static func spin(_ state: SpinState, _ slot: SpinState.Slot) {
        // One syscall on the isolated CPU before spinning: its sys_exit tells the
        // analyzer the spinner is in user mode from here on.
        _ = getpid()
        var acc: UInt = 0
        while !state.stop.load(ordering: .relaxed) {
            let r = state.region.load(ordering: .acquiring)
            if r != 0 {
                let bytes = state.regionBytes.load(ordering: .relaxed)
                let p = UnsafeRawPointer(bitPattern: r)!
                var off = 0
                while off < bytes {
                    acc &+= UInt(p.load(fromByteOffset: off, as: UInt8.self))
                    off += 4096
                }
            }
            slot.seen.store(r, ordering: .releasing)
        }
        state.sink.add(acc, ordering: .relaxed)
        slot.exited.store(true, ordering: .releasing)
    }

    /// Starts the housekeeping thread.
    func startWorker() throws(RecorderError) {
        let interval = 1 / workload.perSecond
        worker = try PinnedThread(name: "hk-\(workload.rawValue)", cpus: housekeeping) { [self] in
            while !state.stop.load(ordering: .relaxed) {
                do throws(RecorderError) {
                    try iteration()
                } catch {
                    failure.withLock { $0 = $0 ?? error }
                    return
                }
                iterations.add(1, ordering: .relaxed)
                sleepSeconds(interval)
            }
        }
    }

    /// Stops the threads and undoes what `prepare` made. Returns the worker's failure.
    @discardableResult
    func stop() -> [RecorderError] {
        state.stop.store(true, ordering: .relaxed)
        for s in spinners { s.join() }
        spinners.removeAll()
        worker?.join()
        worker = nil
        var failures: [RecorderError] = []
        if let f = failed { failures.append(f) }
        failures += cleanupStaticKeys()
        return failures
    }

    private func iteration() throws(RecorderError) {
        switch workload {
        case .staticKeys: try flipStaticKey()
        case .bpfFilters: try attachFilter()
        case .threadChurn: try churnThread()
        case .mprotect: try mprotectRegion()
        }
    }

    // MARK: static-keys

    /// Tracepoints that are rarely enabled by anyone: flipping one that some other tool
    /// has enabled would change nothing (its static key is already on).
    static let flipCandidates = ["sched/sched_kthread_stop", "sched/sched_kthread_stop_ret", "signal/signal_deliver",
                                 "sched/sched_process_hang", "timer/timer_init"]

    /// Makes the second instance and picks an event that is off everywhere. A static key
    /// is global: enabling the event in any instance patches the kernel text of every
    /// call site (an int3 batch, with a do_sync_core IPI to every CPU after each step),
    /// but the event's lines go to that instance's buffer, not to the recording's. The
    /// instance's tracing is off, so even those are not kept.
    private func prepareStaticKeys(progress: (String) -> Void) throws(RecorderError) {
        let instances = "\(tracefsRoot)/instances"
        guard TraceFS.isDirectory(instances) else {
            throw RecorderError(.workload, instances, "static-keys needs a second tracefs instance, and there is no instances directory",
                                hint: "a kernel without tracefs instances; use another --workload")
        }
        let path = "\(instances)/cpuflags-\(getpid())-keys"
        guard mkdir(path, 0o755) == 0 else {
            throw RecorderError(.workload, path, "cannot create the static-keys instance (mkdir)", errno: errno)
        }
        flipInstance = path
        flipInstanceMade = true
        try TraceFS.write("0", to: "\(path)/tracing_on")
        // Off everywhere: at the top level and in every other instance.
        let others = ((try? FileManager.default.contentsOfDirectory(atPath: instances)) ?? []).map { "\(instances)/\($0)" }
            .filter { $0 != path }
        for e in WorkloadRun.flipCandidates where TraceFS.exists(TraceFS.enablePath(path, e)) {
            let elsewhere = ([tracefsRoot] + others).contains { dir in
                (try? TraceFS.readText(TraceFS.enablePath(dir, e)))?.hasPrefix("1") ?? false
            }
            if !elsewhere {
                flipEvent = e
                break
            }
        }
        guard let e = flipEvent else {
            throw RecorderError(.workload, path, "no tracepoint to flip: each of \(WorkloadRun.flipCandidates.joined(separator: ", ")) is missing or already enabled somewhere")
        }
        progress("static-keys: flipping \(e) in instance \((path as NSString).lastPathComponent) (its tracing off), \(Workload.show(workload.perSecond)) flips/s")
    }

    private var flipOn = false
    private func flipStaticKey() throws(RecorderError) {
        guard let dir = flipInstance, let e = flipEvent else { return }
        flipOn.toggle()
        try TraceFS.write(flipOn ? "1" : "0", to: TraceFS.enablePath(dir, e))
    }

    private func cleanupStaticKeys() -> [RecorderError] {
        guard flipInstanceMade, let dir = flipInstance else { return [] }
        var failures: [RecorderError] = []
        if let e = flipEvent {
            do throws(RecorderError) { try TraceFS.write("0", to: TraceFS.enablePath(dir, e)) } catch { failures.append(error) }
        }
        if rmdir(dir) != 0 {
            failures.append(RecorderError(.tracefs, dir, "cannot remove the static-keys instance (rmdir)", errno: errno))
        }
        flipInstanceMade = false
        return failures
    }

    // MARK: bpf-filters

    /// `ldb [9]; jeq #17, accept, drop; ret #0xffff; ret #0`: keep UDP. The program's
    /// content does not matter; attaching any classic filter converts it to eBPF and, with
    /// the JIT on, allocates an executable image (set_memory_ro/x), freed after close.
    private static let filter: [(code: UInt16, jt: UInt8, jf: UInt8, k: UInt32)] = [
        (0x30, 0, 0, 9), (0x15, 0, 1, 17), (0x06, 0, 0, 0xFFFF), (0x06, 0, 0, 0),
    ]

    private func attachFilter() throws(RecorderError) {
        let fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        guard fd >= 0 else { throw RecorderError(.workload, "socket(AF_INET, SOCK_DGRAM)", "cannot create a UDP socket", errno: errno) }
        defer { close(fd) }
        // struct sock_filter is { u16 code; u8 jt; u8 jf; u32 k } (8 bytes); struct
        // sock_fprog is { unsigned short len; struct sock_filter *filter }, the pointer at
        // offset 8 on 64-bit Linux. Built byte by byte: Glibc's module has neither.
        var insns = [UInt8](repeating: 0, count: 8 * WorkloadRun.filter.count)
        for (i, f) in WorkloadRun.filter.enumerated() {
            withUnsafeBytes(of: f.code.littleEndian) { insns.replaceSubrange(i * 8..<i * 8 + 2, with: $0) }
            insns[i * 8 + 2] = f.jt
            insns[i * 8 + 3] = f.jf
            withUnsafeBytes(of: f.k.littleEndian) { insns.replaceSubrange(i * 8 + 4..<i * 8 + 8, with: $0) }
        }
        let r: Int32 = insns.withUnsafeMutableBytes { ib in
            var prog = [UInt8](repeating: 0, count: 16)
            withUnsafeBytes(of: UInt16(WorkloadRun.filter.count)) { prog.replaceSubrange(0..<2, with: $0) }
            withUnsafeBytes(of: UInt(bitPattern: ib.baseAddress)) { prog.replaceSubrange(8..<16, with: $0) }
            return prog.withUnsafeBytes { setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, $0.baseAddress, socklen_t($0.count)) }
        }
        guard r == 0 else {
            throw RecorderError(.workload, "setsockopt(SO_ATTACH_FILTER)", "cannot attach a classic BPF filter", errno: errno)
        }
    }

    // MARK: thread-churn

    private func churnThread() throws(RecorderError) {
        var t = pthread_t()
        // The new thread inherits the creator's affinity: the housekeeping CPUs.
        let r = pthread_create(&t, nil, { _ in nil }, nil)
        guard r == 0 else { throw RecorderError(.workload, "pthread_create", "cannot create a thread", errno: r) }
        pthread_join(t, nil)
    }

    // MARK: mprotect

    /// Pages in the mprotect workload's mapping.
    static let regionPages = 16

    /// One round: map, let every spinner read the pages (its CPU now caches their
    /// translations), take write permission away (a TLB flush on every CPU running the
    /// mm: flush_tlb_func IPIs to the spinners), give it back, withdraw the mapping and
    /// wait until no spinner reads it, then unmap it (another flush).
    private func mprotectRegion() throws(RecorderError) {
        let bytes = WorkloadRun.regionPages * 4096
        guard let p = mmap(nil, bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0), p != MAP_FAILED else {
            throw RecorderError(.workload, "mmap(\(bytes) bytes, MAP_SHARED|MAP_ANONYMOUS)", "cannot map memory", errno: errno)
        }
        var off = 0
        while off < bytes {
            p.storeBytes(of: UInt8(truncatingIfNeeded: off >> 12), toByteOffset: off, as: UInt8.self)
            off += 4096
        }
        let addr = Int(bitPattern: p)
        state.regionBytes.store(bytes, ordering: .relaxed)
        state.region.store(addr, ordering: .releasing)
        waitForSpinners(toSee: addr)
        var failure: RecorderError?
        if mprotect(p, bytes, PROT_READ) != 0 {
            failure = RecorderError(.workload, "mprotect(PROT_READ)", "cannot change the mapping's protection", errno: errno)
        } else if mprotect(p, bytes, PROT_READ | PROT_WRITE) != 0 {
            failure = RecorderError(.workload, "mprotect(PROT_READ|PROT_WRITE)", "cannot change the mapping's protection", errno: errno)
        }
        state.region.store(0, ordering: .releasing)
        // A spinner still reading the pages would fault on them once unmapped: if one
        // has not let go within the wait, the mapping is left mapped (a leak of 64 KB,
        // not a crash).
        if waitForSpinners(toSee: 0) { munmap(p, bytes) }
        if let f = failure { throw f }
    }

    /// Waits (yielding the housekeeping CPU) until every spinner has finished a pass with
    /// `region` or has exited; gives up after a second (a spinner that does not get its
    /// CPU is no reason to hang). Returns whether every spinner got there.
    @discardableResult
    private func waitForSpinners(toSee region: Int) -> Bool {
        let deadline = monotonicSeconds() + 1
        while !slots.allSatisfy({ $0.seen.load(ordering: .acquiring) == region || $0.exited.load(ordering: .acquiring) }) {
            if monotonicSeconds() > deadline { return false }
            sched_yield()
        }
        return true
    }
}
