import CPUFlags

/// The kernel around the protocol: what each op does, written against the core. The
/// harness decides *when* (it is only ever called by the explorer, one access at a
/// time); the core decides *what*. Rule for replay: control flow here depends only on
/// values returned by accesses and on registers, never on ghost state.
extension Machine {
    func core(_ c: Int) -> CPUFlags<Machine> {
        // Per-task words (§2.12): the core acts on the word of the task c runs.
        CPUFlags(platform: self, cpu: c, task: map.perTask ? Int(state.cpus[c].task) : nil, config: scenario.config)
    }

    /// Runs one op of the task program on CPU `c`.
    func run(_ op: Op, on c: Int, regs: inout [UInt64]) throws(Suspend) {
        let f = core(c)
        switch op {
        case .exitToUser:
            try f.exitToUser()
        case .enterFromUser:
            _ = try f.enterFromUser()
        case .kernelAccess:
            try kernelAccessOp(c)
        case .runText:
            try ghostPoint("execute patchable text") { () throws(Suspend) in
                try checkPinExclusion(c)
                try checkNoStaleText(c)
            }
        case .enterIdle(let polling):
            try f.enterIdle(polling: polling)
        case .pollIdle:
            try f.pollIdle(orWhen: {
                touched.reads |= components.pending(c)
                return state.cpus[c].needResched
            })
        case .exitIdle:
            _ = try f.exitIdle()
        case .contextSwitch:
            try f.contextSwitch()
        case .switchTo(let t):
            // The scheduler around the core's switch, as try_to_wake_up and
            // finish_task do it: wait until the task is off its old CPU (acquire,
            // pairing with that CPU's release below, so its last writes to the task's
            // word are visible here), claim it, switch, then let the task we leave go.
            let prev = Int(state.cpus[c].task)  // the task this op started with (replay-stable)
            _ = try waitAddress(map.onCPU(t), ordering: .acquiring, "task\(t) to leave its CPU") { $0 == 0 }
            try storeAddress(map.onCPU(t), 1, release: false)
            try f.switchTask(to: t)
            try storeAddress(map.onCPU(prev), 0, release: true)
            try ghost { () throws(Suspend) in
                state.cpus[c].task = Int8(t)
                trace("cpu\(c) now runs task\(t)")
            }
        case .rcuReader(let write):
            try rcuReader(c, write: write, level: 0)
        case .flushKernelTLB:
            let v = try loadAddress(map.pte) + 1
            // set_pte: a plain store; the requests below publish it.
            try storeAddress(map.pte, v, release: false)
            try ghost { () throws(Suspend) in
                state.cpus[c].tlb = -1  // on_each_cpu includes the caller: local flush
            }
            try f.submit(.kernelTLBFlush, to: Array(0..<cpuCount))
            try ghost { () throws(Suspend) in
                touchGlobal(components.flushDone, write: true)
                state.ghost.flushCompleted = Int8(v)
                trace("flush of pte v\(v) complete")
            }
        case .patchText:
            let v = try loadAddress(map.text) + 1
            try storeAddress(map.text, v, release: false)
            try ghost { () throws(Suspend) in state.cpus[c].textSeen = Int8(v) }
            try f.submit(.syncCore, to: Array(0..<cpuCount))
            try ghost { () throws(Suspend) in
                touchGlobal(components.patchDone, write: true)
                state.ghost.textCompleted = Int8(v)
                trace("patch to text v\(v) complete")
            }
        case .queueCallback(let t, let id):
            try ghost { () throws(Suspend) in
                touchGhost(t)
                state.ghost.requested[t] |= 1 << UInt64(id)
            }
            try f.queueCallback(id, for: t)
        case .runOnBehalf(let t, let id):
            // A cache drain: pinned and run here, or an IPI.
            try ghost { () throws(Suspend) in
                touchGhost(t)
                state.ghost.requested[t] |= 1 << UInt64(id)
            }
            try f.submit(.cacheDrain, to: [t], callback: id)
        case .wake(let t):
            // A wakeup: WAKE for a polling idle CPU, or a reschedule IPI.
            try f.submit(.reschedule, to: [t])
        case .interrupt(let t, let kind):
            try f.submit(kind, to: [t])
        case .litmusStore(let cell, let value, let o):
            try storeAddress(map.objectField(cell), UInt64(value), release: o != .relaxed, seqCst: o == .seqCst)
        case .litmusLoad(let cell, let o):
            let v = try loadAddress(map.objectField(cell), ordering: o.load)
            try ghost { () throws(Suspend) in state.cpus[c].litmusSeen = state.cpus[c].litmusSeen * 4 + Int16(v & 3) }
        case .litmusAdd(let cell, let o):
            let a = map.objectField(cell)
            let v = try access { () throws(Suspend) -> UInt64 in
                let old = rmw(a, ordering: o.update) { $0 &+ 1 }
                trace("fetch_add \(map.name(a)): \(old) -> \(old &+ 1)")
                return old
            }
            try ghost { () throws(Suspend) in state.cpus[c].litmusSeen = state.cpus[c].litmusSeen * 4 + Int16(v & 3) }
        case .litmusFence:
            try fullFence()
        case .synchronizeRCU:
            // rcu_assign_pointer: a release store of the new object.
            try storeAddress(map.rcuPointer, 1, release: true)
            try ghost { () throws(Suspend) in
                touchGlobal(components.gracePeriod, write: true)
                state.ghost.gracePeriodStarted = true
            }
            try f.gracePeriod(expedited: scenario.expeditedRCU)
            try ghost { () throws(Suspend) in
                touchGlobal(components.gracePeriod, write: true)
                state.ghost.gpWaitingOn = -1
            }
            try ghostPoint("grace period ends") { () throws(Suspend) in
                try checkNoReaderOutlivesGracePeriod()
            }
            // (1a): what readers of object 0 wrote before their CPUs went quiescent is
            // visible to the code after the grace period.
            let field = try loadAddress(map.objectField(0))
            try ghost { () throws(Suspend) in
                try checkReadersWritesVisible(field: field)
                touchGlobal(components.gracePeriod, write: true)
                state.ghost.freed |= 1
                trace("free object 0")
            }
        }
    }

    func kernelAccessOp(_ c: Int) throws(Suspend) {
        try ghostPoint("kernel access (vmalloc page)") { () throws(Suspend) in
            if !state.cpus[c].inNMI {
                try checkKernelAccessInKernelMode(c)
                try checkPinExclusion(c)
            }
            try kernelDataAccess(c)
        }
    }

    /// An RCU read-side critical section at `level` (0 task/IRQ, 1 NMI).
    func rcuReader(_ c: Int, write: Bool, level: Int) throws(Suspend) {
        try ghostPoint("rcu_read_lock") { () throws(Suspend) in
            touchGlobal(components.gracePeriod, write: false)
            state.cpus[c].reader[level] = state.ghost.gracePeriodStarted ? 2 : 1
        }
        let p = Int(try loadAddress(map.rcuPointer))
        try ghostPoint("use object \(p)") { () throws(Suspend) in
            try checkNoUseAfterFree(c, object: p)
        }
        if write {
            try storeAddress(map.objectField(p), 1, release: false)
            try ghost { () throws(Suspend) in
                touchGlobal(components.gracePeriod, write: true)
                state.ghost.written |= 1 << UInt8(p)
            }
        }
        try ghostPoint("rcu_read_unlock") { () throws(Suspend) in
            state.cpus[c].reader[level] = 0
            if level == 0 && state.cpus[c].qsDeferred {
                state.cpus[c].qsDeferred = false
                reportQuiescentState(c)
            }
        }
    }

    // MARK: Interrupt handlers (one op each)

    /// The IPI handler: the core's (entry, each interrupt's work, exit).
    func ipiHandler(on c: Int, ipis: [PendingIPI]) throws(Suspend) {
        try core(c).handleInterrupt(ipis.map(\.kind), wasIPI: true)
    }

    /// A timer interrupt: entry, some kernel code, exit.
    func timerHandler(on c: Int) throws(Suspend) {
        let f = core(c)
        let frame = try f.irqEnter()
        try kernelAccessOp(c)
        try f.irqExit(frame, wasIPI: false)
    }

    func nmiHandler(on c: Int) throws(Suspend) {
        let f = core(c)
        let frame = try f.nmiEnter()
        switch scenario.nmiBody {
        case .kernelAccess: try kernelAccessOp(c)
        case .rcuReader: try rcuReader(c, write: true, level: 1)
        }
        try f.nmiExit(frame)
    }
}
