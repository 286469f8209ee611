import CPUFlags

/// The model platform's routing and interrupt hooks: what the core's decisions and
/// interrupts do to the ghost state and the pending IPIs.
extension Machine {
    // MARK: Platform: routing and interrupts

    func callbackQueued(_ id: Int, for target: Int) throws(Suspend) {
        try ghost { () throws(Suspend) in
            touchGhost(target)
            state.ghost.queued[target] |= 1 << UInt64(id)
        }
    }

    func routed(_ kind: WorkKind, to target: Int, by requester: Int, _ route: Route) throws(Suspend) {
        try ghost { () throws(Suspend) in
            touchGhost(target)
            try checkDeferralIsReal(route, kind: kind, target: target, requester: requester)
            state.ghost.owed.record(route, kind: kind, target: target)
            // A pinner may have run the queue between the enqueue and this CAS.
            if case .deferred = route, kind.bit == .callbacks { settleCallbacks(of: target) }
            if kind == .rcuExpedited, case .interrupt(let w?) = route {
                // A grace period's sample found the target outside an EQS: from here on
                // requirement (3) watches it (checkGracePeriodCanFinish).
                state.ghost.gpSample[target] = state.cpus[target].eqsEntries
                state.ghost.gpSnapshot[target] = w
            }
            if case .deferred = route { trace("\(kind.rawValue) deferred to cpu\(target)") }
        }
    }

    func sendInterrupts(_ targets: [Int], kind: WorkKind, from c: Int) throws(Suspend) {
        // A full barrier (see Platform): the sender's prior stores are visible before any
        // target takes the IPI.
        try ghostPoint("send IPI \(kind.rawValue) (full barrier)") { () throws(Suspend) in
            drainAll()
            touched.writes |= components.acks(c)
            for t in targets {
                touched.writes |= components.pending(t)
                state.cpus[t].pendingIPIs.append(PendingIPI(kind: kind, from: Int8(c)))
                state.ghost.outstanding[c] += 1
            }
            trace("send IPI \(kind.rawValue) to \(targets.map { "cpu\($0)" }.joined(separator: ","))")
        }
    }

    func waitForInterrupts(from c: Int) throws(Suspend) {
        try ghostWait("all IPIs of cpu\(c) handled") {
            touched.reads |= components.acks(c)
            guard state.ghost.outstanding[c] == 0 else { return false }
            // csd_lock_wait is smp_cond_load_acquire on the handlers' unlock: under
            // rc11 a fence that joins what the handlers' fences published.
            ghostFence(c)
            return true
        }
    }

    func interruptWork(_ kind: WorkKind, index: Int, on c: Int) throws(Suspend) {
        switch kind {
        case .reschedule:
            try ghost { () throws(Suspend) in
                touched.writes |= components.pending(c)
                state.cpus[c].needResched = true
            }
        case .rcuExpedited:
            // rcu_exp_handler: a quiescent state now, unless inside a reader; then at
            // its rcu_read_unlock. The report (rcu_report_exp_rdp) takes the rcu_node
            // lock: a full barrier, so what this CPU's readers wrote is visible to the
            // grace period that sees the report (without it, the generated scenarios
            // found the report overtaking a reader's store still in the store buffer).
            try ghostPoint("rcu_exp_handler") { () throws(Suspend) in
                if state.cpus[c].reader[0] != 0 {
                    state.cpus[c].qsDeferred = true
                } else {
                    reportQuiescentState(c)
                }
            }
        default:
            break
        }
        // The IPI frame holds the interrupts being handled, in the order the core runs them.
        let from = state.cpus[c].frames.last(where: { $0.kind == .ipi })!.ipis[index].from
        try ghostPoint("IPI \(kind.rawValue) from cpu\(from) done") { () throws(Suspend) in
            touched.writes |= components.acks(Int(from))
            // csd_unlock is a release store: under rc11 the handler publishes its view
            // (as a seq_cst fence: stronger than a release, documented in ViewOrder).
            ghostFence(c)
            state.ghost.outstanding[Int(from)] -= 1
        }
    }

    /// The one rule for a CPU's callback debt in the ledger: it is settled once every
    /// callback the harness asked for (its own record, not what the core reported
    /// queueing) has run. Applied where callbacks run and where a CALLBACKS bit is set
    /// (which announces nothing if a pinner already took the queue).
    func settleCallbacks(of target: Int) {
        if state.ghost.requested[target] & ~state.ghost.ran[target] == 0 {
            state.ghost.owed.ran(.callbacks, on: target)
        }
    }

    func quiescentStateReported(by target: Int) -> Bool {
        touchGhost(target)
        guard state.cpus[target].qsReported else { return false }
        // The grace period finds the report under the rcu_node lock the reporter
        // released: under rc11 a fence joining what the report's fence published.
        ghostFence(cpu)
        return true
    }

    /// An expedited grace period's quiescent-state report from CPU `c`: a full barrier
    /// (the rcu_node lock), then the report.
    func reportQuiescentState(_ c: Int) {
        drainAll()
        state.cpus[c].qsReported = true
        trace("report quiescent state (full barrier)")
    }

    @inline(__always) func reached(_ operation: CoreOperation) { operationsReached |= operation.bit }
}
