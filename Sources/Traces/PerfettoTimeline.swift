import Foundation
import Simulator

/// Writes a recording's reconstructed modes and its IPI requests, with each policy's
/// verdict, as a Chrome trace-event file (open it in ui.perfetto.dev): one track per
/// CPU with a slice per mode stretch, an instant per request on its target's track,
/// and a counter per target of interruptions so far under each policy. Streamed
/// through the simulator's writer (`ChromeTraceWriter`: bounded, errors name the path).
public final class PerfettoTimeline: TimelineSink {
    let writer: ChromeTraceWriter
    var since: [Int: (mode: ModeTracker.Observed, at: Int64)] = [:]
    var interruptions: [Int: [Double]] = [:]
    var origin: Int64?

    public init(path: String, isolated: Set<Int>) throws {
        writer = try ChromeTraceWriter(path: path, isolated: isolated)
        writer.beginProcess(named: "recording (reconstructed modes, IPIs with each policy's verdict)")
    }

    func us(_ t: Int64) -> Double {
        if origin == nil { origin = t }
        return Double(t - origin!) / 1000
    }

    public func modeChanges(cpu: Int, at time: Int64, to mode: ModeTracker.Observed) {
        if let (m, at) = since[cpu] {
            if m == mode { return }
            if time > at {
                writer.emit(TraceEvent(name: m.rawValue, ph: "X", ts: us(at), dur: Double(time - at) / 1000, pid: 0, tid: cpu))
            }
        }
        since[cpu] = (mode, time)
    }

    public func request(_ r: IPIRequest, policies: [Policy]) {
        var args = ["from": "cpu\(r.sender)", "mode": r.targetMode.rawValue, "callsite": r.callsite,
                    "seen": r.seen.rawValue, "kind": r.kind?.rawValue ?? "unknown"]
        if let c = r.costNs { args["cost_us"] = String(format: "%.1f", Double(c) / 1000) }
        var counts = interruptions[r.target] ?? Array(repeating: 0, count: policies.count)
        for (i, p) in policies.enumerated() {
            let d = r.delivery(i)
            args[p.rawValue] = d.rawValue
            if d == .interrupted && r.ipiSent { counts[i] += 1 }
        }
        interruptions[r.target] = counts
        writer.emit(TraceEvent(name: "IPI \(r.callback)", ph: "i", ts: us(r.time), pid: 0, tid: r.target, s: "t", args: args))
        writer.emit(TraceEvent(name: "interruptions cpu\(r.target)", ph: "C", ts: us(r.time), pid: 0, tid: r.target,
                               counter: Dictionary(uniqueKeysWithValues: policies.enumerated().map { ($1.rawValue, counts[$0]) })))
    }

    /// Closes the open stretches at `end` and the file.
    public func finish(at end: Int64) throws {
        for (cpu, (m, at)) in since.sorted(by: { $0.key < $1.key }) where end > at {
            writer.emit(TraceEvent(name: m.rawValue, ph: "X", ts: us(at), dur: Double(end - at) / 1000, pid: 0, tid: cpu))
        }
        try writer.finish()
    }

    public var truncated: Bool { writer.truncated }
    public var eventsWritten: Int { writer.eventsWritten }
}
