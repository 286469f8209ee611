import CPUFlags
import Simulator

/// One IPI request found in a recording: a CSD queued for a target (`csd_queue_cpu`)
/// or an IPI sent without one (`ipi_send_cpu[mask]` with a callback that is not the
/// generic call-function handler: the reschedule IPI, callback 0x0).
public struct IPIRequest: Sendable {
    public var id: Int
    public var sender: Int
    public var target: Int
    /// The csd function, or the IPI's callback ("resched" for 0x0).
    public var callback: String
    public var callsite: String
    public var time: Int64
    /// The line it was read from.
    public var line: Int
    /// What the target was doing at that time, and, in an interrupt, what that
    /// interrupt had interrupted.
    public var targetMode: ModeTracker.Observed
    public var targetInterrupted: ModeTracker.Observed?
    /// The kind the catalog gives (nil: not in the catalog).
    public var kind: WorkKind?
    /// The csd pointer (matches the target's csd_function_entry), if any.
    var csd: String?
    /// Linux sent an IPI for it (an `ipi_send_*` right after); a CSD queued behind a
    /// pending one rides on the earlier IPI.
    public var ipiSent = false

    // What happened on the target in the recording.
    public enum Seen: String, Sendable, Codable {
        /// Its handler ran in an interrupt on the target.
        case interrupt
        /// Its handler ran on the target outside an interrupt (the idle loop's flush).
        case noInterrupt = "no-interrupt"
        /// Another request's interrupt served it (reschedule IPIs coalesce).
        case coalesced
        /// Not seen on the target (before the horizon or the end of the recording).
        case notSeen = "not-seen"
    }
    public var seen: Seen = .notSeen
    /// Handler time on the target, from the interrupt's entry to the end of this
    /// request's handler, where the events allow it.
    public var costNs: Int64?
    var costStart: Int64?
    /// The mode the delivering interrupt interrupted.
    public var deliveredOver: ModeTracker.Observed?
    /// Each replayed policy's delivery (in `Analysis.policies` order); nil for a
    /// callback the catalog does not know (assumed to interrupt under every policy).
    public var verdicts: [Delivery?] = []
}

/// Matches requests with what their targets did: CSDs by (target, csd pointer,
/// function), reschedule IPIs by the next `reschedule_entry` on the target. Pending
/// requests are bounded in number and in age (`TraceLimits`).
struct RequestMatcher {
    /// Pending CSD requests by "target/csd", oldest first.
    var byCSD: [String: [IPIRequest]] = [:]
    /// Pending reschedule IPIs by target, oldest first.
    var resched: [[IPIRequest]]
    /// The requests each CPU is running (handler begun, not ended).
    var running: [IPIRequest?]
    /// Where the last callback of the open IPI on each CPU ended (the next one's cost
    /// starts there).
    var lastHandlerEnd: [Int64?]
    var pendingCount = 0
    /// Ids of the last CSD request from each sender to each target (for `ipiSent`).
    var lastCSD: [Int: String] = [:]

    init(cpuCount: Int) {
        resched = Array(repeating: [], count: cpuCount)
        running = Array(repeating: nil, count: cpuCount)
        lastHandlerEnd = Array(repeating: nil, count: cpuCount)
    }

    mutating func addCSD(_ r: IPIRequest) {
        let key = "\(r.target)/\(r.csd ?? "")"
        byCSD[key, default: []].append(r)
        lastCSD[r.sender &* 65_536 &+ r.target] = key
        pendingCount += 1
    }

    mutating func addResched(_ r: IPIRequest) {
        resched[r.target].append(r)
        pendingCount += 1
    }

    /// `sender` sent the call-function IPI to `target`: its last CSD to it rode on it.
    mutating func ipiSent(from sender: Int, to target: Int) {
        guard let key = lastCSD[sender &* 65_536 &+ target], var list = byCSD[key], !list.isEmpty else { return }
        list[list.count - 1].ipiSent = true
        byCSD[key] = list
    }

    /// A csd function begins on `cpu`: the request it serves, if any, starts running.
    /// `irqStart` is the open call-function IPI's entry on `cpu`, if any.
    mutating func handlerBegins(cpu: Int, function: String, csd: String?, time: Int64, irqStart: Int64?, over: ModeTracker.Observed?) {
        let key = "\(cpu)/\(csd ?? "")"
        guard var list = byCSD[key], let i = list.firstIndex(where: { $0.callback == function && $0.time <= time }) else { return }
        var r = list.remove(at: i)
        byCSD[key] = list.isEmpty ? nil : list
        pendingCount -= 1
        if let irqStart {
            r.seen = .interrupt
            r.deliveredOver = over
            r.costStart = max(irqStart, lastHandlerEnd[cpu] ?? irqStart)
        } else {
            r.seen = .noInterrupt
        }
        running[cpu] = r
    }

    /// The running handler on `cpu` ends: the request is settled.
    mutating func handlerEnds(cpu: Int, time: Int64, inIPI: Bool) -> IPIRequest? {
        guard var r = running[cpu] else { return nil }
        running[cpu] = nil
        // From where it began waiting (the IRQ entry or the previous callback's end
        // in the same IPI) to its handler's end.
        if let start = r.costStart { r.costNs = time - start }
        lastHandlerEnd[cpu] = inIPI ? time : nil
        return r
    }

    /// A reschedule IPI arrives on `cpu`: every reschedule request to it so far is
    /// served (the first by this interrupt, the rest coalesced into it).
    mutating func reschedArrives(cpu: Int, time: Int64, over: ModeTracker.Observed?) -> [IPIRequest] {
        var served: [IPIRequest] = []
        var keep: [IPIRequest] = []
        for var r in resched[cpu] {
            if r.time <= time {
                r.seen = served.isEmpty ? .interrupt : .coalesced
                r.deliveredOver = over
                served.append(r)
            } else {
                keep.append(r)
            }
        }
        resched[cpu] = keep
        pendingCount -= served.count
        return served
    }

    /// Requests older than the horizon at `now` (or all, at the end), and the oldest
    /// ones past `TraceLimits.pendingRequestsMax`: settled as not seen.
    mutating func expire(now: Int64, all: Bool = false) -> [IPIRequest] {
        guard all || pendingCount > 0 else { return [] }
        var out: [IPIRequest] = []
        let limit = now - TraceLimits.deliveryHorizonNs
        for (k, list) in byCSD {
            let (old, young) = (list.filter { all || $0.time < limit }, list.filter { !all && $0.time >= limit })
            out += old
            byCSD[k] = young.isEmpty ? nil : young
        }
        for c in resched.indices {
            out += resched[c].filter { all || $0.time < limit }
            resched[c] = all ? [] : resched[c].filter { $0.time >= limit }
        }
        if all { for c in running.indices { if let r = running[c] { out.append(r); running[c] = nil } } }
        pendingCount -= out.filter { $0.seen == .notSeen }.count
        return out
    }
}
