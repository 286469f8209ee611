import CPUFlags

/// One policy driven by a recording instead of simulated time: the trace analyzer
/// (`Traces`) reconstructs what each CPU was doing and asks this replay to put that
/// CPU's word in the same state through the core's own transitions, then routes each
/// recorded IPI request through the policy (`PolicyModel.routes`, the simulator's
/// decisions, hence the core's `submit` for every cpu_flags route). Nothing here decides
/// a route or writes a word: it only chooses which core call comes next.
///
/// The same ledger as the simulator's (`SimPlatform.owed`) checks that work deferred to
/// a CPU runs there before kernel code; `violation` is its first complaint.
public final class PolicyReplay {
    public let policy: Policy
    let model: any PolicyModel
    let platform: SimPlatform
    let machine: RoutingContext
    /// The open interrupt of each CPU, with the frame its `irqExit` needs. Per-CPU
    /// state is in buffers allocated once (no runtime exclusivity check per access, as
    /// a stored array of a class would cost: this is the analyzer's hot path).
    let frames: UnsafeMutableBufferPointer<CPUFlags<SimPlatform>.IRQFrame?>

    /// What a CPU is doing, as far as its word is concerned.
    public enum Target: Equatable, Sendable {
        /// Running user code (the task's own stretch).
        case user
        /// Running kernel code as a task (syscall, fault, kernel thread, idle task
        /// before idling).
        case kernel
        /// In the idle loop; `polling` as cpuidle's POLL state.
        case idle(polling: Bool)
    }

    // What the replay counted, per CPU.
    let counts: UnsafeMutableBufferPointer<Int>
    /// Entries into the kernel (from user or idle) the core made.
    public var entries: [Int] { (0..<cpuCount).map { counts[3 * $0] } }
    /// Kernel TLB flushes and serializations the core ran on entries (deferred work).
    public var deferredFlushesRun: [Int] { (0..<cpuCount).map { counts[3 * $0 + 1] } }
    public var deferredSyncsRun: [Int] { (0..<cpuCount).map { counts[3 * $0 + 2] } }

    /// The core's configuration: the policy's, with `mutations` (wrong variants of the
    /// core, to show that a replay catches them; empty in every real use).
    let coreConfig: ProtocolConfig

    public init(policy: Policy, cpuCount: Int, isolated: [Bool], config: MachineConfig = MachineConfig(), mutations: Mutations = []) {
        precondition(cpuCount > 0 && isolated.count == cpuCount, "replay: \(cpuCount) CPUs, \(isolated.count) isolated flags")
        self.policy = policy
        model = policy.model
        var c = model.coreConfig
        c.mutations = mutations
        coreConfig = c
        platform = SimPlatform(cpuCount: cpuCount)
        machine = RoutingContext(isolated: isolated, config: config)
        frames = .allocate(capacity: cpuCount)
        frames.initialize(repeating: nil)
        counts = .allocate(capacity: 3 * cpuCount)
        counts.initialize(repeating: 0)
        // Every CPU starts in KERNEL (SimPlatform's zeroed memory): until a recording
        // says what a CPU does, requests to it are routed as to a CPU in the kernel.
    }

    deinit {
        frames.deallocate()
        counts.deallocate()
    }

    public var cpuCount: Int { platform.cpuCount }

    /// The first broken promise (lost work, a core assertion), if any.
    public var violation: String? { platform.violation }
    public var hasViolation: Bool { platform.hasViolation }

    /// The mode `cpu`'s word says now.
    public func mode(_ cpu: Int) -> Mode { platform.word(cpu).mode }

    /// True while `cpu` is inside an interrupt the replay opened.
    public func inInterrupt(_ cpu: Int) -> Bool { frames[cpu] != nil }

    func core(_ cpu: Int) -> CPUFlags<SimPlatform> {
        platform.current = cpu
        return CPUFlags(platform: platform, cpu: cpu, config: coreConfig)
    }

    /// Counts what the last core call on `cpu` ran (the platform's effect counters).
    func account(_ cpu: Int, entered: Bool) {
        let e = platform.takeEffects(cpu)
        counts[3 * cpu + 1] += e.flushes
        counts[3 * cpu + 2] += e.serializations
        if entered { counts[3 * cpu] += 1 }
    }

    /// Brings `cpu`'s word to `target` through the core's transitions: entries from
    /// user or idle run what is owed there; exits and idle entries are plain stores.
    /// While an interrupt is open the word stays KERNEL; the target applies at its exit.
    public func drive(_ cpu: Int, to target: Target) {
        guard frames[cpu] == nil else { return }
        let f = core(cpu)
        var m = mode(cpu)
        // At most three steps: leave user or idle, then reach the target.
        for _ in 0..<3 {
            switch (m, target) {
            case (.user, .user), (.indeterminate, .user), (.kernel, .kernel): return
            case (.idle, .idle(let p)) where platform.word(cpu).polling == p: return
            case (.user, _), (.indeterminate, _):
                f.enterFromUser()
                account(cpu, entered: true)
            case (.idle, _):
                f.exitIdle()
                account(cpu, entered: true)
            case (.kernel, .user):
                f.exitToUser()
            case (.kernel, .idle(let p)):
                f.enterIdle(polling: p)
            }
            m = mode(cpu)
        }
    }

    /// The task on `cpu` is switched out (the adaptive policy's promotion ends).
    public func contextSwitch(_ cpu: Int) {
        guard frames[cpu] == nil else { return }
        core(cpu).contextSwitch()
    }

    /// An interrupt begins on `cpu` (the core's IRQ entry: from user or idle an entry
    /// that runs the owed work first). One at a time: a nested one is part of the first.
    public func interruptBegins(_ cpu: Int) {
        guard frames[cpu] == nil else { return }
        let before = mode(cpu)
        frames[cpu] = core(cpu).irqEnter()
        account(cpu, entered: before != .kernel)
    }

    /// The kinds an interrupt brought are handled (the core's handlers).
    public func handle(_ kinds: [WorkKind], on cpu: Int) {
        let f = core(cpu)
        for k in kinds { f.runHandler(k) }
        // The handlers' own flushes and serializations are the interrupt's work (its
        // cost is the handler's), not deferred work run at an entry.
        _ = platform.takeEffects(cpu)
    }

    /// The open interrupt of `cpu` returns (the core's IRQ exit). `wasIPI` drives the
    /// adaptive policy's promotion.
    public func interruptEnds(_ cpu: Int, wasIPI: Bool) {
        guard let frame = frames[cpu] else { return }
        frames[cpu] = nil
        core(cpu).irqExit(frame, wasIPI: wasIPI)
    }

    /// An interrupt that brings `kinds` and returns at once (an IPI this policy sends).
    public func interrupt(_ cpu: Int, with kinds: [WorkKind]) {
        if frames[cpu] != nil {
            // Already in an interrupt: the handlers run inside it.
            handle(kinds, on: cpu)
            return
        }
        interruptBegins(cpu)
        handle(kinds, on: cpu)
        interruptEnds(cpu, wasIPI: true)
    }

    /// The policy's route for `kind` from `requester` to `target`: the same call the
    /// simulator makes for each target of an on_each_cpu.
    public func route(_ kind: WorkKind, from requester: Int, to target: Int) -> Delivery {
        precondition(requester != target, "replay: cpu\(requester) routing to itself")
        return model.routes(kind, to: [target], core: core(requester), machine: machine)[0].delivery
    }

    /// What an isolated CPU's entry costs under this policy whatever it owes (the v8
    /// catch-up sequence, COALESCE_TLBI), ns.
    public var unconditionalEntryWorkNs: Double { model.unconditionalEntryWorkNs(machine.config) }

    /// The cost model of the machine config the replay was given.
    public var costs: CostModel { machine.config.costs }

    /// The cost model's handler time for `kind` (what an interrupt costs the target
    /// when the recording did not measure it), ns.
    public func modelHandlerNs(_ kind: WorkKind) -> Double { machine.config.costs.handlerNs(kind) }
}
