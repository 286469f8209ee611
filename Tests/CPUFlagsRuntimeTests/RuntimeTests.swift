import Atomics
import CPUFlags
import Foundation
import Glibc
import Testing

@testable import CPUFlagsRuntime

/// One runtime at a time per process (the signal handler is process-wide): every test
/// that makes one runs in this serialized suite.
@Suite(.serialized) struct RuntimeTests {
    /// A worker thread that runs `body(worker)` and unregisters; `start` waits until it
    /// has registered.
    final class WorkerThread: @unchecked Sendable {
        let thread: Thread
        let registered = DispatchSemaphore(value: 0)
        let finished = DispatchSemaphore(value: 0)
        var slot = -1
        init(_ runtime: IsolationRuntime, pinTo cpu: Int? = nil, _ body: @escaping @Sendable (Worker) -> Void) {
            var me: WorkerThread!
            thread = Thread {
                let w = try! runtime.register(pinTo: cpu)
                me.slot = w.slot
                me.registered.signal()
                body(w)
                runtime.unregister(w)
                me.finished.signal()
            }
            me = self
            thread.start()
            registered.wait()
        }
        func join() { finished.wait() }
    }

    /// A worker parked in its user stretch until `release()`; `afterLeaving` runs on
    /// it right after it leaves (kernel code).
    final class ParkedWorker: @unchecked Sendable {
        let inUser = ManagedAtomic<Bool>(false), leave = ManagedAtomic<Bool>(false)
        var thread: WorkerThread!
        var slot: Int { thread.slot }
        init(_ rt: IsolationRuntime, afterLeaving: @escaping @Sendable () -> Void = {}) {
            let inUser = self.inUser, leave = self.leave
            thread = WorkerThread(rt) { w in
                w.enterUserStretch()
                inUser.store(true, ordering: .sequentiallyConsistent)
                while !leave.load(ordering: .sequentiallyConsistent) {}
                w.leaveUserStretch()
                afterLeaving()
            }
            while !inUser.load(ordering: .sequentiallyConsistent) {}
        }
        func release() {
            leave.store(true, ordering: .sequentiallyConsistent)
            thread.join()
        }
    }

    static func options(_ policy: ExitPolicy = .strict, timeout: Duration = .seconds(5)) -> IsolationRuntime.Options {
        var o = IsolationRuntime.Options()
        o.workersMax = 4
        o.exitPolicy = policy
        o.timeout = timeout
        return o
    }

    @Test func aWorkerInItsUserStretchIsNotInterrupted() throws {
        let rt = try IsolationRuntime(Self.options())
        defer { rt.shutdown() }
        let ran = ManagedAtomic<Int>(0)
        let ranOn = ManagedAtomic<UInt64>(0)
        let work = try rt.defineWork { _ in
            ran.wrappingIncrement(ordering: .sequentiallyConsistent)
            ranOn.store(UInt64(pthread_self()), ordering: .sequentiallyConsistent)
        }
        let workerThread = ManagedAtomic<UInt64>(0)
        let wt = ParkedWorker(rt) {
            // Kernel code: the deferred work ran before it, on this thread.
            workerThread.store(UInt64(pthread_self()), ordering: .sequentiallyConsistent)
            #expect(ran.load(ordering: .sequentiallyConsistent) == 1)
        }
        #expect(try rt.request(work, on: wt.slot) == .deferred)
        #expect(ran.load(ordering: .sequentiallyConsistent) == 0, "deferred: not run while the worker is in its user stretch")
        wt.release()
        #expect(ran.load(ordering: .sequentiallyConsistent) == 1)
        #expect(ranOn.load(ordering: .sequentiallyConsistent) == workerThread.load(ordering: .sequentiallyConsistent))
    }

    @Test func aWorkerInItsKernelStretchGetsTheSignal() throws {
        let rt = try IsolationRuntime(Self.options())
        defer { rt.shutdown() }
        let ran = ManagedAtomic<Int>(0)
        let work = try rt.defineWork { _ in ran.wrappingIncrement(ordering: .sequentiallyConsistent) }
        let leave = ManagedAtomic<Bool>(false)
        let wt = WorkerThread(rt) { _ in
            // In the kernel stretch (registered workers start there), busy.
            while !leave.load(ordering: .sequentiallyConsistent) {}
        }
        do {
            if case .interrupt = try rt.request(work, on: wt.slot) {} else { Issue.record("expected an interrupt") }
        } catch {
            Issue.record("request: \(error)")
        }
        // sendAndWait: the handler has run it when request returns.
        #expect(ran.load(ordering: .sequentiallyConsistent) == 1)
        leave.store(true, ordering: .sequentiallyConsistent)
        wt.join()
    }

    @Test(arguments: [ExitPolicy.lazy, .adaptive])
    func lazyWorkersAreSignalledAdaptiveOnesOnce(_ policy: ExitPolicy) throws {
        let rt = try IsolationRuntime(Self.options(policy))
        defer { rt.shutdown() }
        let ran = ManagedAtomic<Int>(0)
        let work = try rt.defineWork { _ in ran.wrappingIncrement(ordering: .sequentiallyConsistent) }
        let wt = ParkedWorker(rt)
        var interrupts = 0
        for _ in 0..<3 {
            if case .interrupt = try rt.request(work, on: wt.slot) { interrupts += 1 }
        }
        wt.release()
        #expect(ran.load(ordering: .sequentiallyConsistent) == 3)
        // Lazy: INDETERMINATE promises nothing, every request signals. Adaptive: the
        // first signal promotes the stretch to USER, the rest are deferred.
        #expect(interrupts == (policy == .lazy ? 3 : 1))
    }

    @Test func onBehalfRunsOnTheRequesterWhileTheWorkerIsPinned() throws {
        let rt = try IsolationRuntime(Self.options())
        defer { rt.shutdown() }
        let ranOn = ManagedAtomic<UInt64>(0)
        let work = try rt.defineWork { _ in ranOn.store(UInt64(pthread_self()), ordering: .sequentiallyConsistent) }
        let wt = ParkedWorker(rt)
        #expect(try rt.runOnBehalf(work, of: wt.slot) == .onBehalf)
        #expect(ranOn.load(ordering: .sequentiallyConsistent) == UInt64(pthread_self()))
        wt.release()
    }

    @Test func gracePeriodsWaitForKernelStretchesAndTimeOutNamingTheWorker() throws {
        let rt = try IsolationRuntime(Self.options(timeout: .milliseconds(300)))
        defer { rt.shutdown() }
        let leave = ManagedAtomic<Bool>(false), inUser = ManagedAtomic<Bool>(false)
        // A worker in its user stretch is in an extended quiescent state.
        let wt = WorkerThread(rt) { w in
            w.enterUserStretch()
            inUser.store(true, ordering: .sequentiallyConsistent)
            while !leave.load(ordering: .sequentiallyConsistent) {}
            w.leaveUserStretch()
            // Now stuck in the kernel stretch until told.
            while leave.load(ordering: .sequentiallyConsistent) {}
        }
        while !inUser.load(ordering: .sequentiallyConsistent) {}
        try rt.synchronize()
        leave.store(true, ordering: .sequentiallyConsistent)
        while CPUWord(raw: rt.platform.load(Location(.word, wt.slot), ordering: .acquiring)).mode != .kernel {}
        // Expedited: the signal's handler reports a quiescent state.
        try rt.synchronize(expedited: true)
        // Normal: nobody reports, the worker never leaves its kernel stretch: timeout.
        do {
            try rt.synchronize()
            Issue.record("a grace period ended while worker \(wt.slot) stayed in its kernel stretch")
        } catch {
            #expect(error.description.contains("waiting for worker \(wt.slot)"), "\(error)")
        }
        leave.store(false, ordering: .sequentiallyConsistent)
        wt.join()
    }

    @Test func aSignalNobodyHandlesTimesOutNamingTheWorker() throws {
        let rt = try IsolationRuntime(Self.options(timeout: .milliseconds(200)))
        defer { rt.shutdown() }
        let work = try rt.defineWork { _ in }
        let blocked = ManagedAtomic<Bool>(false), leave = ManagedAtomic<Bool>(false)
        let wt = WorkerThread(rt) { _ in
            // The worker blocks the runtime's signal (as a misbehaving library might).
            var set = sigset_t()
            sigemptyset(&set)
            sigaddset(&set, rt.options.signal)
            pthread_sigmask(SIG_BLOCK, &set, nil)
            blocked.store(true, ordering: .sequentiallyConsistent)
            while !leave.load(ordering: .sequentiallyConsistent) {}
            pthread_sigmask(SIG_UNBLOCK, &set, nil)
        }
        while !blocked.load(ordering: .sequentiallyConsistent) {}
        do {
            try rt.request(work, on: wt.slot)
            Issue.record("request returned although worker \(wt.slot) never handled its signal")
        } catch {
            #expect(error.description.contains("waiting for worker \(wt.slot) to handle its signal"), "\(error)")
        }
        leave.store(true, ordering: .sequentiallyConsistent)
        wt.join()
    }

    @Test func workDeferredToAnUnregisteredSlotRunsAtTheNextRegistration() throws {
        let rt = try IsolationRuntime(Self.options())
        defer { rt.shutdown() }
        let ranOn = ManagedAtomic<Int>(-1)
        let work = try rt.defineWork { w in ranOn.store(w, ordering: .sequentiallyConsistent) }
        // Slot 0 is free (idle): deferred.
        #expect(try rt.request(work, on: 0) == .deferred)
        let wt = WorkerThread(rt) { _ in }
        wt.join()
        #expect(wt.slot == 0)
        #expect(ranOn.load(ordering: .sequentiallyConsistent) == 0)
    }

    @Test func misuseIsAPreconditionFailure() async {
        await #expect(processExitsWith: .failure) {
            let rt = try IsolationRuntime(Self.options())
            let w = try rt.register()
            w.leaveUserStretch()  // in the kernel stretch: wrong state
        }
        await #expect(processExitsWith: .failure) {
            let rt = try IsolationRuntime(Self.options())
            _ = try rt.register()
            _ = try rt.register()  // a thread registers once
        }
        await #expect(processExitsWith: .failure) {
            let rt = try IsolationRuntime(Self.options())
            _ = try rt.register()
            rt.shutdown()  // a worker still registered
        }
    }

    @Test func badOptionsAndASecondRuntimeAreErrors() throws {
        var o = Self.options()
        o.workersMax = 0
        #expect(throws: RuntimeError.self) { try IsolationRuntime(o) }
        let rt = try IsolationRuntime(Self.options())
        defer { rt.shutdown() }
        #expect(throws: RuntimeError.self) { try IsolationRuntime(Self.options()) }
        #expect(throws: RuntimeError.self) { try rt.request(IsolationRuntime.WorkID(id: 0), on: 99) }
    }
}
