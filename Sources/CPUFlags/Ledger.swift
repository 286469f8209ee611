/// The owed-work ledger: what requesters were told was deferred to each CPU and that
/// CPU has not run yet, and the check of the design's first promise against it (BRIEF
/// §4, "no lost work": every deferred request runs on the target before that target
/// executes any kernel code the work protects). Ghost state: hardware keeps none. The
/// explorer's machine and the simulator's platform both keep one and feed it from the
/// core's hooks (`Platform.routed`, and the effects that run the work), so the rule is
/// stated once.
public struct OwedWork: Hashable, Sendable {
    public private(set) var owed: [Work]

    public init(cpuCount: Int) { owed = Array(repeating: [], count: cpuCount) }

    /// A ledger that owes `owing[c]` on CPU c (the explorer decodes stored states).
    public init(owing: [Work]) { owed = owing }

    public subscript(cpu: Int) -> Work { owed[cpu] }

    /// A requester was told `route` for `kind` to `target`.
    public mutating func record(_ route: Route, kind: WorkKind, target: Int) {
        if case .deferred = route, let bit = kind.bit { owed[target].formUnion(bit) }
    }

    /// `cpu` ran `work` (a flush on its CR3 write, a serialization, its callbacks).
    public mutating func ran(_ work: Work, on cpu: Int) { owed[cpu].subtract(work) }

    /// The work `cpu` must have run before kernel code in `context` starts: everything,
    /// or for an NMI only what an NMI can run itself (`Work.nmiSafe`).
    public func due(on cpu: Int, context: KernelContext) -> Work {
        context == .nmi ? owed[cpu].intersection(Work.nmiSafe) : owed[cpu]
    }

    /// The violation, if kernel code in `context` beginning on `cpu` now breaks the
    /// promise.
    public func violationIfKernelCodeBegins(on cpu: Int, context: KernelContext) -> String? {
        let due = due(on: cpu, context: context)
        if due.isEmpty { return nil }
        return "cpu\(cpu) runs \(context == .nmi ? "NMI " : "")kernel code while it owes \(due)"
    }

    /// At the end of a run: owed work must still be pending in the word (a bit that
    /// vanished unrun is lost work).
    public func violationAtEnd(cpu: Int, word: CPUWord) -> String? {
        owed[cpu].isSubset(of: word.work) ? nil : "cpu\(cpu) owes \(owed[cpu]) but its word says \(word): the work is lost"
    }
}

extension CPUWord {
    /// The cells of a CPU that starts a run in `mode`: its word and the private copy of
    /// its counter (`Cell.counter`, which holds a KERNEL word with that counter and no
    /// other bits: bit 0 there is the adaptive policy's promotion). A CPU starting in an
    /// RCU-idle mode has been there a while: counter 1. Every harness starts its CPUs
    /// from here.
    /// `onCPU` tags the word with its CPU (the §2.12 variant's per-task words).
    @inlinable public static func initialCells(_ mode: Mode, onCPU: Int? = nil) -> (word: UInt64, counter: UInt64) {
        let counter: UInt32 = mode.isRCUIdle ? 1 : 0
        return (CPUWord(mode: mode, counter: counter, onCPU: onCPU).raw, CPUWord(mode: .kernel, counter: counter, onCPU: onCPU).raw)
    }
}
