/// How an isolated CPU exits to user mode (BRIEF §2.7).
public enum ExitPolicy: String, Hashable, Sendable, CaseIterable, Codable {
    /// Always USER: deferrable work is deferred, entry costs one atomic read-modify-write.
    case strict
    /// Always INDETERMINATE: entry is a plain store, remote work interrupts as today.
    case lazy
    /// INDETERMINATE, promoted to USER after an IPI interrupted user mode and the CPU
    /// returns there without a context switch ("ONEHZ").
    case adaptive
}

/// How a pinner holds a remote CPU in user mode (BRIEF §2.11).
public enum PinProtocol: String, Hashable, Sendable, CaseIterable, Codable {
    /// Bump the target's pin count, then set PINNED in its word by a CAS conditional on
    /// a deferrable mode. The entry's read-modify-write returns PINNED and only then waits for
    /// the count: no cost on an unpinned entry.
    case flagInWord
    /// The sketch in the thread, completed: bump the count (serialized per target by a
    /// pin lock, so a load and a plain store), full fence, check the mode; the entry loads the count
    /// after its read-modify-write on every entry (a Dekker pair; one extra load per entry).
    case countThenCheck
}

/// Where a CPU's flags word lives (BRIEF §2.12).
public enum WordPlacement: String, Hashable, Sendable, CaseIterable, Codable {
    /// One word per CPU (the design of the thread).
    case perCPU = "per-cpu"
    /// The cheaper variant mentioned in the seed: the word is the running task's
    /// (`ti_flags`), and USER is stored with the CPU number (the word's CPU tag), so
    /// "USER on CPU 3" proves CPU 3 is in user mode. Requesters find the word through
    /// the target's `current` (`Cell.current`); a task that migrated meanwhile shows
    /// another CPU's tag and is interrupted instead. RCU stays on the per-CPU word
    /// (not modeled with per-task words).
    case perTask = "per-task"
}

/// Deliberately wrong variants of the protocol, for showing that the explorer rejects
/// them. Each is a named deviation from the correct code, switched on here so that no
/// second copy of any transition exists. Empty in every real use.
public struct Mutations: OptionSet, Hashable, Sendable {
    public let rawValue: UInt32
    @inlinable public init(rawValue: UInt32) { self.rawValue = rawValue }

    /// The pin sketch of the thread taken literally: count, barrier, mode check, and no
    /// flag in the word, so an entry that reads only its word never waits.
    @inlinable public static var pinSketchLiteral: Mutations { Mutations(rawValue: 1 << 0) }
    /// Remote work set by load + plain store instead of compare-and-swap.
    @inlinable public static var remotePlainStore: Mutations { Mutations(rawValue: 1 << 1) }
    /// Entry as load then store instead of one read-modify-write.
    @inlinable public static var entryLoadThenStore: Mutations { Mutations(rawValue: 1 << 2) }
    /// Exit-to-user and idle-entry stores relaxed instead of release (the ordering
    /// sites `exit-store` and `idle-store` weakened: `Mutations.weakening`).
    @inlinable public static var exitStoreRelaxed: Mutations { Mutations(rawValue: 1 << 3) }
    /// RCU compares modes only: no counter.
    @inlinable public static var noRCUCounter: Mutations { Mutations(rawValue: 1 << 4) }
    /// INDETERMINATE treated as deferrable by remote requesters.
    @inlinable public static var indeterminateDeferrable: Mutations { Mutations(rawValue: 1 << 5) }
    /// Owed work run after the first kernel access of the entry path.
    @inlinable public static var workAfterKernelCode: Mutations { Mutations(rawValue: 1 << 6) }
    /// NMI exit restores the word it loaded before its read-modify-write.
    @inlinable public static var nmiStaleRestore: Mutations { Mutations(rawValue: 1 << 7) }
    /// Unpin before the on-behalf work ends.
    @inlinable public static var unpinBeforeWorkEnds: Mutations { Mutations(rawValue: 1 << 8) }
    /// `countThenCheck` pinning without its full fence (the site `pin-fence`).
    @inlinable public static var pinNoFence: Mutations { Mutations(rawValue: 1 << 9) }
    /// Grace period samples without the full fence after unpublishing (the site
    /// `grace-period-fence`).
    @inlinable public static var gracePeriodNoFence: Mutations { Mutations(rawValue: 1 << 10) }
    /// `flagInWord` pinning sets the flag before bumping the count.
    @inlinable public static var pinFlagBeforeCount: Mutations { Mutations(rawValue: 1 << 11) }
    /// INDETERMINATE treated as RCU-idle by grace periods.
    @inlinable public static var indeterminateRCUIdle: Mutations { Mutations(rawValue: 1 << 12) }
    /// The brief's literal entry: exchange to {KERNEL, work = 0}, so the owed work is
    /// only in a register until it runs, invisible to an NMI landing in between.
    @inlinable public static var entryExchange: Mutations { Mutations(rawValue: 1 << 13) }
    /// The entry runs its queued callbacks before waiting for pinners: its own
    /// per-CPU queue, touched while a pinner may be working on it (found by the
    /// generated scenarios and the wider pin-exclusion check).
    @inlinable public static var callbacksBeforePinWait: Mutations { Mutations(rawValue: 1 << 14) }
    /// NMI exit drops the counter step its entry made, so the NMI's stretch and the
    /// next one share a counter: a grace period that sampled inside the NMI is never
    /// credited (RCU requirement 3; accepted by the explorer's old end-state rule).
    @inlinable public static var nmiExitDropsCounterStep: Mutations { Mutations(rawValue: 1 << 15) }
    /// `countThenCheck` pinners update the pin count without the per-target pin lock:
    /// two pinners of one CPU can both store 1, and the first unpin lets the target run
    /// while the second still works on its behalf.
    @inlinable public static var pinWithoutLock: Mutations { Mutations(rawValue: 1 << 16) }
    /// The §2.12 variant without the CPU number: a requester trusts USER (or IDLE) in
    /// the word of the task it found as the target's `current`, wherever that task
    /// now runs.
    @inlinable public static var taskWordWithoutCPU: Mutations { Mutations(rawValue: 1 << 17) }

    /// Every named mutant, with its name, for tests and the CLI.
    public static let named: [(name: String, mutation: Mutations)] = [
        ("pin-sketch-literal", .pinSketchLiteral),
        ("remote-plain-store", .remotePlainStore),
        ("entry-load-then-store", .entryLoadThenStore),
        ("exit-store-relaxed", .exitStoreRelaxed),
        ("no-rcu-counter", .noRCUCounter),
        ("indeterminate-deferrable", .indeterminateDeferrable),
        ("work-after-kernel-code", .workAfterKernelCode),
        ("nmi-stale-restore", .nmiStaleRestore),
        ("unpin-before-work-ends", .unpinBeforeWorkEnds),
        ("pin-no-fence", .pinNoFence),
        ("grace-period-no-fence", .gracePeriodNoFence),
        ("pin-flag-before-count", .pinFlagBeforeCount),
        ("indeterminate-rcu-idle", .indeterminateRCUIdle),
        ("entry-exchange", .entryExchange),
        ("callbacks-before-pin-wait", .callbacksBeforePinWait),
        ("nmi-exit-drops-counter-step", .nmiExitDropsCounterStep),
        ("pin-without-lock", .pinWithoutLock),
        ("task-word-without-cpu", .taskWordWithoutCPU),
    ]

    public var names: [String] {
        Mutations.named.filter { contains($0.mutation) }.map(\.name)
    }
}

/// The protocol's configuration: values passed in, never forks of the code.
public struct ProtocolConfig: Hashable, Sendable {
    public var exitPolicy: ExitPolicy
    public var pinProtocol: PinProtocol
    /// Per-CPU words (the design) or per-task words with a CPU tag (§2.12).
    public var placement: WordPlacement
    public var mutations: Mutations { didSet { _orderings = Self.orderings(mutations, weakening) } }
    /// Ordering mutants: sites whose declared ordering is weakened (OrderingSites.swift).
    /// Empty in every real use.
    public var weakening: Weakening { didSet { _orderings = Self.orderings(mutations, weakening) } }
    /// What the core's ordering sites apply: `weakening` and the named mutants that are
    /// weakenings (`Mutations.weakening`). Kept, not computed per access: the round
    /// trip reads it twice.
    @inlinable public var orderings: Weakening { _orderings }
    @usableFromInline var _orderings: Weakening
    /// Compare-and-swap retries a remote request may make before the core calls it a
    /// livelock. Each retry means the target's word changed under us; the owner changes
    /// it at most twice per user round trip, so a handful is plenty.
    public var casRetriesMax: Int

    @inlinable public init(
        exitPolicy: ExitPolicy = .strict, pinProtocol: PinProtocol = .flagInWord, placement: WordPlacement = .perCPU,
        mutations: Mutations = [], weakening: Weakening = Weakening(), casRetriesMax: Int = 64
    ) {
        self.exitPolicy = exitPolicy
        self.pinProtocol = pinProtocol
        self.placement = placement
        self.mutations = mutations
        self.weakening = weakening
        _orderings = Self.orderings(mutations, weakening)
        self.casRetriesMax = casRetriesMax
    }

    @inlinable static func orderings(_ m: Mutations, _ w: Weakening) -> Weakening {
        var o = m.weakening
        o.formUnion(w)
        return o
    }
}
