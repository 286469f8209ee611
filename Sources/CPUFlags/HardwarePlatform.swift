import Atomics

/// The protocol on real hardware atomics (swift-atomics): what a hand-written version
/// would do, with the CPU-local hooks empty. `Interrupt == Never`, so every `try` in
/// the core compiles away when specialized for this type.
///
/// Each CPU's cells share one 64-byte line of their own, so CPUs do not false-share.
public struct HardwarePlatform: Platform, @unchecked Sendable {
    public typealias Interrupt = Never

    /// Cells per CPU line (8 × 8 bytes = one 64-byte cache line).
    public static let lineWords = 8

    public let cpuCount: Int
    @usableFromInline let base: UnsafeMutablePointer<UInt64.AtomicRepresentation>
    /// The callback handler, boxed and retained by hand so that copying the platform
    /// (every `CPUFlags` holds one) costs no reference counting on the hot path.
    @usableFromInline let handler: Unmanaged<CallbackBox>?

    @usableFromInline final class CallbackBox {
        @usableFromInline let run: @Sendable (UInt64, Int, Int) -> Void
        init(_ run: @escaping @Sendable (UInt64, Int, Int) -> Void) { self.run = run }
    }

    /// Allocates the cells for `cpuCount` CPUs, every word starting in KERNEL mode.
    /// `onCallbacks(ids, target, runner)` runs queued callbacks. Call `deallocate()`
    /// when done.
    public init(cpuCount: Int, onCallbacks: (@Sendable (UInt64, Int, Int) -> Void)? = nil) {
        precondition(cpuCount > 0 && cpuCount <= 4096, "cpuCount \(cpuCount) outside 1...4096")
        self.cpuCount = cpuCount
        let n = cpuCount * Self.lineWords
        base = .allocate(capacity: n)
        base.initialize(repeating: .init(0), count: n)
        self.handler = onCallbacks.map { Unmanaged.passRetained(CallbackBox($0)) }
    }

    /// Frees the cells and the callback handler. No copy may be used afterwards.
    public func deallocate() {
        base.deallocate()
        handler?.release()
    }

    /// The atomic at `at` (a runtime reads its own word's mode through it).
    @inlinable public func atomic(_ at: Location) -> UnsafeAtomic<UInt64> {
        UnsafeAtomic(at: base + (at.cpu * Self.lineWords + Int(at.cell.rawValue)))
    }

    // swift-atomics takes orderings only as literal constants, so each call dispatches
    // on the ordering; after inlining with the core's constant orderings the dispatch
    // folds away and one instruction is left.
    @inlinable public func load(_ at: Location, ordering: AtomicLoadOrdering) -> UInt64 {
        let a = atomic(at)
        if ordering == .relaxed { return a.load(ordering: .relaxed) }
        if ordering == .acquiring { return a.load(ordering: .acquiring) }
        return a.load(ordering: .sequentiallyConsistent)
    }
    @inlinable public func store(_ value: UInt64, at: Location, ordering: AtomicStoreOrdering) {
        let a = atomic(at)
        if ordering == .relaxed { a.store(value, ordering: .relaxed) }
        else if ordering == .releasing { a.store(value, ordering: .releasing) }
        else { a.store(value, ordering: .sequentiallyConsistent) }
    }
    @inlinable public func loadPrivate(_ at: Location) -> UInt64 { atomic(at).load(ordering: .relaxed) }
    @inlinable public func storePrivate(_ value: UInt64, at: Location) { atomic(at).store(value, ordering: .relaxed) }
    @inlinable public func exchange(_ value: UInt64, at: Location, ordering: AtomicUpdateOrdering) -> UInt64 {
        let a = atomic(at)
        switch ordering {
        case .relaxed: return a.exchange(value, ordering: .relaxed)
        case .acquiring: return a.exchange(value, ordering: .acquiring)
        case .releasing: return a.exchange(value, ordering: .releasing)
        case .acquiringAndReleasing: return a.exchange(value, ordering: .acquiringAndReleasing)
        default: return a.exchange(value, ordering: .sequentiallyConsistent)
        }
    }
    @inlinable public func compareExchange(
        expected: UInt64, desired: UInt64, at: Location, ordering: AtomicUpdateOrdering
    ) -> (exchanged: Bool, original: UInt64) {
        let a = atomic(at)
        switch ordering {
        case .relaxed: return a.compareExchange(expected: expected, desired: desired, ordering: .relaxed)
        case .acquiring: return a.compareExchange(expected: expected, desired: desired, ordering: .acquiring)
        case .releasing: return a.compareExchange(expected: expected, desired: desired, ordering: .releasing)
        case .acquiringAndReleasing:
            return a.compareExchange(expected: expected, desired: desired, ordering: .acquiringAndReleasing)
        default: return a.compareExchange(expected: expected, desired: desired, ordering: .sequentiallyConsistent)
        }
    }
    @inlinable public func fetchAdd(_ delta: UInt64, at: Location, ordering: AtomicUpdateOrdering) -> UInt64 {
        let a = atomic(at)
        switch ordering {
        case .relaxed: return a.loadThenWrappingIncrement(by: delta, ordering: .relaxed)
        case .acquiring: return a.loadThenWrappingIncrement(by: delta, ordering: .acquiring)
        case .releasing: return a.loadThenWrappingIncrement(by: delta, ordering: .releasing)
        case .acquiringAndReleasing: return a.loadThenWrappingIncrement(by: delta, ordering: .acquiringAndReleasing)
        default: return a.loadThenWrappingIncrement(by: delta, ordering: .sequentiallyConsistent)
        }
    }
    @inlinable public func fetchOr(_ bits: UInt64, at: Location, ordering: AtomicUpdateOrdering) -> UInt64 {
        let a = atomic(at)
        switch ordering {
        case .relaxed: return a.loadThenBitwiseOr(with: bits, ordering: .relaxed)
        case .acquiring: return a.loadThenBitwiseOr(with: bits, ordering: .acquiring)
        case .releasing: return a.loadThenBitwiseOr(with: bits, ordering: .releasing)
        case .acquiringAndReleasing: return a.loadThenBitwiseOr(with: bits, ordering: .acquiringAndReleasing)
        default: return a.loadThenBitwiseOr(with: bits, ordering: .sequentiallyConsistent)
        }
    }
    @inlinable public func fullFence() { atomicMemoryFence(ordering: .sequentiallyConsistent) }
    @inlinable public func waitUntil(
        _ at: Location, ordering: AtomicLoadOrdering, _ condition: (UInt64) -> Bool
    ) -> UInt64 {
        let a = atomic(at)
        while true {
            let v = ordering == .relaxed ? a.load(ordering: .relaxed) : a.load(ordering: .acquiring)
            if condition(v) { return v }
        }
    }

    @inlinable public func switchAddressSpace(cpu: Int, toKernel: Bool, flushTLB: Bool) {}
    @inlinable public func serialize(cpu: Int) {}
    @inlinable public func runCallbacks(_ ids: UInt64, of target: Int, on runner: Int) {
        handler?._withUnsafeGuaranteedRef { $0.run(ids, target, runner) }
    }
    @inlinable public func kernelCodeBegins(cpu: Int, context: KernelContext) {}
    @inlinable public func idleBegins(cpu: Int) {}
    @inlinable public func kernelCodeEnds(cpu: Int, entering: Mode) {}
    @inlinable public func rcuWaits(on target: Int, snapshot: UInt64) {}
    @inlinable public func onBehalf(of target: Int, by runner: Int, begins: Bool) {}
    @inlinable public func callbackQueued(_ id: Int, for target: Int) {}
    @inlinable public func routed(_ kind: WorkKind, to target: Int, by requester: Int, _ route: Route) {}
    // This platform has no way to interrupt another thread (the runtime's signals are a
    // separate conformer): `submit` returns the targets to interrupt, and nothing waits.
    @inlinable public func sendInterrupts(_ targets: [Int], kind: WorkKind, from requester: Int) {}
    @inlinable public func waitForInterrupts(from requester: Int) {}
    @inlinable public func interruptWork(_ kind: WorkKind, index: Int, on cpu: Int) {}
    @inlinable public func quiescentStateReported(by target: Int) -> Bool { false }
    @inlinable public func reached(_ operation: CoreOperation) {}
    @inlinable public func check(_ at: Location, _ holds: (UInt64) -> Bool, _ message: @autoclosure () -> String) {
        assert(holds(atomic(at).load(ordering: .relaxed)), message())
    }
    public func limitExceeded(_ message: String) -> Never { fatalError(message) }

    /// The word of `cpu`, for inspection.
    public func word(_ cpu: Int) -> CPUWord { CPUWord(raw: load(Location(.word, cpu), ordering: .acquiring)) }
}
