import CPUFlags

/// The model platform's routing and interrupt hooks: what the core's decisions and
/// interrupts do to the ghost state and the pending IPIs.
extension Machine {
    // MARK: Platform: routing and interrupts

    func callbackQueued(_ id: Int, for target: Int) throws(Suspend) {
        try ghost { () throws(Suspend) in state.ghost.queued[target] |= 1 << UInt64(id) }
    }

    func routed(_ kind: WorkKind, to target: Int, by requester: Int, _ route: Route) throws(Suspend) {
        try ghost { () throws(Suspend) in
            try checkDeferralIsReal(route, kind: kind, target: target, requester: requester)
            state.ghost.owed.record(route, kind: kind, target: target)
            if case .deferred = route { trace("\(kind.rawValue) deferred to cpu\(target)") }
        }
    }

    func sendInterrupts(_ targets: [Int], kind: WorkKind, from c: Int) throws(Suspend) {
        // A full barrier (see Platform): the sender's prior stores are visible before any
        // target takes the IPI.
        try ghostPoint("send IPI \(kind.rawValue) (full barrier)") { () throws(Suspend) in
            drainAll()
            for t in targets {
                state.cpus[t].pendingIPIs.append(PendingIPI(kind: kind, from: Int8(c)))
                state.ghost.outstanding[c] += 1
            }
            trace("send IPI \(kind.rawValue) to \(targets.map { "cpu\($0)" }.joined(separator: ","))")
        }
    }

    func waitForInterrupts(from c: Int) throws(Suspend) {
        try ghostWait("all IPIs of cpu\(c) handled") { state.ghost.outstanding[c] == 0 }
    }

    func interruptWork(_ kind: WorkKind, index: Int, on c: Int) throws(Suspend) {
        switch kind {
        case .reschedule:
            try ghost { () throws(Suspend) in state.cpus[c].needResched = true }
        case .rcuExpedited:
            // rcu_exp_handler: a quiescent state now, unless inside a reader; then at
            // its rcu_read_unlock.
            try ghostPoint("rcu_exp_handler") { () throws(Suspend) in
                if state.cpus[c].reader[0] != 0 {
                    state.cpus[c].qsDeferred = true
                } else {
                    state.cpus[c].qsReported = true
                }
            }
        default:
            break
        }
        // The IPI frame holds the interrupts being handled, in the order the core runs them.
        let from = state.cpus[c].frames.last(where: { $0.kind == .ipi })!.ipis[index].from
        try ghostPoint("IPI \(kind.rawValue) from cpu\(from) done") { () throws(Suspend) in
            state.ghost.outstanding[Int(from)] -= 1
        }
    }

    func quiescentStateReported(by target: Int) -> Bool { state.cpus[target].qsReported }

    @inline(__always) func reached(_ operation: CoreOperation) { operationsReached |= operation.bit }
}
