import CPUFlags
import Foundation
import Simulator

/// Reads a recording once, in order and in constant memory: reconstructs each CPU's
/// modes (`ModeTracker`), drives one `PolicyReplay` per policy with them (the core's
/// own transitions on each CPU's word), routes every IPI request through every policy
/// at its timestamp (the core's own routes), matches each request with what its
/// target did in the recording, and adds it all up per target CPU and callback.
public final class Analysis {
    public struct Options {
        public var isolated: [Int]?
        public var policies: [Policy] = Policy.allCases
        public var badLinesMax = TraceLimits.badLinesDefault
        public var machine = MachineConfig()
        /// Wrong variants of the core to replay with (tests, `--mutation`).
        public var mutations: Mutations = []
        public init() {}
    }

    public let options: Options
    public let catalog: CallbackCatalog
    public let policies: [Policy]
    /// Called for each settled request (the `--requests` stream, tests).
    public var onRequest: ((IPIRequest) -> Void)?
    /// Called for each warning as it is found (the first `TraceLimits.warningsPrinted`
    /// of each kind; the rest are counted).
    public var onWarning: ((String) -> Void)?
    /// Called about every 256 MiB... of input (progress), with bytes and lines read.
    public var onProgress: ((Int, Int) -> Void)?
    /// Called for each mode interval that ends and each request (the Perfetto file).
    public var timeline: TimelineSink?

    public struct Failure: Error, CustomStringConvertible {
        public var description: String
    }

    // State.
    var cpuCount = 0
    var tracker = ModeTracker(cpuCount: 0)
    var matcher = RequestMatcher(cpuCount: 0)
    var replays: [PolicyReplay] = []
    /// The text format seen: "ftrace", "trace-cmd-report", or "unknown" before the first
    /// event (an enum inside: it is compared on every line).
    public var format: String { formatSeen.rawValue }
    enum Format: String { case unknown, ftrace, traceCmdReport = "trace-cmd-report" }
    var formatSeen = Format.unknown
    public private(set) var container: TraceInput.Container = .plain
    public private(set) var lines = 0
    public private(set) var events = 0
    public private(set) var firstTime: Int64?
    public private(set) var lastTime: Int64 = 0
    public private(set) var malformed = 0
    public private(set) var outOfOrder = 0
    public private(set) var lostEvents = 0
    public private(set) var headerLost: Int?
    public private(set) var ipiWithoutRequest = 0
    public private(set) var selfRequests = 0
    var warningsByKind: [String: Int] = [:]
    public private(set) var violations: [Violation] = []
    var nextID = 0
    var lastExpire: Int64 = 0
    /// Aggregates, per "target/callback".
    var rows: [String: Row] = [:]
    var perCPU: [CPUTotals] = []
    /// Open reschedule IPI per CPU whose cost waits for its exit event.
    var reschedOpen: [IPIRequest?] = []

    public struct Violation: Sendable, Codable {
        public var policy: String
        public var message: String
        public var line: Int
        /// The recording's lines just before and at the point it was found.
        public var context: [String]
    }

    deinit {
        recent.deallocate()
        recentLengths.deallocate()
        recentNumbers.deallocate()
        recentHead.deallocate()
    }

    public init(options: Options = Options(), catalog: CallbackCatalog) {
        recentNumbers.initialize(repeating: 0, count: Analysis.recentCount)
        recentLengths.initialize(repeating: 0, count: Analysis.recentCount)
        recentHead.initialize(to: 0)
        self.options = options
        self.catalog = catalog
        var ps: [Policy] = []
        for p in options.policies where !ps.contains(p) { ps.append(p) }
        policies = ps
    }

    // MARK: Reading

    /// Reads `input` to its end (or throws on a fatal input error).
    public func run(_ input: TraceInput) throws {
        container = input.container
        var reader = LineReader(input)
        try reader.forEachLine { bytes, number in
            try self.handleLine(bytes, number: number, input: input)
            return true
        }
        try finish(input: input)
    }

    func warn(_ kind: String, _ message: @autoclosure () -> String) {
        let n = warningsByKind[kind, default: 0] + 1
        warningsByKind[kind] = n
        if n <= TraceLimits.warningsPrinted { onWarning?(message()) }
        if n == TraceLimits.warningsPrinted + 1 { onWarning?("(further '\(kind)' warnings are counted, not printed)") }
    }

    /// Keeps the last lines read (up to 512 bytes each, copied into a ring allocated
    /// once: no allocation per line), for the context of a violation.
    static let recentCount = 8, recentBytes = 512
    let recent = UnsafeMutablePointer<UInt8>.allocate(capacity: Analysis.recentCount * Analysis.recentBytes)
    let recentLengths = UnsafeMutablePointer<Int>.allocate(capacity: Analysis.recentCount)
    let recentNumbers = UnsafeMutablePointer<Int>.allocate(capacity: Analysis.recentCount)
    let recentHead = UnsafeMutablePointer<Int>.allocate(capacity: 1)

    func remember(_ bytes: UnsafeBufferPointer<UInt8>, _ number: Int) {
        let i = recentHead.pointee
        let n = min(bytes.count, Analysis.recentBytes)
        if n > 0 { (recent + i * Analysis.recentBytes).update(from: bytes.baseAddress!, count: n) }
        recentLengths[i] = n
        recentNumbers[i] = number
        recentHead.pointee = (i + 1) % Analysis.recentCount
    }

    var recentLines: [String] {
        (0..<Analysis.recentCount).map { (recentHead.pointee + $0) % Analysis.recentCount }.filter { recentNumbers[$0] > 0 }.map {
            "\(recentNumbers[$0]): " + String(decoding: UnsafeBufferPointer(start: recent + $0 * Analysis.recentBytes, count: recentLengths[$0]), as: UTF8.self)
        }
    }

    func handleLine(_ bytes: UnsafeBufferPointer<UInt8>, number: Int, input: TraceInput) throws {
        lines = number
        if number & 0x3FFFF == 0 { onProgress?(input.bytesRead, number) }
        guard let first = bytes.first(where: { $0 != 32 && $0 != 9 }) else { return }
        if first == UInt8(ascii: "#") {
            if cpuCount == 0, formatSeen == .unknown { formatSeen = .ftrace }
            headerLine(bytes)
            return
        }
        guard let line = TraceLine.parse(bytes) else {
            if let n = TraceLine.lostEvents(bytes) {
                lostEvents += n
                warn("lost", "\(input.name):\(number): the kernel lost \(n) events here; modes and requests around it may be wrong")
                return
            }
            let text = String(decoding: bytes, as: UTF8.self)
            if cpuCount == 0 && formatSeen == .unknown, text.hasPrefix("cpus=") {
                formatSeen = .traceCmdReport
                if let n = Int(text.dropFirst(5)), n > 0, n <= TraceLimits.cpuMax + 1 { setCPUs(n) }
                return
            }
            // trace-cmd's own notes ("version = 6", "CPU 0 is empty") are not events.
            if text.hasPrefix("version = ") || (text.hasPrefix("CPU ") && text.hasSuffix(" is empty")) || text.hasPrefix("##### CPU") { return }
            malformed += 1
            warn("malformed", "\(input.name):\(number): not an ftrace event line; expected 'TASK-PID [CPU] FLAGS TIMESTAMP: EVENT: FIELDS', got '\(text.prefix(120))'")
            if malformed > options.badLinesMax {
                throw Failure(description: "\(input.name):\(number): \(malformed) malformed lines (more than --max-bad-lines \(options.badLinesMax)); is this an ftrace text recording?")
            }
            return
        }
        if formatSeen == .unknown { formatSeen = line.hasFlags ? .ftrace : .traceCmdReport }
        if cpuCount == 0 { setCPUs(256) }
        if line.cpu >= cpuCount {
            guard line.cpu <= TraceLimits.cpuMax else { return }
            malformed += 1
            warn("cpu", "\(input.name):\(number): cpu \(line.cpu) but the header says \(cpuCount) CPUs; line skipped")
            return
        }
        events += 1
        if firstTime == nil { firstTime = line.time }
        if line.time < lastTime {
            outOfOrder += 1
            warn("order", "\(input.name):\(number): time \(Analysis.seconds(line.time)) is before the previous event's \(Analysis.seconds(lastTime)); events out of time order")
        } else {
            lastTime = line.time
        }
        remember(bytes, number)
        handleEvent(line, number: number)
        if lastTime - lastExpire > TraceLimits.deliveryHorizonNs || matcher.pendingCount > TraceLimits.pendingRequestsMax {
            lastExpire = lastTime
            for r in matcher.expire(now: lastTime) { settle(r) }
        }
    }

    func headerLine(_ bytes: UnsafeBufferPointer<UInt8>) {
        let text = String(decoding: bytes, as: UTF8.self)
        // "# entries-in-buffer/entries-written: 37694/37694   #P:2"
        if let r = text.range(of: "entries-in-buffer/entries-written:") {
            let rest = text[r.upperBound...].trimmingCharacters(in: .whitespaces)
            let nums = rest.split(whereSeparator: { !$0.isNumber }).compactMap { Int($0) }
            if nums.count >= 2, nums[1] > nums[0] {
                headerLost = nums[1] - nums[0]
                warn("lost", "header: entries-in-buffer/entries-written \(nums[0])/\(nums[1]): the kernel lost \(nums[1] - nums[0]) events (the ring buffer overflowed; record with a larger buffer)")
            }
            if let p = text.range(of: "#P:"), let n = Int(text[p.upperBound...].prefix(while: { $0.isNumber })), n > 0, n <= TraceLimits.cpuMax + 1, cpuCount == 0 {
                setCPUs(n)
            }
        }
    }

    func setCPUs(_ n: Int) {
        cpuCount = n
        tracker = ModeTracker(cpuCount: n)
        matcher = RequestMatcher(cpuCount: n)
        reschedOpen = Array(repeating: nil, count: n)
        perCPU = Array(repeating: CPUTotals(policies: policies.count), count: n)
        var isolated = Array(repeating: options.isolated == nil, count: n)
        for c in options.isolated ?? [] {
            if c < n { isolated[c] = true } else { warn("isolated", "--isolated names cpu\(c), but the recording has \(n) CPUs") }
        }
        replays = policies.map { PolicyReplay(policy: $0, cpuCount: n, isolated: isolated, config: options.machine, mutations: options.mutations) }
    }

    // MARK: Events

    func handleEvent(_ line: TraceLine, number: Int) {
        let c = line.cpu
        // Requests first: they are made from the sender's current state.
        switch line.name {
        case .csdQueueCPU:
            if let t = line.int("cpu"), let f = line.symbol("func") {
                request(line, number: number, target: t, callback: f, csd: line.string("csd"))
            } else { badFields(line, number) }
        case .ipiSendCPU:
            if let t = line.int("cpu"), let cb = line.symbol("callback") {
                ipiSent(line, number: number, targets: [t], callback: cb)
            } else { badFields(line, number) }
        case .ipiSendCPUMask:
            if let mask = line.string("cpumask"), let cb = line.symbol("callback"), let targets = Analysis.cpuMask(mask) {
                ipiSent(line, number: number, targets: targets, callback: cb)
            } else { badFields(line, number) }
        default: break
        }
        let observedBefore = tracker.observed(c)
        let interruptedBefore = tracker.interrupted(c)
        let irqStartBefore = tracker.interruptStart(c)
        let irqKindBefore = tracker.interruptKind(c)
        tracker.handle(line) { cpu, change, now in self.apply(change, cpu: cpu, mode: now, at: line.time, number: number) }
        // Deliveries on this CPU.
        switch line.name {
        case .csdFunctionEntry:
            if let f = line.symbol("func") {
                let inIPI = tracker.interruptKind(c) == .callFunction
                matcher.handlerBegins(cpu: c, function: f, csd: line.string("csd"), time: line.time,
                                      irqStart: inIPI ? tracker.interruptStart(c) : nil,
                                      over: inIPI ? tracker.interrupted(c) : nil)
            }
        case .csdFunctionExit:
            if let r = matcher.handlerEnds(cpu: c, time: line.time, inIPI: irqKindBefore == .callFunction) { settle(r) }
        case .rescheduleEntry:
            let over = tracker.interruptKind(c) == .reschedule ? tracker.interrupted(c) : (tracker.interrupted(c) ?? observedBefore)
            var served = matcher.reschedArrives(cpu: c, time: line.time, over: over)
            if served.isEmpty {
                ipiWithoutRequest += 1
            } else if tracker.interruptKind(c) == .reschedule {
                // The exit event is recorded: the first request's cost waits for it.
                if let open = reschedOpen[c] { settle(open) }
                var first = served.removeFirst()
                first.costStart = line.time
                reschedOpen[c] = first
            }
            for r in served { settle(r) }
        case .rescheduleExit:
            if var r = reschedOpen[c], let start = r.costStart {
                r.costNs = line.time - start
                reschedOpen[c] = nil
                settle(r)
            }
        case .callFunctionEntry, .callFunctionSingleEntry:
            matcher.lastHandlerEnd[c] = nil
        default: break
        }
        _ = (interruptedBefore, irqStartBefore)
    }

    func badFields(_ line: TraceLine, _ number: Int) {
        malformed += 1
        warn("fields", "line \(number): \(line.name.text) without the fields it needs ('\(line.fields.prefix(100))')")
    }

    /// A mode change of `cpu`: applied to every policy's replay through the core.
    func apply(_ change: ModeTracker.Change, cpu: Int, mode: ModeTracker.Observed, at time: Int64, number: Int) {
        timeline?.modeChanges(cpu: cpu, at: time, to: mode)
        for (i, r) in replays.enumerated() {
            switch change {
            case .base(let b):
                switch b {
                case .user: r.drive(cpu, to: .user)
                case .kernel, .unknown: r.drive(cpu, to: .kernel)
                case .idle(let p): r.drive(cpu, to: .idle(polling: p))
                }
            case .interruptBegins(let k):
                // IPIs are the policy's own business (sent at request time, or not).
                if !k.isIPI { r.interruptBegins(cpu) }
            case .interruptEnds(let k):
                if !k.isIPI { r.interruptEnds(cpu, wasIPI: false) }
            case .switchOut:
                r.contextSwitch(cpu)
            }
            check(i, number: number)
        }
    }

    func check(_ i: Int, number: Int) {
        guard replays[i].hasViolation, let v = replays[i].violation else { return }
        guard !violations.contains(where: { $0.policy == policies[i].rawValue }) else { return }
        violations.append(Violation(policy: policies[i].rawValue, message: v, line: number, context: recentLines))
    }

    func request(_ line: TraceLine, number: Int, target: Int, callback: String, csd: String?) {
        guard var r = newRequest(line, number: number, target: target, callback: callback, csd: csd) else { return }
        route(&r, number: number)
        if csd != nil { matcher.addCSD(r) } else { matcher.addResched(r) }
    }

    /// A request from `line`'s CPU to `target`, with the target's mode now; nil (and
    /// counted) for a bad target or a CPU asking itself (run locally, not routed).
    func newRequest(_ line: TraceLine, number: Int, target: Int, callback: String, csd: String?) -> IPIRequest? {
        guard target >= 0, target < cpuCount else { badFields(line, number); return nil }
        guard target != line.cpu else { selfRequests += 1; return nil }
        defer { nextID += 1 }
        return IPIRequest(id: nextID, sender: line.cpu, target: target, callback: callback,
                          callsite: line.symbol("callsite") ?? "", time: line.time, line: number,
                          targetMode: tracker.observed(target), targetInterrupted: tracker.interrupted(target),
                          kind: catalog.kind(of: callback), csd: csd)
    }

    func ipiSent(_ line: TraceLine, number: Int, targets: [Int], callback: String) {
        if callback.hasPrefix("generic_smp_call_function") {
            for t in targets { matcher.ipiSent(from: line.cpu, to: t) }
            return
        }
        let name = callback == "0x0" ? "resched" : callback
        for t in targets {
            guard var r = newRequest(line, number: number, target: t, callback: name, csd: nil) else { continue }
            r.ipiSent = true
            route(&r, number: number)
            matcher.addResched(r)
        }
    }

    /// Every policy's route for `r`, decided now (the words as they are at its
    /// timestamp); a policy that interrupts takes the interrupt now.
    func route(_ r: inout IPIRequest, number: Int) {
        r.verdicts = replays.enumerated().map { i, replay in
            guard let kind = r.kind else {
                // Not in the catalog: assumed to interrupt, under every policy.
                return nil
            }
            let d = replay.route(kind, from: r.sender, to: r.target)
            if d == .interrupted { replay.interrupt(r.target, with: [kind]) }
            check(i, number: number)
            return d
        }
    }

    /// A request is settled: added to its row and its target's totals.
    func settle(_ r: IPIRequest) {
        onRequest?(r)
        timeline?.request(r, policies: policies)
        let key = "\(r.target)/\(r.callback)"
        var row = rows[key] ?? Row(target: r.target, callback: r.callback, kind: r.kind, policies: policies.count)
        row.add(r, replays: replays)
        rows[key] = row
        perCPU[r.target].add(r, row: row, replays: replays)
    }

    func finish(input: TraceInput) throws {
        for c in reschedOpen.indices { if let r = reschedOpen[c] { settle(r); reschedOpen[c] = nil } }
        for r in matcher.expire(now: lastTime, all: true) { settle(r) }
        tracker.finish(at: lastTime)
        if events == 0 {
            throw Failure(description: "\(input.name): no ftrace events in \(lines) lines; expected the text of a tracefs 'trace' file or of 'trace-cmd report'")
        }
        for (i, r) in replays.enumerated() {
            for c in 0..<cpuCount {
                perCPU[c].entries[i] = r.entries[c]
                perCPU[c].deferredFlushes[i] = r.deferredFlushesRun[c]
                perCPU[c].deferredSyncs[i] = r.deferredSyncsRun[c]
            }
            _ = i
        }
    }

    // MARK: Helpers

    static func seconds(_ ns: Int64) -> String { String(format: "%.6f", Double(ns) / 1e9) }

    /// A cpumask field as ftrace prints it ("0-1,3"), as CPU numbers.
    static func cpuMask(_ text: String) -> [Int]? {
        var out: [Int] = []
        for part in text.split(separator: ",") {
            let ends = part.split(separator: "-", omittingEmptySubsequences: false)
            guard let a = Int(ends[0]), a >= 0, a <= TraceLimits.cpuMax else { return nil }
            let b = ends.count == 2 ? Int(ends[1]) : a
            guard let b, ends.count <= 2, b >= a, b <= TraceLimits.cpuMax else { return nil }
            out += Array(a...b)
        }
        return out
    }
}

/// Where the Perfetto writer hears of the timeline (see `PerfettoTimeline`).
public protocol TimelineSink: AnyObject {
    func modeChanges(cpu: Int, at time: Int64, to mode: ModeTracker.Observed)
    func request(_ r: IPIRequest, policies: [Policy])
}
