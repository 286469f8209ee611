import CPUFlags

/// Scenarios generated systematically from the core's operations, instead of picked by
/// hand: every housekeeping op against every isolated-CPU program shape, under every
/// exit policy and pin protocol the core has, with NMI and IRQ budgets, on two and
/// three CPUs, up to a bound on the number of housekeeping ops in one machine.
///
/// The machines, for `bound` B (1 to `boundMax`):
/// - **A** (2 CPUs): cpu0 runs a sequence of 1 to B housekeeping ops (repeats allowed,
///   at most one grace period) against cpu1, which runs one program shape; with no
///   budget, one NMI or one timer IRQ on cpu1.
/// - **B** (3 CPUs, two isolated): cpu0 runs 1 to B-1 ops (at least one), each op
///   with a target aimed at cpu1 or cpu2; broadcasts (flush, patch, grace periods)
///   reach both. A grace period here waits on two other CPUs.
/// - **C** (3 CPUs, two housekeepers; B >= 2): cpu0 and cpu2 run one op each,
///   concurrently, against cpu1 (two pinners of one CPU included, under both pin
///   protocols).
/// - Budgets (none, one NMI, one timer IRQ on the first isolated CPU) on A machines,
///   and from B = 3 on every machine.
///
/// Isolated CPUs of three-CPU machines run the short form of their shape (one entry,
/// one reader). Program shapes are generated only where they mean something: text execution with a
/// patch, polling idle with a wake aimed at it (else it would wait forever), RCU
/// readers with a grace period, a context switch under the adaptive policy. The
/// enumeration order is fixed, so an index or a seeded sample names the same
/// scenarios on every machine.
public enum Generator {
    public static let boundMax = 3

    /// A housekeeping op of the generator (a grace period's flavour is the scenario's).
    public enum HousekeepingOp: String, CaseIterable, Sendable {
        case flush, patch
        case queueCallback = "queue-callback"
        case pin = "run-on-behalf"
        case wake
        case interrupt
        case gracePeriod = "grace-period"
        case gracePeriodExpedited = "grace-period-expedited"

        var hasTarget: Bool { self == .queueCallback || self == .pin || self == .wake || self == .interrupt }
        var isGracePeriod: Bool { self == .gracePeriod || self == .gracePeriodExpedited }

        func op(target: Int, id: Int) -> Op {
            switch self {
            case .flush: return .flushKernelTLB
            case .patch: return .patchText
            case .queueCallback: return .queueCallback(target: target, id: id)
            case .pin: return .runOnBehalf(target: target, id: id)
            case .wake: return .wake(target: target)
            case .interrupt: return .interrupt(target: target, kind: .userTLBFlush)
            case .gracePeriod, .gracePeriodExpedited: return .synchronizeRCU
            }
        }
    }

    /// What an isolated CPU runs.
    public enum Shape: String, CaseIterable, Sendable {
        /// Two entries from user with a kernel access each, an exit between.
        case roundTrip = "round-trip"
        /// The same executing patchable text.
        case text
        /// Non-polling idle, left by its own timer, then kernel code.
        case idle
        /// Polling idle woken by a bit (or a reschedule IPI).
        case pollIdle = "poll-idle"
        /// RCU readers before and after a user round trip.
        case rcuReader = "rcu-reader"
        /// A context switch between two user stretches (the adaptive promotion ends).
        case contextSwitch = "context-switch"

        /// The program, and whether it starts in user mode. `short`: the shortest form
        /// that still has the shape's point (one entry, one reader), for the CPUs of
        /// three-CPU machines, where the interleavings of the third CPU multiply the
        /// states.
        func program(short: Bool = false) -> (ops: [Op], startsInUser: Bool) {
            switch (self, short) {
            case (.roundTrip, false): return ([.enterFromUser, .kernelAccess, .exitToUser, .enterFromUser, .kernelAccess], true)
            case (.roundTrip, true): return ([.enterFromUser, .kernelAccess], true)
            case (.text, false): return ([.enterFromUser, .runText, .exitToUser, .enterFromUser, .runText], true)
            case (.text, true): return ([.enterFromUser, .runText], true)
            case (.idle, false): return ([.enterIdle(polling: false), .exitIdle, .kernelAccess], false)
            case (.idle, true): return ([.enterIdle(polling: false), .exitIdle], false)
            case (.pollIdle, _): return ([.enterIdle(polling: true), .pollIdle, .exitIdle, .kernelAccess], false)
            case (.rcuReader, false):
                return ([.rcuReader(write: true), .exitToUser, .enterFromUser, .rcuReader(write: true)], false)
            // Ends in the kernel: a normal grace period cannot credit a CPU left in lazy
            // user mode (the explorer reports that deadlock; see EndStates.swift).
            case (.rcuReader, true): return ([.rcuReader(write: true), .exitToUser, .enterFromUser], false)
            case (.contextSwitch, false):
                return ([.enterFromUser, .kernelAccess, .contextSwitch, .exitToUser, .enterFromUser, .kernelAccess], true)
            case (.contextSwitch, true): return ([.enterFromUser, .contextSwitch, .exitToUser, .enterFromUser], true)
            }
        }

        func policies() -> [ExitPolicy] {
            switch self {
            case .roundTrip, .text, .rcuReader: return [.strict, .lazy, .adaptive]
            case .idle, .pollIdle: return [.strict]
            case .contextSwitch: return [.adaptive]
            }
        }
    }

    /// Interrupts an isolated CPU may take anywhere they are allowed.
    public enum Budget: String, CaseIterable, Sendable {
        case none, nmi, irq
    }

    /// Every generated scenario up to `bound`, in the fixed order.
    public static func scenarios(bound: Int) -> [Scenario] {
        precondition((1...boundMax).contains(bound), "bound \(bound) outside 1...\(boundMax)")
        var out: [Scenario] = []
        // A: two CPUs.
        for seq in sequences(length: 1...bound, targets: [1]) {
            out += machines(hk: [seq, []], isolated: [1], tag: "a", bound: bound)
        }
        // B: two isolated CPUs.
        if bound >= 1 {
            for seq in sequences(length: 1...max(1, bound - 1), targets: [1, 2]) {
                out += machines(hk: [seq, [], []], isolated: [1, 2], tag: "b", bound: bound)
            }
        }
        // C: two housekeepers.
        if bound >= 2 {
            for a in HousekeepingOp.allCases {
                for b in HousekeepingOp.allCases where !(a.isGracePeriod && b.isGracePeriod) {
                    out += machines(hk: [[(a, 1)], [], [(b, 1)]], isolated: [1], tag: "c", bound: bound)
                }
            }
        }
        return out
    }

    /// A seeded sample of `count` distinct scenarios of `bound` (all of them when there
    /// are fewer), in enumeration order. The same seed gives the same sample.
    public static func sample(bound: Int, count: Int, seed: UInt64) -> [Scenario] {
        let all = scenarios(bound: bound)
        if count >= all.count { return all }
        var rng = SplitMix64(state: seed)
        var indices = Array(all.indices)
        // A partial Fisher-Yates shuffle: the first `count` are a uniform sample.
        for i in 0..<count {
            let j = i + rng.below(indices.count - i)
            indices.swapAt(i, j)
        }
        return indices.prefix(count).sorted().map { all[$0] }
    }

    /// The scenario of `bound`'s enumeration with this name, if any.
    public static func named(_ name: String) -> Scenario? {
        for b in 1...boundMax { if let s = scenarios(bound: b).first(where: { $0.name == name }) { return s } }
        return nil
    }

    typealias Step = (op: HousekeepingOp, target: Int)

    /// Ordered op sequences with their targets: repeats allowed, at most one grace period.
    static func sequences(length: ClosedRange<Int>, targets: [Int]) -> [[Step]] {
        var steps: [Step] = []
        for op in HousekeepingOp.allCases {
            if op.hasTarget { for t in targets { steps.append((op, t)) } } else { steps.append((op, targets[0])) }
        }
        var out: [[Step]] = []
        var current: [Step] = []
        func extend() {
            if length.contains(current.count) { out.append(current) }
            if current.count == length.upperBound { return }
            for s in steps {
                if s.op.isGracePeriod && current.contains(where: { $0.op.isGracePeriod }) { continue }
                current.append(s)
                extend()
                current.removeLast()
            }
        }
        extend()
        return out
    }

    /// Every machine with these housekeeping programs: each isolated CPU's shape,
    /// policy, pin protocol and budget.
    static func machines(hk: [[Step]], isolated: [Int], tag: String, bound: Int) -> [Scenario] {
        let all = hk.flatMap { $0 }
        let hasPatch = all.contains { $0.op == .patch }
        let hasGP = all.contains { $0.op.isGracePeriod }
        let expedited = all.contains { $0.op == .gracePeriodExpedited }
        let hasPin = all.contains { $0.op == .pin }
        func shapes(for c: Int) -> [Shape] {
            Shape.allCases.filter { s in
                switch s {
                case .roundTrip, .idle, .contextSwitch: return true
                case .text: return hasPatch
                case .pollIdle: return all.contains { $0.op == .wake && $0.target == c }
                case .rcuReader: return hasGP
                }
            }
        }
        // Two isolated CPUs run the same shape (or, under a grace period, one reader and
        // one round trip as well): the combinations that matter without the product.
        var shapeChoices: [[Shape]] = []
        if isolated.count == 1 {
            shapeChoices = shapes(for: isolated[0]).map { [$0] }
        } else {
            let common = shapes(for: isolated[0]).filter { shapes(for: isolated[1]).contains($0) }
            shapeChoices = common.map { [$0, $0] }
            if hasGP { shapeChoices.append([.rcuReader, .roundTrip]) }
        }
        var out: [Scenario] = []
        for shapes in shapeChoices {
            let policies = ExitPolicy.allCases.filter { p in shapes.allSatisfy { $0.policies().contains(p) } }
            for policy in policies {
                // Both pin protocols wherever there is a pin; two concurrent pinners of
                // one CPU included (countThenCheck's serialize through its pin lock).
                let protocols: [PinProtocol] = hasPin ? [.flagInWord, .countThenCheck] : [.flagInWord]
                for proto in protocols {
                    // Budgets on the first isolated CPU, for 2-CPU machines (3-CPU ones
                    // explore the interleavings of two housekeepers or two isolated CPUs),
                    // and from bound 3 on for every machine.
                    let budgets: [Budget] = hk.count == 2 || bound >= 3 ? Budget.allCases : [.none]
                    for budget in budgets {
                        out.append(scenario(hk: hk, isolated: isolated, shapes: shapes, policy: policy, proto: proto,
                                            budget: budget, expedited: expedited, tag: tag))
                    }
                }
            }
        }
        return out
    }

    static func scenario(
        hk: [[Step]], isolated: [Int], shapes: [Shape], policy: ExitPolicy, proto: PinProtocol,
        budget: Budget, expedited: Bool, tag: String
    ) -> Scenario {
        let n = hk.count
        var programs = Array(repeating: [Op](), count: n)
        var start = Array(repeating: Mode.kernel, count: n)
        var id = 0
        for (c, steps) in hk.enumerated() where !steps.isEmpty {
            programs[c] = steps.map { s in
                defer { if s.op == .queueCallback || s.op == .pin { id += 1 } }
                return s.op.op(target: s.target, id: id)
            }
        }
        for (i, c) in isolated.enumerated() {
            let (ops, inUser) = shapes[i].program(short: n > 2)
            programs[c] = ops
            start[c] = inUser ? (policy == .strict ? .user : .indeterminate) : .kernel
        }
        var nmis = Array(repeating: 0, count: n)
        var irqs = Array(repeating: 0, count: n)
        switch budget {
        case .none: break
        case .nmi: nmis[isolated[0]] = 1
        case .irq: irqs[isolated[0]] = 1
        }
        let hasGP = hk.joined().contains { $0.op.isGracePeriod }
        var config = ProtocolConfig(exitPolicy: policy)
        config.pinProtocol = proto
        let hkName = hk.enumerated().filter { !$0.element.isEmpty }.map { c, steps in
            "cpu\(c):" + steps.map { $0.op.hasTarget && n > 2 ? "\($0.op.rawValue)>\($0.target)" : $0.op.rawValue }.joined(separator: ",")
        }.joined(separator: "|")
        var parts = ["gen-\(tag)", policy.rawValue]
        if proto != .flagInWord { parts.append(proto.rawValue) }
        parts.append(hkName)
        parts.append(shapes.map(\.rawValue).joined(separator: "&"))
        if budget != .none { parts.append(budget.rawValue) }
        return Scenario(
            name: parts.joined(separator: "/"),
            summary: "generated (\(tag)): \(hkName) against \(shapes.map(\.rawValue).joined(separator: " and ")), \(policy.rawValue) exit policy",
            programs: programs, start: start, config: config, nmis: nmis, irqs: irqs,
            nmiBody: hasGP ? .rcuReader : .kernelAccess, covers: [], expeditedRCU: expedited)
    }
}
