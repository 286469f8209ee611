import CPUFlags
import Simulator

/// The simulator's workload rates derived from a recording (`simulate --workload-from`):
/// what each isolated CPU of the recording received and did per second, so that a
/// 2-CPU recording drives a 64- or 256-CPU simulated machine with the same load per
/// isolated CPU.
public struct WorkloadRates: Codable, Sendable {
    public var input: String
    /// The isolated CPUs the rates are averaged over, and the recording's length.
    public var isolatedCPUs: [Int]
    public var seconds: Double
    /// Requests per isolated CPU per second, by work kind.
    public var requestsPerCPUPerSecond: [String: Double]
    /// What each isolated task did per second: syscalls plus user faults, idle periods
    /// (and their mean length).
    public var entriesPerSecond: Double
    public var idlePeriodsPerSecond: Double
    public var idleMeanNs: Double?

    public init(_ report: AnalysisReport, analysis: Analysis) {
        input = report.input
        isolatedCPUs = report.isolated.cpus
        seconds = max(report.lastSeconds - report.firstSeconds, 1e-9)
        let n = Double(max(isolatedCPUs.count, 1))
        var kinds: [String: Double] = [:]
        var entries = 0.0, idles = 0.0, idleSeconds = 0.0
        for c in isolatedCPUs where c < analysis.perCPU.count {
            for (k, v) in analysis.perCPU[c].byKind { kinds[k, default: 0] += Double(v) }
            let s = analysis.tracker.summary(c)
            entries += Double(s.syscalls + s.userFaults)
            idles += Double(s.idlePeriods)
            idleSeconds += s.seconds["idle"] ?? 0
        }
        let span = seconds
        requestsPerCPUPerSecond = kinds.mapValues { $0 / n / span }
        entriesPerSecond = entries / n / seconds
        idlePeriodsPerSecond = idles / n / seconds
        idleMeanNs = idles > 0 ? idleSeconds / idles * 1e9 : nil
    }

    func rate(_ k: WorkKind) -> Double { requestsPerCPUPerSecond[k.rawValue] ?? 0 }

    /// The workload these rates give a machine with `isolatedCount` isolated CPUs. The
    /// simulator broadcasts flushes, text patches, expedited grace periods, drains and
    /// page-table syncs to every CPU (so the machine-wide rate is the per-CPU one) and
    /// sends user-mm shootdowns and wakeups to one isolated CPU each (so the machine-wide
    /// rate is the per-CPU one times the isolated CPUs). A text-patch batch is three
    /// sync_core rounds. Normal grace periods make no IPI: left as they are.
    public func apply(to w: inout Workload, isolatedCount: Int) {
        let n = Double(max(isolatedCount, 1))
        w.kernelTLBFlushPerSec = rate(.kernelTLBFlush)
        w.textPatchBatchesPerSec = rate(.syncCore) / 3
        w.rcuExpeditedPerSec = rate(.rcuExpedited)
        w.userTLBShootdownPerSec = (rate(.userTLBFlush) + rate(.membarrier)) * n
        w.wakeupsPerSec = rate(.reschedule) * n
        w.cacheDrainsPerSec = rate(.cacheDrain) + rate(.queuedCallback)
        w.pageTableFreeSyncsPerSec = rate(.tlbRemoveTableSync)
        w.isolatedSyscallsPerSec = entriesPerSecond
        w.isolatedIdlePeriodsPerSec = idlePeriodsPerSecond
        if let m = idleMeanNs, m > 0 { w.isolatedIdleNs = m }
    }

    /// Derives the rates of the recording at `path` (read once, constant memory).
    public static func derive(from path: String, catalog: CallbackCatalog) throws -> WorkloadRates {
        var options = Analysis.Options()
        options.policies = [.linux]
        let a = Analysis(options: options, catalog: catalog)
        try a.run(try TraceInput(path))
        let report = a.report(input: path)
        guard !report.isolated.cpus.isEmpty else {
            throw Analysis.Failure(description: "\(path): no isolated CPU detected (no CPU ran one task in user mode at least half the time); the rates are per isolated CPU")
        }
        return WorkloadRates(report, analysis: a)
    }
}
