import CPUFlags
import Foundation
import HeapModule
import Histogram

extension Simulation {
    // MARK: Isolated CPUs

    /// The cost of the work an entry ran (deferred flushes and serializations), and the
    /// unconditional catch-up work, for `t`'s last entry.
    func entryWorkNs(_ t: Int) -> Double {
        let ns = Double(platform.flushes[t]) * config.costs.kernelTLBFlushNs
            + Double(platform.serializations[t]) * config.costs.syncCoreNs
        platform.flushes[t] = 0
        platform.serializations[t] = 0
        return ns + model.unconditionalEntryWorkNs(config)
    }

    /// The atomics a round trip is charged: what context tracking makes, or what the
    /// core made (`coreAtomics`, counted by the platform).
    func atomicsNs(coreAtomics: Int) -> (count: Double, ns: Double) {
        let n = policy.usesContextTracking ? config.costs.contextTrackingAtomicsPerRoundTrip : Double(coreAtomics)
        return (n, n * config.costs.atomicNs)
    }

    /// The isolated task blocks: the CPU enters the kernel, then polling idle. A task
    /// that is not running user code (in a syscall, interrupted) does not block now.
    func idleEnter(_ t: Int) {
        guard !inSyscall[t], !idle[t], running[t] == nil else { return }
        let before = platform.atomics[t]
        let f = core(t)
        f.enterFromUser()
        f.contextSwitch()
        f.enterIdle(polling: true)
        idle[t] = true
        idleExitAt[t] = after(config.workload.isolatedIdleNs)
        schedule(idleExitAt[t], .idleExit(t))
        chargeRoundTrip(t, coreAtomics: platform.atomics[t] - before, work: entryWorkNs(t))
        traceMode(t)
    }

    /// The task wakes (its timer, or a wakeup by bit): idle exit runs what was deferred,
    /// and the CPU returns to user mode once that work is done. A CPU busy with an
    /// interrupt in idle leaves idle when the handler is done.
    func idleExit(_ t: Int) {
        guard idle[t], idleExitAt[t] <= now else { return }
        if running[t] != nil {
            schedule(runningEnd[t], .idleExit(t))
            return
        }
        let before = platform.atomics[t]
        let f = core(t)
        f.exitIdle()
        let work = entryWorkNs(t)
        idle[t] = false
        let overhead = chargeRoundTrip(t, coreAtomics: platform.atomics[t] - before, work: work)
        let end = after(overhead)
        if end > now {
            // KERNEL while the deferred work runs; interrupts wait behind it.
            traceMode(t)
            running[t] = .idleExitWork(begin: now)
            runningEnd[t] = end
            schedule(end, .runningEnds(t))
        } else {
            f.exitToUser()
            trace("idle exit", cpu: t)
            traceMode(t)
        }
    }

    /// Charges the entry overhead of a user round trip of `t` starting now: atomics and
    /// the work its entry ran. It is time the task loses too (`lostNs`).
    @discardableResult
    func chargeRoundTrip(_ t: Int, coreAtomics: Int, work: Double) -> Double {
        let a = atomicsNs(coreAtomics: coreAtomics)
        roundTrips += 1
        roundTripAtomics += a.count
        roundTripOverheadNs += a.ns + work
        lose(t, from: now, a.ns + work)
        return a.ns + work
    }

    /// Atomics a round trip's exit made (`coreAtomics`), charged at the exit (now). Context
    /// tracking's round trips were charged their fixed count at the entry.
    func chargeExit(_ t: Int, coreAtomics: Int) {
        guard !policy.usesContextTracking, coreAtomics > 0 else { return }
        let ns = Double(coreAtomics) * config.costs.atomicNs
        roundTripAtomics += Double(coreAtomics)
        roundTripOverheadNs += ns
        lose(t, from: now, ns)
    }

    /// The isolated task makes a syscall. Closed loop: the task's next syscall comes an
    /// exponential user-mode stretch after this one returns, so there is never more than
    /// one per CPU and none can start while the CPU is busy.
    func syscall(_ t: Int) {
        if idle[t] {
            // Blocked: no syscall now; the next one after a user stretch.
            schedule(now + rng.exponentialNs(perSecond: config.workload.isolatedSyscallsPerSec), .syscall(t))
            return
        }
        if running[t] != nil {
            // Interrupted: the task makes its syscall when the CPU is back in user mode.
            schedule(runningEnd[t], .syscall(t))
            return
        }
        inSyscall[t] = true
        let before = platform.atomics[t]
        core(t).enterFromUser()
        let work = entryWorkNs(t)
        busyUntil[t] = after(config.costs.syscallKernelNs + work)
        syscallStretchStart[t] = now
        schedule(busyUntil[t], .syscallExit(t))
        traceMode(t)
        chargeRoundTrip(t, coreAtomics: platform.atomics[t] - before, work: work)
    }

    func syscallExit(_ t: Int) {
        // Interrupts in the syscall pushed its end back: not yet.
        if busyUntil[t] > now { schedule(busyUntil[t], .syscallExit(t)); return }
        if running[t] != nil { schedule(runningEnd[t], .syscallExit(t)); return }
        trace("syscall", cpu: t, from: syscallStretchStart[t], to: now)
        inSyscall[t] = false
        let before = platform.atomics[t]
        core(t).exitToUser()
        chargeExit(t, coreAtomics: platform.atomics[t] - before)
        traceMode(t)
        schedule(now + rng.exponentialNs(perSecond: config.workload.isolatedSyscallsPerSec), .syscall(t))
    }

    /// An interrupt reaches isolated CPU `t`: it begins now if `t` is free, else it
    /// waits for what `t` is doing (the IPI stays pending until the handler in progress
    /// returns, as with IRQs off in a handler).
    func arrive(_ t: Int, _ p: PendingInterrupt) {
        if running[t] != nil {
            pending[t].append(p)
        } else {
            begin(t, p)
        }
    }

    /// Handler of `p` begins on `t` now: the core's IRQ entry (running what was
    /// deferred), then the handler; the exit is at `runningEnds`.
    func begin(_ t: Int, _ p: PendingInterrupt) {
        interruptions += 1
        byCause[p.cause, default: 0] += 1
        let handler = config.costs.handlerNs(p.kind)
        if inSyscall[t] {
            // In the kernel already (a syscall): the handler only, and the syscall
            // ends that much later.
            if now > syscallStretchStart[t] { trace("syscall", cpu: t, from: syscallStretchStart[t], to: now) }
            core(t).runHandler(p.kind)
            _ = platform.takeEffects(t)
            record(&interruptionCost, handler)
            lose(t, from: now, handler)
            let end = after(handler)
            busyUntil[t] += end - now
            running[t] = .interrupt(p, frame: nil, begin: now, fromUser: false)
            runningEnd[t] = end
            schedule(end, .runningEnds(t))
            return
        }
        let f = core(t)
        // Atomics of the entry and exit only, not of the handler's own work.
        let before = platform.atomics[t]
        let frame = f.irqEnter()
        let entryAtomics = platform.atomics[t] - before
        let work = entryWorkNs(t)
        // The kind's own work, as the core defines it; its cost is the handler's
        // (CostModel.handlerNs), not entry work.
        f.runHandler(p.kind)
        _ = platform.takeEffects(t)
        traceMode(t)
        let duration: Double
        let fromUser = !idle[t]
        if idle[t] {
            // Idle: nobody's time is lost, but the CPU is busy while it handles it.
            idleInterruptions += 1
            duration = handler + work
        } else {
            let overhead = chargeRoundTrip(t, coreAtomics: entryAtomics, work: work)
            duration = handler + config.costs.interruptEntryExitNs + overhead
            record(&interruptionCost, duration)
            lose(t, from: now, duration)
        }
        running[t] = .interrupt(p, frame: frame, begin: now, fromUser: fromUser)
        runningEnd[t] = after(duration)
        schedule(runningEnd[t], .runningEnds(t))
    }

    /// What `t` was busy with ends now: the handler returns (the core's IRQ exit), or
    /// the idle exit's work is done (exit to user); then the next waiting interrupt.
    func runningEnds(_ t: Int) {
        guard let r = running[t], runningEnd[t] == now else { return }
        running[t] = nil
        switch r {
        case .interrupt(let p, let frame, let begin, let fromUser):
            if let frame {
                let before = platform.atomics[t]
                core(t).irqExit(frame, wasIPI: true)
                if fromUser { chargeExit(t, coreAtomics: platform.atomics[t] - before) }
                let name = fromUser ? "IPI: \(p.cause)" : "IPI in idle: \(p.cause)"
                trace(name, cpu: t, from: begin, to: now, args: ["from mode": "\(frame.interrupted)", "back to": "\(platform.word(t).mode)"])
            } else {
                trace("IPI in kernel: \(p.cause)", cpu: t, from: begin, to: now)
                syscallStretchStart[t] = now
            }
            traceMode(t)
            if let id = p.call { targetDone(id) }
        case .idleExitWork(let begin):
            core(t).exitToUser()
            trace("idle exit", cpu: t, from: begin, to: now)
            traceMode(t)
        }
        if pendingHead[t] < pending[t].count {
            let next = pending[t][pendingHead[t]]
            pendingHead[t] += 1
            if pendingHead[t] == pending[t].count {
                pending[t].removeAll(keepingCapacity: true)
                pendingHead[t] = 0
            }
            begin(t, next)
        }
    }
}
