import CPUFlags
import Foundation
import Simulator

/// The result of an analysis, as `--json` prints it (schema in the README, "analyze
/// --json"). Times in the recording's seconds; costs in µs.
public struct AnalysisReport: Codable, Sendable {
    public var input: String
    /// "xz", "gzip", "trace-cmd-dat" or "plain"; and the text format seen:
    /// "ftrace" (tracefs trace/trace_pipe) or "trace-cmd-report".
    public var container: String
    public var format: String
    public var lines: Int
    public var events: Int
    public var cpus: Int
    public var firstSeconds: Double
    public var lastSeconds: Double
    public var warnings: Warnings
    public var isolated: Isolated
    public var policies: [String]
    /// Per CPU that was the target of a request or had events; isolated CPUs first.
    public var targets: [Target]
    /// Per target CPU and callback; isolated targets first, then by requests.
    public var callbacks: [Callback]
    /// Callbacks not in the catalog (assumed to interrupt under every policy).
    public var unknownCallbacks: [String]
    /// Replays in which deferred work would have reached kernel code unrun (or the
    /// core's own assertions failed): none for a correct core.
    public var violations: [Analysis.Violation]

    public struct Warnings: Codable, Sendable {
        public var malformedLines: Int
        public var outOfOrderEvents: Int
        /// "[LOST N EVENTS]" markers, and the header's entries-in-buffer/written gap.
        public var lostEvents: Int
        public var headerLostEvents: Int?
        /// IPI arrivals (reschedule) with no request recorded before them.
        public var arrivalsWithoutRequest: Int
        /// Requests a CPU made to itself (run locally, not routed).
        public var selfRequests: Int
    }

    public struct Isolated: Codable, Sendable {
        public var cpus: [Int]
        /// "given" (--isolated) or "detected".
        public var source: String
        /// Why each CPU was (or was not) taken as isolated.
        public var detection: [Detection]
        /// Without --isolated the policies treat every CPU as isolated while replaying.
        public var replayedAsIsolated: [Int]
    }

    public struct Detection: Codable, Sendable {
        public var cpu: Int
        public var task: String?
        public var pid: Int32?
        public var userFraction: Double
        public var isolated: Bool
    }

    public struct Target: Codable, Sendable {
        public var cpu: Int
        public var isolated: Bool
        /// Seconds in each reconstructed mode.
        public var modeSeconds: [String: Double]
        public var untracedInterrupts: Int
        public var untracedReturns: Int
        public var requests: Int
        public var byPolicy: [String: PolicyTotals]
    }

    public struct PolicyTotals: Codable, Sendable {
        public var deliveries: [String: Int]
        public var interruptions: Int
        /// Interruptions that hit the CPU's task (not idle).
        public var taskInterruptions: Int
        /// Time the task would have lost: interruptions (measured or modelled) plus the
        /// deferred work the replay's entries ran and any unconditional entry work.
        public var lostMicroseconds: Double
        /// The part of it from the cost model rather than the recording.
        public var modelledMicroseconds: Double
        /// Entries into the kernel the replay made, and the deferred flushes and
        /// serializations they ran.
        public var entries: Int
        public var deferredFlushesRun: Int
        public var deferredSyncsRun: Int
    }

    public struct Callback: Codable, Sendable {
        public var target: Int
        public var callback: String
        /// The catalog's kind, and the class the core gives it; nil if unknown.
        public var kind: String?
        public var `class`: String?
        public var requests: Int
        /// Requests for which Linux sent an IPI of their own.
        public var ipisSent: Int
        /// The target's reconstructed mode at each request.
        public var modeAtRequest: [String: Int]
        /// What the recording shows on the target: interrupt, no-interrupt,
        /// coalesced, not-seen.
        public var seen: [String: Int]
        /// Measured handler time on the target (interrupt entry to handler end).
        public var measuredCostMeanMicroseconds: Double?
        public var measuredCostMaxMicroseconds: Double?
        public var senders: [Int]
        public var callsites: [String: Int]
        public var byPolicy: [String: PolicyCount]
    }
}

extension Analysis {
    /// The detection threshold: a CPU whose busiest task ran in user mode at least
    /// this share of the CPU's recorded time is taken as isolated.
    public static let isolatedUserFraction = 0.5

    public func report(input: String) -> AnalysisReport {
        var detection: [AnalysisReport.Detection] = []
        for c in 0..<cpuCount {
            let s = tracker.summary(c)
            guard s.seen else { continue }
            detection.append(.init(cpu: c, task: s.topTask, pid: s.topTaskPid, userFraction: s.topTaskUserFraction,
                                   isolated: s.topTaskUserFraction >= Analysis.isolatedUserFraction))
        }
        let isolatedCPUs = options.isolated ?? detection.filter(\.isolated).map(\.cpu)
        let isIsolated = Set(isolatedCPUs)
        func order(_ a: Int, _ b: Int) -> Bool {
            (isIsolated.contains(a) ? 0 : 1, a) < (isIsolated.contains(b) ? 0 : 1, b)
        }
        var targets: [AnalysisReport.Target] = []
        for c in (0..<cpuCount).sorted(by: order) {
            let s = tracker.summary(c)
            let t = perCPU[c]
            guard s.seen || t.requests > 0 else { continue }
            var by: [String: AnalysisReport.PolicyTotals] = [:]
            for (i, p) in policies.enumerated() {
                let pc = t.byPolicy[i]
                let replay = replays[i]
                let costs = replay.costs
                var lost = pc.lostNs, modelled = pc.modelledNs
                // Deferred work the replay's entries ran, and unconditional entry work
                // (isolated CPUs), from the cost model.
                let entryWork = Double(t.deferredFlushes[i]) * costs.kernelTLBFlushNs + Double(t.deferredSyncs[i]) * costs.syncCoreNs
                    + (isIsolated.contains(c) ? Double(t.entries[i]) * replay.unconditionalEntryWorkNs : 0)
                lost += entryWork
                modelled += entryWork
                by[p.rawValue] = .init(deliveries: pc.deliveries, interruptions: pc.interruptions, taskInterruptions: pc.taskInterruptions,
                                       lostMicroseconds: lost / 1000, modelledMicroseconds: modelled / 1000,
                                       entries: t.entries[i], deferredFlushesRun: t.deferredFlushes[i], deferredSyncsRun: t.deferredSyncs[i])
            }
            targets.append(.init(cpu: c, isolated: isIsolated.contains(c), modeSeconds: s.seconds,
                                 untracedInterrupts: s.untracedInterrupts, untracedReturns: s.untracedReturns,
                                 requests: t.requests, byPolicy: by))
        }
        let sortedRows = rows.values.sorted {
            ($0.target == $1.target) ? ($0.requests, $1.callback) > ($1.requests, $0.callback) : order($0.target, $1.target)
        }
        let callbacks = sortedRows.map { r in
            AnalysisReport.Callback(
                target: r.target, callback: r.callback, kind: r.kind?.rawValue, class: r.kind?.workClass.catalogName,
                requests: r.requests, ipisSent: r.ipisSent, modeAtRequest: r.modes, seen: r.seen,
                measuredCostMeanMicroseconds: r.costCount > 0 ? Double(r.costSumNs) / Double(r.costCount) / 1000 : nil,
                measuredCostMaxMicroseconds: r.costCount > 0 ? Double(r.costMaxNs) / 1000 : nil,
                senders: r.senders.sorted(), callsites: r.callsites,
                byPolicy: Dictionary(uniqueKeysWithValues: policies.enumerated().map { ($1.rawValue, r.byPolicy[$0]) }))
        }
        return AnalysisReport(
            input: input, container: container.rawValue, format: format, lines: lines, events: events, cpus: cpuCount,
            firstSeconds: Double(firstTime ?? 0) / 1e9, lastSeconds: Double(lastTime) / 1e9,
            warnings: .init(malformedLines: malformed, outOfOrderEvents: outOfOrder, lostEvents: lostEvents, headerLostEvents: headerLost,
                            arrivalsWithoutRequest: ipiWithoutRequest, selfRequests: selfRequests),
            isolated: .init(cpus: isolatedCPUs.sorted(), source: options.isolated == nil ? "detected" : "given", detection: detection,
                            replayedAsIsolated: options.isolated ?? Array(0..<cpuCount).filter { perCPU[$0].requests > 0 || tracker.summary($0).seen }),
            policies: policies.map(\.rawValue), targets: targets, callbacks: callbacks,
            unknownCallbacks: Set(rows.values.filter { $0.kind == nil }.map(\.callback)).sorted(),
            violations: violations)
    }
}
