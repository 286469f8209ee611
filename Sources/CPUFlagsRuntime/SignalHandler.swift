import Atomics
import CPUFlags
import Glibc

/// The signal handler: what a CPU does when an IPI arrives, on a worker thread.
///
/// It runs the core's own interrupt path and nothing else: `irqEnter` (from the user
/// stretch an entry that runs the owed work first; from the kernel stretch it nests),
/// `runHandler` for each kind in the slot's mailbox (queued callbacks run here), then
/// `irqExit` (back to USER, INDETERMINATE or IDLE as it was; `wasIPI` for the adaptive
/// promotion). No transition is written again here.
///
/// Async-signal-safety, and how it is ensured:
/// - No allocation and no lock: the handler reads a context installed before the
///   signal was (`SignalHandler.context`, a raw pointer), finds its slot by comparing
///   `pthread_self()` (a register read) with the slots' threads, and calls the core on
///   `RuntimePlatform`, a struct of raw pointers (copying it retains nothing). The core's
///   calls on it are atomics, and the callbacks the work table holds are called through
///   an unmanaged box (no retain of the box).
/// - The work a user queues runs in the handler when it is delivered by signal, so it
///   must itself be async-signal-safe (no allocation, no locks, no print): documented on
///   `IsolationRuntime.defineWork`, and what the stress test's work does (counters).
/// - `errno` is saved and restored; the signal is not re-entered (no SA_NODEFER).
/// - A signal can land anywhere on the worker, also inside the core's own transitions:
///   it behaves as an interrupt taken in the kernel there (the word says KERNEL from the
///   entry's RMW to the exit's store, so `irqEnter` nests and changes nothing), or as an
///   interrupt of the user stretch before the entry's RMW / after the exit's store. The
///   core's interrupt path is built for both (BRIEF §2.2); the stress test takes signals
///   at random points of random transitions.
@usableFromInline enum SignalHandler {
    /// What the handler needs, installed once before the handler.
    struct Context {
        var platform: RuntimePlatform
        var config: ProtocolConfig
        var workers: Int
    }

    /// The context of the runtime that owns the signal; nil when none. Written only with
    /// the signal's handler not installed (install/uninstall), read by the handler.
    nonisolated(unsafe) static var context: UnsafeMutablePointer<Context>?

    static func install(_ ctx: Context) throws(RuntimeError) {
        guard context == nil else {
            throw RuntimeError("another IsolationRuntime is running (one at a time per process: the signal handler is process-wide); shut it down first")
        }
        precondition(RuntimePlatform.kinds.count <= 64, "a mailbox holds 64 kinds")
        let p = UnsafeMutablePointer<Context>.allocate(capacity: 1)
        p.initialize(to: ctx)
        context = p
        var sa = sigaction()
        sa.__sigaction_handler.sa_sigaction = { _, _, _ in SignalHandler.handle() }
        // SA_RESTART: a worker blocked in a system call in its kernel stretch resumes it
        // after the handler; idle workers that block are woken by `wake` instead.
        sa.sa_flags = SA_SIGINFO | SA_RESTART
        sigemptyset(&sa.sa_mask)
        guard sigaction(ctx.platform.signal, &sa, nil) == 0 else {
            let e = errno
            context = nil
            p.deallocate()
            throw RuntimeError("cannot install the handler of signal \(ctx.platform.signal) (sigaction: \(String(cString: strerror(e))))")
        }
    }

    /// Unblocks the signal on the calling thread (a worker's): threads inherit their
    /// creator's mask, and test runners and thread pools often block signals.
    static func unblock(_ signal: Int32) throws(RuntimeError) {
        var set = sigset_t()
        sigemptyset(&set)
        sigaddset(&set, signal)
        let r = pthread_sigmask(SIG_UNBLOCK, &set, nil)
        guard r == 0 else { throw RuntimeError("cannot unblock signal \(signal) on the worker's thread (pthread_sigmask: \(String(cString: strerror(r))))") }
    }

    /// Puts the default action back (after every worker is gone) and frees the context.
    static func uninstall(signal: Int32) {
        var sa = sigaction()
        sa.__sigaction_handler.sa_handler = SIG_IGN
        sigemptyset(&sa.sa_mask)
        sigaction(signal, &sa, nil)
        if let p = context {
            context = nil
            p.deinitialize(count: 1)
            p.deallocate()
        }
    }

    /// The handler's body: finds the slot of the interrupted thread and, unless that
    /// worker has interrupts masked, handles its mailbox.
    static func handle() {
        guard let ctx = context else { return }
        let saved = errno
        defer { errno = saved }
        guard let slot = slotOfCurrentThread(ctx) else { return }
        let platform = ctx.pointee.platform
        // Masked: the worker is inside a transition of the core (the kernel's IRQs-off
        // exit and entry paths). Leave the mailbox for `unmask`, which runs this again.
        if platform.cell(.masked, slot).load(ordering: .relaxed) != 0 {
            platform.cell(.deferredSignal, slot).store(1, ordering: .relaxed)
            return
        }
        serve(slot, ctx)
    }

    /// The slot whose thread is the calling one, if any.
    static func slotOfCurrentThread(_ ctx: UnsafeMutablePointer<Context>) -> Int? {
        let me = UInt64(pthread_self())
        for s in 0..<ctx.pointee.workers where ctx.pointee.platform.cell(.thread, s).load(ordering: .relaxed) == me {
            return s
        }
        return nil
    }

    /// Masks the worker's interrupts around one of its transitions, and on the way out
    /// handles a signal that arrived meanwhile (as `local_irq_enable` runs a pending
    /// interrupt). The flag is written with relaxed stores between compiler barriers
    /// (an acq_rel fence is no instruction on x86, but no memory access of the
    /// transition moves across it): only the worker's own signal handler reads it, on
    /// the same thread, which sees its program order.
    @inline(__always)
    static func masked<T, E: Error>(_ platform: RuntimePlatform, _ slot: Int, _ body: () throws(E) -> T) throws(E) -> T {
        try Mask(platform, slot).run(body)
    }

    /// A worker's mask cells, resolved once (`Worker` keeps one).
    @usableFromInline struct Mask {
        @usableFromInline let masked: UnsafeAtomic<UInt64>
        @usableFromInline let deferred: UnsafeAtomic<UInt64>
        @usableFromInline let slot: Int

        init(_ platform: RuntimePlatform, _ slot: Int) {
            masked = platform.cell(.masked, slot)
            deferred = platform.cell(.deferredSignal, slot)
            self.slot = slot
        }

        @inlinable @inline(__always)
        func run<T, E: Error>(_ body: () throws(E) -> T) throws(E) -> T {
            masked.store(1, ordering: .relaxed)
            atomicMemoryFence(ordering: .acquiringAndReleasing)
            let result = try body()
            atomicMemoryFence(ordering: .acquiringAndReleasing)
            masked.store(0, ordering: .relaxed)
            atomicMemoryFence(ordering: .acquiringAndReleasing)
            if deferred.load(ordering: .relaxed) != 0 { SignalHandler.serveDeferred(slot) }
            return result
        }
    }

    /// A signal arrived while the worker was masked: serve its mailbox now, masked again
    /// (a new signal during this waits for the next check), until none is pending.
    @usableFromInline @inline(never)
    static func serveDeferred(_ slot: Int) {
        guard let ctx = context else { return }
        let platform = ctx.pointee.platform
        while platform.cell(.deferredSignal, slot).load(ordering: .relaxed) != 0 {
            platform.cell(.masked, slot).store(1, ordering: .relaxed)
            atomicMemoryFence(ordering: .acquiringAndReleasing)
            platform.cell(.deferredSignal, slot).store(0, ordering: .relaxed)
            serve(slot, ctx)
            atomicMemoryFence(ordering: .acquiringAndReleasing)
            platform.cell(.masked, slot).store(0, ordering: .relaxed)
            atomicMemoryFence(ordering: .acquiringAndReleasing)
        }
    }

    /// The interrupt itself: the core's irqEnter, handlers, irqExit for the kinds in the
    /// slot's mailbox, then the tickets served.
    static func serve(_ slot: Int, _ ctx: UnsafeMutablePointer<Context>) {
        let platform = ctx.pointee.platform
        // Acquire the tickets first, then take the mailbox: every ticket at or below `r`
        // belongs to a requester whose mailbox bit this exchange (or an earlier handler
        // on this thread, which has finished) takes (see `sendInterrupts`).
        let r = platform.cell(.requested, slot).load(ordering: .acquiring)
        let kinds = platform.cell(.mailbox, slot).exchange(0, ordering: .acquiringAndReleasing)
        let core = CPUFlags(platform: platform, cpu: slot, config: ctx.pointee.config)
        do {
            let frame = try core.irqEnter()
            var bits = kinds
            var index = 0
            while bits != 0 {
                let i = bits.trailingZeroBitCount
                bits &= bits - 1
                let kind = RuntimePlatform.kinds[i]
                try core.runHandler(kind)
                try platform.interruptWork(kind, index: index, on: slot)
                index += 1
            }
            try core.irqExit(frame, wasIPI: true)
        } catch {
            // A worker's platform never throws (its waits have no timeout).
        }
        // Release: what the handler ran is visible to a requester that acquires its
        // ticket. Only this thread writes `served`; tickets only grow.
        if r > platform.cell(.served, slot).load(ordering: .relaxed) {
            platform.cell(.served, slot).store(r, ordering: .releasing)
        }
    }
}
