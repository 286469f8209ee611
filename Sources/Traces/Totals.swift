import CPUFlags
import Simulator

/// What one policy did with a set of requests.
public struct PolicyCount: Sendable, Codable, Equatable {
    /// Requests per delivery (`interrupted`, `deferred`, `skipped`, ...).
    public var deliveries: [String: Int] = [:]
    /// Interrupts taken: interrupted requests that sent an IPI of their own (a CSD
    /// queued behind a pending IPI rides on it, as in Linux).
    public var interruptions = 0
    /// Interruptions that hit the target's task (user or kernel, not idle).
    public var taskInterruptions = 0
    /// Time the target's task lost to them, ns (`IPIRequest.interruptCost`).
    public var lostNs: Double = 0
    /// The part of `lostNs` taken from the cost model.
    public var modelledNs: Double = 0
}

extension IPIRequest {
    /// The task on the target was running (user or kernel, or an interrupt over them).
    var hitsTask: Bool {
        switch targetMode {
        case .user, .kernel: return true
        case .irq: return targetInterrupted == .user || targetInterrupted == .kernel
        case .idle, .unknown: return false
        }
    }

    /// The delivery under policy `i` ("interrupted" for a callback the catalog does not
    /// know: assumed to interrupt everywhere).
    func delivery(_ i: Int) -> Delivery { verdicts[i] ?? .interrupted }

    /// What an interrupt for this request costs its target under a policy, and the
    /// part of it that is the cost model's: the recording's handler time (from the
    /// interrupt's entry event to the handler's end) where it shows the request
    /// delivered over the task, the model's handler time otherwise; plus, for a request
    /// that sent an IPI of its own, the model's interrupt entry and exit (the hardware
    /// and entry code around the traced part, which no event shows).
    func interruptCost(_ replay: PolicyReplay, costs: CostModel) -> (ns: Double, modelledNs: Double) {
        let entryExit = ipiSent ? costs.interruptEntryExitNs : 0
        if seen == .interrupt, let c = costNs, deliveredOver == .user || deliveredOver == .kernel {
            return (Double(c) + entryExit, entryExit)
        }
        let handler = kind.map { replay.modelHandlerNs($0) } ?? costs.emptyHandlerNs
        return (handler + entryExit, handler + entryExit)
    }
}

extension PolicyCount {
    mutating func add(_ r: IPIRequest, policy i: Int, replay: PolicyReplay, costs: CostModel) {
        let d = r.delivery(i)
        deliveries[r.verdicts[i] == nil ? "interrupted (unknown callback)" : d.rawValue, default: 0] += 1
        guard d == .interrupted else { return }
        if r.ipiSent {
            interruptions += 1
            if r.hitsTask { taskInterruptions += 1 }
        }
        if r.hitsTask {
            let c = r.interruptCost(replay, costs: costs)
            lostNs += c.ns
            modelledNs += c.modelledNs
        }
    }
}

/// The requests to one target with one callback.
public struct Row: Sendable {
    public var target: Int
    public var callback: String
    public var kind: WorkKind?
    public var requests = 0
    public var ipisSent = 0
    public var modes: [String: Int] = [:]
    public var seen: [String: Int] = [:]
    public var costSumNs: Int64 = 0
    public var costCount = 0
    public var costMaxNs: Int64 = 0
    public var senders: Set<Int> = []
    public var callsites: [String: Int] = [:]
    public var byPolicy: [PolicyCount]

    init(target: Int, callback: String, kind: WorkKind?, policies: Int) {
        self.target = target
        self.callback = callback
        self.kind = kind
        byPolicy = Array(repeating: PolicyCount(), count: policies)
    }

    mutating func add(_ r: IPIRequest, replays: [PolicyReplay]) {
        requests += 1
        if r.ipiSent { ipisSent += 1 }
        modes[r.targetMode.rawValue, default: 0] += 1
        seen[r.seen.rawValue, default: 0] += 1
        if r.seen == .interrupt, let c = r.costNs {
            costSumNs += c
            costCount += 1
            costMaxNs = max(costMaxNs, c)
        }
        senders.insert(r.sender)
        if callsites.count < 16 || callsites[r.callsite] != nil { callsites[r.callsite, default: 0] += 1 }
        for i in byPolicy.indices {
            byPolicy[i].add(r, policy: i, replay: replays[i], costs: replays[i].costs)
        }
    }
}

/// Per target CPU, per policy.
public struct CPUTotals: Sendable {
    public var requests = 0
    /// Requests by the catalog's kind ("unknown" for callbacks it does not know).
    public var byKind: [String: Int] = [:]
    public var byPolicy: [PolicyCount]
    /// From each policy's replay: entries the core made, deferred flushes and
    /// serializations it ran on them.
    public var entries: [Int]
    public var deferredFlushes: [Int]
    public var deferredSyncs: [Int]

    init(policies n: Int) {
        byPolicy = Array(repeating: PolicyCount(), count: n)
        entries = Array(repeating: 0, count: n)
        deferredFlushes = Array(repeating: 0, count: n)
        deferredSyncs = Array(repeating: 0, count: n)
    }

    mutating func add(_ r: IPIRequest, row: Row, replays: [PolicyReplay]) {
        requests += 1
        byKind[r.kind?.rawValue ?? "unknown", default: 0] += 1
        for i in byPolicy.indices { byPolicy[i].add(r, policy: i, replay: replays[i], costs: replays[i].costs) }
    }
}
