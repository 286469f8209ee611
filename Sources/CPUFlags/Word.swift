/// The per-CPU word of the cpu_flags design (BRIEF §2.1): one 64-bit value that holds
/// both the CPU's mode and the work it owes on its next transition.
///
/// ```
///  63                          40 39      37 36 35 34 33 32 31      20 19       8 7    3  2  1 0
/// +------------------------------+----------+--+--+--+--+--+----------+----------+------+--+----+
/// |   RCU counter (24 bits)      | reserved |WK|PN|CB|SC|TL| reserved | CPU tag  | rsv  |PL|mode|
/// +------------------------------+----------+--+--+--+--+--+----------+----------+------+--+----+
///  \_ status: owner only _______/ \___ work: any CPU may set (CAS) ___/ \_ status: owner only_____/
///
///  mode  KERNEL 0, USER 1, IDLE 2, INDETERMINATE 3      (status byte: owner only)
///  PL    polling idle: a remote may wake this CPU by setting WK instead of an IPI
///  TL    kernel TLB flush owed            SC  sync_core owed (text was patched)
///  CB    queued callbacks pending         PN  pinned: entry must wait for pinners
///  WK    wake (need-resched) for a polling idle CPU
///  counter  bumped each time the CPU leaves an RCU extended quiescent state
///  CPU tag  0 in the per-CPU design; in the §2.12 variant (per-task words, BRIEF §2.12)
///        1 + the CPU the task last left the kernel on, so "USER on CPU 3" proves CPU 3
///        is in user mode (`isOn`)
/// ```
///
/// Ownership rule, on which every ordering comment in the core rests: the status (the
/// low byte with mode and polling, and the counter) is written only by the owning CPU
/// (task level, IRQ or NMI on that CPU). Remote CPUs only ever *add* work bits, and only
/// with a compare-and-swap that is conditional on the mode being deferrable (USER or
/// IDLE). So while the mode is KERNEL or INDETERMINATE nobody but the owner writes the
/// word, and the owner may use plain stores.
///
/// Why these positions: leaving an EQS is one fetch-add that subtracts the known mode
/// bits and adds one to the counter; the counter sits at the top so that its carry
/// falls off bit 63 instead of into a work bit. Entering one is a plain store of the
/// whole word, built from the owner's private copy of its status (no read of the word).
public struct CPUWord: Hashable, Sendable, CustomStringConvertible {
    public var raw: UInt64

    @inlinable public init(raw: UInt64) { self.raw = raw }

    // MARK: Layout. One place; `layoutIsTiled` proves the fields do not overlap.
    // Computed and inlinable (not `static let`) so that clients in other modules fold
    // them to constants instead of calling a lazy-global accessor on the hot path.
    @inlinable public static var modeShift: UInt64 { 0 }
    @inlinable public static var modeMask: UInt64 { 0b11 }
    @inlinable public static var pollingBit: UInt64 { 1 << 2 }
    @inlinable public static var tagShift: UInt64 { 8 }
    @inlinable public static var tagBits: UInt64 { 12 }
    @inlinable public static var tagMask: UInt64 { ((1 << tagBits) - 1) << tagShift }
    /// CPUs a tag can name (tag 0 means untagged).
    @inlinable public static var taggableCPUs: Int { (1 << Int(tagBits)) - 1 }
    /// The parts of the status that a transition carries over from the word (or the
    /// owner's private copy) it starts from: the counter and the CPU tag.
    @inlinable public static var carriedMask: UInt64 { counterMask | tagMask }
    /// The low byte, holding mode and polling.
    @inlinable public static var statusByteMask: UInt64 { 0xFF }
    @inlinable public static var workShift: UInt64 { 32 }
    @inlinable public static var workMask: UInt64 { UInt64(Work.all.rawValue) << workShift }
    @inlinable public static var counterShift: UInt64 { 40 }
    @inlinable public static var counterBits: UInt64 { 24 }
    @inlinable public static var counterMask: UInt64 { ((1 << counterBits) - 1) << counterShift }
    /// One step of the counter, as an addend to the raw word.
    @inlinable public static var counterUnit: UInt64 { 1 << counterShift }

    /// True when the fields do not overlap, mode and polling sit in the status byte, the
    /// work bits in bits 32...39 and the counter ends at bit 63 (so it wraps cleanly);
    /// checked by a test and by `assert` at start-up.
    public static var layoutIsTiled: Bool {
        let fields = [modeMask, pollingBit, tagMask, workMask, counterMask]
        var union: UInt64 = 0
        for f in fields {
            if union & f != 0 { return false }
            union |= f
        }
        return (modeMask | pollingBit) & ~statusByteMask == 0
            && tagMask & ~(UInt64(0xFFFFFF) << 8) == 0
            && workMask & ~(UInt64(0xFF) << 32) == 0
            && counterMask >> 63 == 1 && counterShift + counterBits == 64
    }

    @inlinable public init(mode: Mode, counter: UInt32, polling: Bool = false, work: Work = [], onCPU: Int? = nil) {
        var r = UInt64(mode.rawValue) << CPUWord.modeShift
        if let c = onCPU {
            precondition(c >= 0 && c < CPUWord.taggableCPUs, "CPU tag \(c) outside 0..<\(CPUWord.taggableCPUs)")
            r |= UInt64(c + 1) << CPUWord.tagShift
        }
        r |= (UInt64(counter) << CPUWord.counterShift) & CPUWord.counterMask
        if polling { r |= CPUWord.pollingBit }
        r |= UInt64(work.rawValue) << CPUWord.workShift
        self.raw = r
    }

    @inlinable public var mode: Mode { Mode(rawValue: UInt8(raw & CPUWord.modeMask))! }
    @inlinable public var polling: Bool { raw & CPUWord.pollingBit != 0 }
    @inlinable public var counter: UInt32 {
        UInt32((raw & CPUWord.counterMask) >> CPUWord.counterShift)
    }

    /// The CPU this (per-task) word was last tagged with; nil for an untagged word.
    @inlinable public var onCPU: Int? {
        let t = Int((raw & CPUWord.tagMask) >> CPUWord.tagShift)
        return t == 0 ? nil : t - 1
    }

    /// Whether this word speaks for `cpu`: an untagged word is a CPU's own (the
    /// per-CPU design); a tagged one (§2.12) only for the CPU in its tag. A requester
    /// that found a task's word through a stale `current` sees another CPU here and
    /// must interrupt instead.
    @inlinable public func isOn(_ cpu: Int) -> Bool {
        let t = (raw & CPUWord.tagMask) >> CPUWord.tagShift
        return t == 0 || t == UInt64(cpu + 1)
    }

    /// A status word for `mode` that keeps this word's counter and CPU tag (and no
    /// work): how every owner transition builds the word it stores.
    @inlinable public func status(_ mode: Mode, polling: Bool = false, work: Work = []) -> CPUWord {
        var r = (raw & CPUWord.carriedMask) | (UInt64(mode.rawValue) << CPUWord.modeShift)
        if polling { r |= CPUWord.pollingBit }
        r |= UInt64(work.rawValue) << CPUWord.workShift
        return CPUWord(raw: r)
    }

    @inlinable public var work: Work {
        Work(rawValue: UInt32(truncatingIfNeeded: (raw & CPUWord.workMask) >> CPUWord.workShift))
    }

    @inlinable public func with(work: Work) -> CPUWord {
        CPUWord(raw: (raw & ~CPUWord.workMask) | (UInt64(work.rawValue) << CPUWord.workShift))
    }
    @inlinable public func adding(_ w: Work) -> CPUWord {
        CPUWord(raw: raw | (UInt64(w.rawValue) << CPUWord.workShift))
    }

    public var description: String {
        var s = "\(mode)"
        if polling { s += "+poll" }
        if let c = onCPU { s += "@cpu\(c)" }
        s += " #\(counter)"
        if !work.isEmpty { s += " [\(work)]" }
        return s
    }
}

/// What a CPU is doing, as far as remote CPUs need to know (BRIEF §2.2).
public enum Mode: UInt8, Hashable, Sendable, CaseIterable, CustomStringConvertible {
    /// Normal kernel code. Remote work must interrupt.
    case kernel = 0
    /// User mode, including the late-exit and early-entry windows, which touch no
    /// vmalloc space and no patchable text. Deferrable work is deferred; RCU-idle.
    case user = 1
    /// Idle. Like USER for deferral (work runs on idle exit); RCU-idle.
    case idle = 2
    /// "In user mode, but made no promise to pick up deferred work": the lazy exit.
    /// Remote work must interrupt; not RCU-idle (its entry has no full barrier).
    case indeterminate = 3

    /// A remote may set deferrable work bits instead of interrupting.
    @inlinable public var defersWork: Bool { self == .user || self == .idle }
    /// RCU may treat the CPU as in an extended quiescent state.
    @inlinable public var isRCUIdle: Bool { self == .user || self == .idle }

    public var description: String {
        switch self {
        case .kernel: return "KERNEL"
        case .user: return "USER"
        case .idle: return "IDLE"
        case .indeterminate: return "INDET"
        }
    }
}

/// Work bits in the word's work half.
public struct Work: OptionSet, Hashable, Sendable, CustomStringConvertible {
    public let rawValue: UInt32
    @inlinable public init(rawValue: UInt32) { self.rawValue = rawValue }

    @inlinable public static var kernelTLBFlush: Work { Work(rawValue: 1 << 0) }
    @inlinable public static var syncCore: Work { Work(rawValue: 1 << 1) }
    @inlinable public static var callbacks: Work { Work(rawValue: 1 << 2) }
    @inlinable public static var pinned: Work { Work(rawValue: 1 << 3) }
    @inlinable public static var wake: Work { Work(rawValue: 1 << 4) }
    @inlinable public static var all: Work { Work(rawValue: 0b1_1111) }

    /// What an NMI may run itself: flushing and serializing are NMI-safe; callbacks,
    /// waking and waiting for pinners are not, so an NMI leaves those bits in place.
    @inlinable public static var nmiSafe: Work { Work(rawValue: 0b11) }

    public var description: String {
        var parts: [String] = []
        if contains(.kernelTLBFlush) { parts.append("TLB") }
        if contains(.syncCore) { parts.append("SYNC") }
        if contains(.callbacks) { parts.append("CB") }
        if contains(.pinned) { parts.append("PIN") }
        if contains(.wake) { parts.append("WAKE") }
        return parts.joined(separator: "|")
    }
}
