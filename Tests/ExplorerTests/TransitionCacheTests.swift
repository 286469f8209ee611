import Testing
@testable import Explorer

/// The depth-first search with its transition cache (TransitionCache.swift), every answer
/// checked against the move run (`Limits.checkTransitionCache`), and with the smallest
/// cache (4,096 entries: entries overwrite each other, and a move's several leaf sets are
/// tried).
func checkedCache() -> Limits {
    var l = Limits()
    l.depthFirst = true
    l.checkTransitionCache = true
    l.transitionCacheEntries = Limits.transitionCacheEntriesRange.lowerBound
    return l
}

/// The depth-first search as it runs by default: the cache answers, nothing is checked.
func defaultCache() -> Limits {
    var l = Limits()
    l.depthFirst = true
    return l
}

/// The depth-first search without the cache: every move runs.
func noCache() -> Limits {
    var l = Limits()
    l.depthFirst = true
    l.transitionCacheEntries = 0
    return l
}

/// On every standard scenario under SC, TSO and PSO: every move the cache answers is
/// answered as it runs (the footprints mark every read the keys rely on), and the
/// search with the cache reaches the same states, transitions, executions, depth,
/// operations and verdicts as the one without. Up to 10,000 states each (debug builds
/// are slow; the larger scenarios stop there, at the same point with and without
/// the cache, since the depth-first order is the same).
@Test(arguments: Scenario.standard, [MemoryModel.sc, .tso, .pso])
func theTransitionCacheChangesNothing(_ s: Scenario, _ model: MemoryModel) {
    func capped(_ l: Limits) -> Limits {
        var l = l
        l.statesMax = 10_000
        return l
    }
    let checked = Explorer(scenario: s, model: model, limits: capped(checkedCache())).run()
    #expect(checked.transitionCacheMismatch == nil, "\(s.name) \(model): \(checked.transitionCacheMismatch ?? "")")
    let c = Explorer(scenario: s, model: model, limits: capped(defaultCache())).run()
    let u = Explorer(scenario: s, model: model, limits: capped(noCache())).run()
    #expect(c.incomplete == u.incomplete)
    #expect(c.states == u.states && c.transitions == u.transitions && c.executions == u.executions && c.depth == u.depth,
            "\(s.name) \(model): \(c.states)/\(u.states) states, \(c.transitions)/\(u.transitions) transitions")
    #expect(c.invariants == u.invariants && c.violation == u.violation, "\(s.name) \(model)")
    #expect(c.operationsReached == u.operationsReached, "\(s.name) \(model)")
    #expect(u.cachedMoves == nil && u.ranMoves == nil)
    // It answered moves (on machines of a few hundred states fewer than it ran; on
    // the big ones 92-99%).
    #expect((c.cachedMoves ?? 0) > 0, "\(s.name) \(model): \(c.cachedMoves ?? 0) answered, \(c.ranMoves ?? 0) run")
}

/// Every mutant is still rejected with the cache, with the same violation and the same
/// counterexample as without it (the depth-first order is the same), and the cache's
/// answers hold on the mutant's states too.
@Test(arguments: MutantCase.catalog)
func theTransitionCacheStillRejectsEveryMutant(_ m: MutantCase) throws {
    let c = m.run(limits: defaultCache())
    let u = m.run(limits: noCache())
    let v = try #require(c.violation, "\(m.name) not caught with the transition cache")
    #expect(v == u.violation)
    #expect(c.counterexample?.moves == u.counterexample?.moves)
    let checked = m.run(limits: checkedCache())
    #expect(checked.transitionCacheMismatch == nil, "\(m.name): \(checked.transitionCacheMismatch ?? "")")
}

/// The same on a fixed sample of generated scenarios (other combinations of ops,
/// policies and pin protocols than the hand-written set).
@Test func theTransitionCacheHoldsOnGeneratedScenarios() {
    for s in Generator.sample(bound: 2, count: 12, seed: 2026_12_08) {
        for model in [MemoryModel.sc, .tso] {
            let checked = Explorer(scenario: s, model: model, limits: checkedCache()).run()
            #expect(checked.transitionCacheMismatch == nil, "\(s.name) \(model): \(checked.transitionCacheMismatch ?? "")")
            let u = Explorer(scenario: s, model: model, limits: noCache()).run()
            #expect(checked.states == u.states && checked.transitions == u.transitions && checked.invariants == u.invariants, "\(s.name) \(model)")
        }
    }
}

/// The check can fail: with the global leaf (pte, text, the ghost state) left out of
/// every key, moves are answered from states that differ in what they read, and the
/// check names one; unchecked, the search then misses states.
@Test func aKeyMissingALeafIsCaught() throws {
    let s = try #require(Scenario.named("tlb-flush"))
    var e = Explorer(scenario: s, model: .sc, limits: checkedCache())
    e.cacheMaskDropped = 1 << UInt8(s.cpuCount)
    let r = e.run()
    #expect(r.transitionCacheMismatch != nil)
    e.limits = defaultCache()
    let wrong = e.run()
    let right = Explorer(scenario: s, model: .sc, limits: noCache()).run()
    #expect(wrong.states != right.states)
}

/// The cache keeps its answers while it grows and while entries overwrite each other:
/// a machine big enough to fill the smallest table answers most moves with it too.
@Test func theSmallestCacheStillAnswers() throws {
    let s = try #require(Scenario.named("four-cpus-pin-rcu"))
    var small = defaultCache()
    small.transitionCacheEntries = Limits.transitionCacheEntriesRange.lowerBound
    let r = Explorer(scenario: s, model: .sc, limits: small).run()
    let big = Explorer(scenario: s, model: .sc, limits: defaultCache()).run()
    #expect(r.states == big.states && r.transitions == big.transitions)
    #expect((r.cachedMoves ?? 0) > 0 && (r.cachedMoves ?? 0) <= (big.cachedMoves ?? 0))
}
