import CPUFlags
import Foundation
import Simulator
import Testing

@testable import Traces

// MARK: Counts agree with grep/awk over the same file

/// CSD requests per (target, callback) as awk counts them in `path` (decompressed by xz
/// when it ends in .xz): an implementation apart from the analyzer's.
func awkCounts(_ path: String) throws -> [String: Int] {
    let cat = path.hasSuffix(".xz") ? "xz -dc '\(path)'" : "cat '\(path)'"
    let r = try shell(cat + #" | awk '/ csd_queue_cpu: / { t=""; f=""; for (i=1;i<=NF;i++) { if ($i ~ /^cpu=/) t=substr($i,5); if ($i ~ /^func=/) f=substr($i,6) } print t "/" f }' | sort | uniq -c"#)
    #expect(r.status == 0)
    var out: [String: Int] = [:]
    for line in r.out.split(separator: "\n") {
        let w = line.split(separator: " ")
        if w.count == 2, let n = Int(w[0]) { out[String(w[1])] = n }
    }
    return out
}

func analyzerCSDCounts(_ report: AnalysisReport) -> [String: Int] {
    var out: [String: Int] = [:]
    // Rows of IPIs without a CSD (the reschedule IPI) are not csd_queue_cpu lines.
    for c in report.callbacks where c.callback != "resched" { out["\(c.target)/\(c.callback)"] = c.requests }
    return out
}

@Test(arguments: ["static-keys-excerpt.txt", "small-raw.txt", "tc-report-excerpt.txt"])
func fixtureCountsMatchAwk(_ name: String) throws {
    let path = Fixture.path(name)
    let o = try analyze(path)
    let report = try #require(o.report, "\(o.error ?? "")")
    let expected = try awkCounts(path)
    #expect(!expected.isEmpty, "the fixture \(name) has CSD requests")
    #expect(analyzerCSDCounts(report) == expected)
    #expect(report.violations.isEmpty)
}

/// Acceptance: each recording of ../shared/traces, counted by the analyzer and by awk.
@Test func sharedTraceCountsMatchAwk() throws {
    let files = Fixture.sharedTraceFiles
    if files.isEmpty {
        print("skipped: no recordings in \(Fixture.sharedTraces.path) (the brief's ../shared/traces is not next to this checkout)")
        return
    }
    for path in files {
        let o = try analyze(path)
        let report = try #require(o.report, "\(path): \(o.error ?? "")")
        #expect(report.container == "xz" && report.format == "ftrace")
        #expect(analyzerCSDCounts(report) == (try awkCounts(path)), "\(path)")
        #expect(report.violations.isEmpty, "\(path): \(report.violations.map(\.message))")
    }
}

// MARK: The acceptance on static keys

/// do_sync_core to the isolated CPU hits user mode, interrupts under linux, is deferred
/// under cpuflags; wakeups interrupt under every policy.
func checkStaticKeys(_ report: AnalysisReport, syncCoreAtLeast: Int) throws {
    let sync = try #require(report.callbacks.first { $0.target == 1 && $0.callback == "do_sync_core" })
    #expect(sync.requests >= syncCoreAtLeast)
    let user = sync.modeAtRequest["user"] ?? 0
    // Nearly all hit the spinner in user mode; the rest land while CPU 1 handles the
    // previous round's IPI.
    #expect(Double(user) >= 0.95 * Double(sync.requests), "\(sync.modeAtRequest)")
    #expect(user + (sync.modeAtRequest["irq"] ?? 0) == sync.requests, "\(sync.modeAtRequest)")
    #expect(sync.byPolicy["linux"]?.deliveries == ["interrupted": sync.requests])
    #expect(sync.byPolicy["cpuflags"]?.deliveries["deferred"] == user)
    #expect(sync.kind == "syncCore" && sync.class == "deferrable")
    #expect(report.isolated.cpus == [1] && report.isolated.source == "detected")
    let wakeups = report.callbacks.filter { ["sched_ttwu_pending", "nohz_csd_func", "resched"].contains($0.callback) }
    #expect(!wakeups.isEmpty)
    for w in wakeups {
        for p in report.policies {
            // No CPU polls in idle in these recordings (cpu_idle state=1, hlt).
            #expect(w.byPolicy[p]?.deliveries == ["interrupted": w.requests], "\(w.target)/\(w.callback) under \(p)")
        }
    }
    let cpu1 = try #require(report.targets.first { $0.cpu == 1 })
    #expect(cpu1.byPolicy["cpuflags"]!.taskInterruptions < cpu1.byPolicy["linux"]!.taskInterruptions)
}

@Test func staticKeysExcerpt() throws {
    let o = try analyze(Fixture.path("static-keys-excerpt.txt"))
    try checkStaticKeys(try #require(o.report, "\(o.error ?? "")"), syncCoreAtLeast: 60)
}

@Test func staticKeysSharedRecording() throws {
    guard let path = Fixture.sharedTraceFiles.first(where: { $0.hasSuffix("static-keys.txt.xz") }) else {
        print("skipped: static-keys.txt.xz not in \(Fixture.sharedTraces.path)")
        return
    }
    let o = try analyze(path)
    try checkStaticKeys(try #require(o.report), syncCoreAtLeast: 2600)
}

// MARK: Formats and containers

@Test func formatsAreNamed() throws {
    #expect(try analyze(Fixture.path("static-keys-excerpt.txt")).report?.format == "ftrace")
    #expect(try analyze(Fixture.path("tc-report-excerpt.txt")).report?.format == "trace-cmd-report")
}

@Test func compressedInputsGiveTheSameReport() throws {
    let s = try Scratch()
    defer { s.remove() }
    let plain = Fixture.path("static-keys-excerpt.txt")
    let base = try #require(try analyze(plain).report)
    for (tool, ext, container) in [("xz", "xz", "xz"), ("gzip", "gz", "gzip")] {
        guard hasTool(tool) else { print("skipped: \(tool) not installed"); continue }
        let out = s.dir.appendingPathComponent("t.\(ext)").path
        #expect(try shell("\(tool) -c '\(plain)' > '\(out)'").status == 0)
        let r = try #require(try analyze(out).report)
        #expect(r.container == container)
        #expect(analyzerCSDCounts(r) == analyzerCSDCounts(base))
        #expect(r.events == base.events)
    }
}

@Test func truncatedCompressedFileIsAnErrorNamingIt() throws {
    guard hasTool("xz") else { print("skipped: xz not installed"); return }
    let s = try Scratch()
    defer { s.remove() }
    let out = s.dir.appendingPathComponent("cut.txt.xz").path
    let whole = s.dir.appendingPathComponent("whole.xz").path
    #expect(try shell("xz -c '\(Fixture.path("static-keys-excerpt.txt"))' > '\(whole)'").status == 0)
    let size = try #require(try FileManager.default.attributesOfItem(atPath: whole)[.size] as? Int)
    #expect(try shell("head -c \(size / 2) '\(whole)' > '\(out)'").status == 0)
    let o = try analyze(out)
    let e = try #require(o.error, "no error for a truncated file")
    #expect(e.contains(out) && e.contains("truncated or corrupt xz data"), "\(e)")
}

/// The .dat and the raw text of one recording (made here: tracefs, then trace-cmd
/// extract) give the same requests.
@Test func traceCmdDatMatchesItsRawText() throws {
    guard hasTool("trace-cmd") else {
        print("skipped: trace-cmd is not installed (Debian: apt-get install trace-cmd; .ci/run installs it)")
        return
    }
    let dat = try #require(try analyze(Fixture.path("small.dat")).report)
    let raw = try #require(try analyze(Fixture.path("small-raw.txt")).report)
    #expect(dat.container == "trace-cmd-dat" && dat.format == "trace-cmd-report")
    #expect(analyzerCSDCounts(dat) == analyzerCSDCounts(raw))
    #expect(!analyzerCSDCounts(dat).isEmpty)
    #expect(dat.events == raw.events)
}

// MARK: Errors and warnings

@Test func malformedLinesWarnWithTheirNumberThenFail() throws {
    var text = try String(contentsOfFile: Fixture.path("tc-report-excerpt.txt"), encoding: .utf8)
    text += "this is not an event\n"
    let o = try analyze(text: text)
    #expect(o.report?.warnings.malformedLines == 1)
    #expect(o.warnings.contains { $0.contains(":401: not an ftrace event line") }, "\(o.warnings)")
    let many = text + String(repeating: "garbage line\n", count: 5)
    let o2 = try analyze(text: many, badLinesMax: 3)
    #expect(o2.error?.contains("malformed lines (more than --max-bad-lines 3)") == true, "\(o2.error ?? "no error")")
}

@Test func lostEventsAndDisorderAreWarnings() throws {
    var text = ftrace([
        ("spin-5", 1, "d.h..", 10.000001, "local_timer_entry", "vector=236"),
        ("spin-5", 1, "d.h..", 10.000002, "local_timer_exit", "vector=236"),
        ("spin-5", 1, "d.h..", 10.000000, "local_timer_entry", "vector=236"),
    ])
    text = text.replacingOccurrences(of: "entries-written: 3/3", with: "entries-written: 3/10")
    text += "CPU:1 [LOST 42 EVENTS]\n"
    let r = try #require(try analyze(text: text).report)
    #expect(r.warnings.headerLostEvents == 7)
    #expect(r.warnings.lostEvents == 42)
    #expect(r.warnings.outOfOrderEvents == 1)
}

@Test func badInputsAreErrorsNamingTheInput() throws {
    let s = try Scratch()
    defer { s.remove() }
    #expect(try analyze("/nonexistent/x.txt").error?.contains("/nonexistent/x.txt: cannot open") == true)
    #expect(try analyze(s.dir.path).error?.contains("is a directory") == true)
    let empty = s.file("empty.txt", "")
    #expect(try analyze(empty).error?.contains("no ftrace events") == true)
    let long = s.file("long.txt", String(repeating: "x", count: TraceLimits.lineBytesMax + 10) + "\n")
    #expect(try analyze(long).error?.contains("long.txt:1: line longer than") == true)
    let words = s.file("words.txt", "hello\nworld\n")
    #expect(try analyze(words, badLinesMax: 0).error?.contains("words.txt:1:") == true)
}

// MARK: The callback catalog

@Test func catalogCoversEveryClassAndTheBriefsCallbacks() throws {
    let c = try CallbackCatalog.builtIn()
    let classes = Set(c.entries.values.map(\.kind.workClass))
    #expect(classes == [.deferrable, .onBehalf, .mustInterrupt, .wakesByBit, .rcuIdleSkips])
    let brief: [String: WorkKind] = [
        "do_flush_tlb_all": .kernelTLBFlush, "do_kernel_range_flush": .kernelTLBFlush, "do_sync_core": .syncCore,
        "rcu_exp_handler": .rcuExpedited, "flush_tlb_func": .userTLBFlush, "tlb_remove_table_smp_sync": .tlbRemoveTableSync,
        "sched_ttwu_pending": .reschedule, "nohz_csd_func": .reschedule, "ipi_mb": .membarrier, "resched": .reschedule,
    ]
    for (cb, kind) in brief { #expect(c.kind(of: cb) == kind, "\(cb)") }
}

@Test func catalogErrorsNameFileAndLine() throws {
    var c = CallbackCatalog()
    #expect(throws: CallbackCatalog.Failure.self) { try c.add(text: "ok kernelTLBFlush\nbad noSuchKind x\n", source: "mine.catalog") }
    do { try c.add(text: "# comment\n\nlonely\n", source: "mine.catalog") } catch {
        #expect("\(error)".contains("mine.catalog:3: expected 'CALLBACK KIND [NOTE...]'"))
    }
    do { try c.add(text: "f noSuchKind\n", source: "m") } catch {
        #expect("\(error)".contains("m:1: unknown kind 'noSuchKind' for f; expected one of: kernelTLBFlush"))
    }
}

/// Each class routes as the core says: one request of each class to a CPU in user
/// mode, under linux and cpuflags.
@Test func eachClassRoutesAsTheCoreSays() throws {
    var events: [(String, Int, String, Double, String, String)] = [
        ("spin-5", 1, ".....", 1.0, "sys_exit", "NR 0 = 0"),
    ]
    let callbacks = ["do_sync_core", "flush_cpu_slab", "rcu_exp_handler", "sched_ttwu_pending", "flush_tlb_func", "mystery_func"]
    for (i, cb) in callbacks.enumerated() {
        events.append(("hk-9", 0, "...2.", 1.0 + Double(i + 1) * 0.001, "csd_queue_cpu", "cpu=1 callsite=x+0x0/0x10 func=\(cb) csd=000000000000000\(i)"))
    }
    let o = try analyze(text: ftrace(events), policies: [.linux, .cpuflags])
    let r = try #require(o.report)
    func verdict(_ cb: String) -> [String: Int]? { r.callbacks.first { $0.callback == cb }?.byPolicy["cpuflags"]?.deliveries }
    #expect(verdict("do_sync_core") == ["deferred": 1])
    #expect(verdict("flush_cpu_slab") == ["onBehalf": 1])
    #expect(verdict("rcu_exp_handler") == ["skipped": 1])
    #expect(verdict("sched_ttwu_pending") == ["interrupted": 1])
    #expect(verdict("flush_tlb_func") == ["interrupted": 1])
    #expect(verdict("mystery_func") == ["interrupted (unknown callback)": 1])
    #expect(r.unknownCallbacks == ["mystery_func"])
    for cb in callbacks {
        let linux = r.callbacks.first { $0.callback == cb }?.byPolicy["linux"]?.deliveries
        // Linux: RCU skips a CPU in an extended quiescent state; everything else interrupts.
        #expect(linux == (cb == "rcu_exp_handler" ? ["skipped": 1] : cb == "mystery_func" ? ["interrupted (unknown callback)": 1] : ["interrupted": 1]), "\(cb)")
    }
    // A catalog of the user's own changes the kind.
    var mine = try CallbackCatalog.builtIn()
    try mine.add(text: "do_sync_core userTLBFlush pretend it touches registers\n", source: "mine")
    let o2 = try analyze(text: ftrace(events), policies: [.cpuflags], catalog: mine)
    #expect(o2.report?.callbacks.first { $0.callback == "do_sync_core" }?.byPolicy["cpuflags"]?.deliveries == ["interrupted": 1])
}

// MARK: A wrong core is caught by the replay

@Test func replayReportsLostWorkOfAWrongCore() throws {
    let path = Fixture.path("static-keys-excerpt.txt")
    #expect(try analyze(path).report?.violations.isEmpty == true)
    let o = try analyze(path, policies: [.cpuflags], mutations: .workAfterKernelCode)
    let v = try #require(o.report?.violations.first)
    #expect(v.policy == "cpuflags" && v.message.contains("no lost work"), "\(v.message)")
    #expect(!v.context.isEmpty && v.context.last!.hasPrefix("\(v.line): "))
    // Lazy requesters that defer to INDETERMINATE: the plain-store entry never runs it.
    let lazy = try analyze(path, policies: [.cpuflagsLazy], mutations: .indeterminateDeferrable)
    #expect(lazy.report?.violations.first?.message.contains("no lost work") == true, "\(lazy.report?.violations.map(\.message) ?? [])")
}
