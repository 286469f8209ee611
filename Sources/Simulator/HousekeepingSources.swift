import CPUFlags
import Foundation
import HeapModule
import Histogram

extension Simulation {
    /// The housekeeping sources; `key` names them in results (requests and causes).
    enum Source: String, CaseIterable {
        case kernelTLBFlush = "kernel-tlb-flush"
        case textPatch = "text-patch"
        case rcuExpedited = "rcu-expedited"
        case rcuNormal = "rcu-normal"
        case userTLBShootdown = "user-tlb-shootdown"
        case wakeup
        case cacheDrain = "cache-drain"
        case pageTableFree = "page-table-free"
        var key: String { rawValue }
        func rate(_ w: Workload) -> Double {
            switch self {
            case .kernelTLBFlush: return w.kernelTLBFlushPerSec
            case .textPatch: return w.textPatchBatchesPerSec
            case .rcuExpedited: return w.rcuExpeditedPerSec
            case .rcuNormal: return w.rcuNormalPerSec
            case .userTLBShootdown: return w.userTLBShootdownPerSec
            case .wakeup: return w.wakeupsPerSec
            case .cacheDrain: return w.cacheDrainsPerSec
            case .pageTableFree: return w.pageTableFreeSyncsPerSec
            }
        }
    }

    func fire(_ s: Source) {
        requests[s.key, default: 0] += 1
        let all = Array(0..<config.cpus)
        switch s {
        case .kernelTLBFlush:
            broadcast(.kernelTLBFlush, to: all, cause: s.key)
        case .textPatch:
            // Round 1 of 3; the others follow it (see Then.nextTextPatchRound). Under
            // text_mutex: a batch waits for the one in progress.
            if textPatchInProgress { textPatchesWaiting += 1; return }
            textPatchInProgress = true
            broadcast(.syncCore, to: all, cause: s.key, then: .nextTextPatchRound(roundsLeft: 2))
        case .rcuExpedited:
            broadcast(.rcuExpedited, to: all, cause: s.key, then: .expeditedGracePeriod)
        case .rcuNormal:
            record(&gpNormal, normalGracePeriod())
        case .userTLBShootdown:
            broadcast(.userTLBFlush, to: [isolatedList[rng.below(isolatedList.count)]], cause: s.key)
        case .wakeup:
            // A polling idle target is woken by the WAKE bit under every policy (Linux's
            // set_nr_if_polling), others by a reschedule IPI: the core's route.
            broadcast(.reschedule, to: [isolatedList[rng.below(isolatedList.count)]], cause: s.key)
        case .cacheDrain:
            broadcast(.cacheDrain, to: all, cause: s.key)
        case .pageTableFree:
            broadcast(.tlbRemoveTableSync, to: all, cause: s.key)
        }
    }

    /// A normal grace period: CPUs in an EQS are done; housekeeping CPUs report within a
    /// tick; an isolated CPU in a syscall reports at its exit; a lazy isolated CPU in
    /// user mode is interrupted by the forced-quiescent-state scan.
    func normalGracePeriod() -> Double {
        let r = housekeeping[rng.below(housekeeping.count)]
        var latency = 0.0
        // The core's first half of a grace period (its fence, then a sample of every
        // other CPU): the CPUs it must wait for.
        for (t, _) in core(r).gracePeriodStart() {
            if !isolated[t] {
                latency = max(latency, config.costs.housekeepingQuiescentNs)
            } else if inSyscall[t] {
                latency = max(latency, Double(busyUntil[t] - now))
            } else {
                latency = max(latency, config.costs.rcuForceQuiescentNs)
                schedule(after(config.costs.rcuForceQuiescentNs), .interrupt(t, PendingInterrupt(cause: Simulation.rcuForceQuiescentCause, kind: .rcuExpedited, call: nil)))
            }
        }
        return latency
    }
}
