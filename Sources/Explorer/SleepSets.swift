/// Sleep sets (Godefroid, 1996), in the exact breadth-first search: a move is not
/// tried from a state when its outcome is reached another way. Every reachable state is
/// still visited (the tests check the same states, executions and verdicts as without
/// them, on every standard scenario and model); what is saved is the moves tried and the
/// successors encoded and looked up (`Report.sleptMoves`).
///
/// The rule: when a state's moves are tried in order m1, m2, ..., the successor by mi
/// inherits as asleep every move asleep at the state or tried before mi there (m1..mi-1)
/// that is independent of mi: of another CPU, with footprints that do not conflict
/// (`Footprint`, measured as the move runs: every memory access marks its cell, every
/// ghost hook the CPUs whose ghost state it uses). Such a move mj commutes with mi: the
/// state after mi then mj is the state after mj then mi, which the search reaches from
/// mj's successor, so trying mj after mi would only find it again. Independent moves
/// neither enable nor disable each other, so a move asleep is enabled; a state whose
/// only enabled moves are asleep is not an end state. A violation inside mj after mi
/// happens inside mj before mi too (its reads are the same), where mj was tried.
/// Store-buffer drains are moves like any other, so this holds under SC, TSO and PSO.
///
/// With stored states (Godefroid's thesis, section 5.3): a state reached again may
/// keep asleep only the moves asleep on every path to it. If it waits in the frontier,
/// its sleep set shrinks to the common part; if it was expanded already, the moves that
/// were asleep then and are not now are tried from it (a re-expansion entry in the next
/// level). That second case has never fired on the standard set (`Report.reexpanded`
/// is 0 there, also in isolated-mix with a fourth CPU): every path to a state has the
/// same length in these machines, so it is always still waiting. Counterexamples: a state may first be reached by a path longer than the
/// shortest, so on a violation the search runs again without sleep sets (up to a cap) to
/// report a shortest one (`Report.counterexampleNote`).
struct Sleeper {
    var footprint: Footprint
    var bit: UInt32
    /// The move's CPU (all that the rule needs of the move besides its bit): 24 bytes a
    /// sleeper, and a big frontier holds millions of them.
    var cpu: UInt8

    init(move: Move, bit: UInt32, footprint: Footprint) {
        self.footprint = footprint
        self.bit = bit
        cpu = UInt8(move.cpu)
    }
}

enum SleepSets {
    /// A move's bit in a state's sleep set (32 bits: 4 CPUs x step, IPI, IRQ, NMI, and
    /// the first 4 store-buffer slots); nil for a drain of a later slot, which then never
    /// sleeps (always tried: safe).
    @inline(__always) static func bit(_ m: Move) -> UInt32? {
        switch m {
        case .step(let c, let k): return k == 0 ? 1 << UInt32(c * 4) : nil
        case .ipi(let c): return 1 << UInt32(c * 4 + 1)
        case .irq(let c): return 1 << UInt32(c * 4 + 2)
        case .nmi(let c): return 1 << UInt32(c * 4 + 3)
        case .mce: return nil  // no bit left: never asleep (always tried: safe)
        case .drain(let c, let i): return i < 4 ? 1 << UInt32(16 + c * 4 + i) : nil
        }
    }

    /// The sleep set of the successor by `move` (with `footprint`), from the moves asleep
    /// at the state and those tried there before it.
    static func after(_ move: Move, _ footprint: Footprint, asleep: [Sleeper], done: [Sleeper]) -> [Sleeper] {
        var out: [Sleeper] = []
        let cpu = UInt8(move.cpu)
        for z in asleep where z.cpu != cpu && z.footprint.commutes(with: footprint) { out.append(z) }
        for z in done where z.cpu != cpu && z.footprint.commutes(with: footprint) { out.append(z) }
        return out
    }
}
