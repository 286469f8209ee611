import CPUFlags

/// Scenarios as text, the way a litmus test is written (`cpuflags verify --file F`,
/// `cpuflags scenarios --export DIR`). One directive per line, `#` starts a comment:
///
///     scenario tlb-flush
///     summary  kernel PTE change + flush against an isolated CPU
///     covers   1 3 4 5 9               # BRIEF §2 items (optional)
///     policy   strict                  # strict | lazy | adaptive   (default strict)
///     pin      flag-in-word            # flag-in-word | count-then-check
///     words    per-cpu                 # per-cpu | per-task (§2.12; default per-cpu)
///     pti      on                      # on | off                   (default on)
///     nmi-body kernel-access           # kernel-access | rcu-reader
///     expedited-rcu off                # on | off
///     mutation entry-exchange          # a named wrong variant (repeatable)
///     cpu 0 kernel: flush_kernel_tlb
///     cpu 1 user nmis=1 irqs=0: enter_from_user kernel_access exit_to_user
///
/// A `cpu N MODE [nmis=K] [irqs=K] [mces=K]: OPS` line per CPU (mces: machine checks, on
/// the NMI's path, also nested in an NMI handler; 0 or 1), in order from 0 (2 to 4 CPUs);
/// MODE is kernel, user, idle or indeterminate. Ops are separated by spaces, arguments
/// in parentheses without spaces: exit_to_user, enter_from_user, kernel_access,
/// run_text, enter_idle, enter_idle(poll), poll_idle, exit_idle, context_switch,
/// rcu_reader, rcu_reader(write), flush_kernel_tlb, patch_text,
/// queue_callback(TARGET,ID), run_on_behalf(TARGET,ID), wake(TARGET),
/// interrupt(TARGET,KIND), synchronize_rcu, switch_to(TASK) (per-task words only),
/// litmus_store(x|y[,VALUE][,ORDERING]),
/// litmus_load(x|y[,ORDERING]), litmus_add(x|y[,ORDERING]), litmus_fence. TARGET is a
/// CPU number, KIND a work kind (kernelTLBFlush, userTLBFlush, ...), VALUE 1 to 3,
/// ORDERING relaxed (the default), acquire (loads), release (stores) or seq_cst.
/// `litmus-forbidden 1:1,0 x=2` names the outcome that counts as a violation (CPU 1's
/// litmus loads returned 1 then 0, x ended as 2). Errors name the file, line and column, and what
/// was expected there; the scenario is then checked as every scenario is (`problem`).
public enum ScenarioFile {
    public struct Failure: Error, CustomStringConvertible, Sendable {
        public var source: String
        public var line: Int
        public var column: Int
        public var expected: String
        public var description: String { "\(source):\(line):\(column): expected \(expected)" }
    }

    // MARK: Reading

    public static func parse(_ text: String, source: String) throws(Failure) -> Scenario {
        var name: String?, summary = "", covers: [Int] = []
        var config = ProtocolConfig()
        var pti = true, expedited = false, nmiBody = NMIBody.kernelAccess
        var cpus: [(start: Mode, nmis: Int, irqs: Int, mces: Int, ops: [Op])] = []
        var forbidden: LitmusOutcome?
        for (i, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let lineNo = i + 1
            let line = raw.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false)[0]
            let words = tokens(line)
            guard let first = words.first else { continue }
            func fail(_ at: Token?, _ what: String) -> Failure {
                Failure(source: source, line: lineNo, column: (at ?? words.last!).column + (at == nil ? words.last!.text.count : 0),
                        expected: what)
            }
            func one(_ what: String) throws(Failure) -> Token {
                guard words.count == 2 else { throw fail(words.count > 2 ? words[2] : nil, what) }
                return words[1]
            }
            func onOff() throws(Failure) -> Bool {
                let w = try one("on or off")
                switch w.text { case "on": return true; case "off": return false; default: throw fail(w, "on or off") }
            }
            switch first.text {
            case "scenario": name = try one("a scenario name").text
            case "summary":
                summary = String(line.dropFirst(first.column - 1 + first.text.count)
                    .drop(while: { $0 == " " || $0 == "\t" })
                    .reversed().drop(while: { $0 == " " || $0 == "\t" }).reversed())
            case "covers":
                for w in words.dropFirst() {
                    guard let n = Int(w.text), (1...12).contains(n) else { throw fail(w, "a BRIEF §2 item from 1 to 12") }
                    covers.append(n)
                }
            case "policy":
                let w = try one("strict, lazy or adaptive")
                guard let p = ExitPolicy(rawValue: w.text) else { throw fail(w, "strict, lazy or adaptive") }
                config.exitPolicy = p
            case "pin":
                let w = try one("flag-in-word or count-then-check")
                switch w.text {
                case "flag-in-word": config.pinProtocol = .flagInWord
                case "count-then-check": config.pinProtocol = .countThenCheck
                default: throw fail(w, "flag-in-word or count-then-check")
                }
            case "words":
                let w = try one("per-cpu or per-task")
                guard let p = WordPlacement(rawValue: w.text) else { throw fail(w, "per-cpu or per-task") }
                config.placement = p
            case "pti": pti = try onOff()
            case "expedited-rcu": expedited = try onOff()
            case "nmi-body":
                let w = try one("kernel-access or rcu-reader")
                switch w.text {
                case "kernel-access": nmiBody = .kernelAccess
                case "rcu-reader": nmiBody = .rcuReader
                default: throw fail(w, "kernel-access or rcu-reader")
                }
            case "mutation":
                let w = try one("a mutation name")
                guard let m = Mutations.named.first(where: { $0.name == w.text }) else {
                    throw fail(w, "a mutation name: \(Mutations.named.map(\.name).joined(separator: ", "))")
                }
                config.mutations.insert(m.mutation)
            case "litmus-forbidden":
                var f = LitmusOutcome()
                let what = "CPU:VALUES (as 1:1,0) or CELL=VALUE (as x=2), values 0 to \(LitmusOutcome.valueMax)"
                for w in words.dropFirst() {
                    let value = { (t: Substring) -> Int? in Int(t).flatMap { (0...LitmusOutcome.valueMax).contains($0) ? $0 : nil } }
                    if let colon = w.text.firstIndex(of: ":") {
                        guard let c = Int(w.text[..<colon]), c >= 0, f.loads[c] == nil else { throw fail(w, what) }
                        let vs = w.text[w.text.index(after: colon)...].split(separator: ",", omittingEmptySubsequences: false).map(value)
                        guard !vs.isEmpty, vs.allSatisfy({ $0 != nil }) else { throw fail(w, what) }
                        f.loads[c] = vs.map { $0! }
                    } else if let eq = w.text.firstIndex(of: "="), ["x", "y"].contains(String(w.text[..<eq])),
                              let v = value(w.text[w.text.index(after: eq)...]) {
                        f.final[w.text.hasPrefix("x") ? 0 : 1] = v
                    } else {
                        throw fail(w, what)
                    }
                }
                guard !f.loads.isEmpty || !f.final.isEmpty else { throw fail(nil, what) }
                forbidden = f
            case "cpu":
                cpus.append(try cpuLine(words, expectedIndex: cpus.count, fail: fail))
            default:
                throw fail(first, "a directive: scenario, summary, covers, policy, pin, words, pti, nmi-body, expedited-rcu, mutation, litmus-forbidden or cpu")
            }
        }
        let end = Failure(source: source, line: text.split(separator: "\n", omittingEmptySubsequences: false).count, column: 1, expected: "")
        guard let name else { var f = end; f.expected = "a 'scenario NAME' line"; throw f }
        guard cpus.count >= 2 && cpus.count <= 4 else {
            var f = end
            f.expected = "2 to 4 'cpu' lines, not \(cpus.count)"
            throw f
        }
        let s = Scenario(name: name, summary: summary, programs: cpus.map(\.ops), start: cpus.map(\.start), pti: pti,
                         config: config, nmis: cpus.map(\.nmis), irqs: cpus.map(\.irqs), mces: cpus.map(\.mces), nmiBody: nmiBody, covers: covers,
                         expeditedRCU: expedited, litmusForbidden: forbidden)
        if let p = s.problem() { var f = end; f.expected = "a well-formed scenario: \(p)"; throw f }
        return s
    }

    struct Token {
        var text: String
        /// 1-based.
        var column: Int
    }

    static func tokens(_ line: Substring) -> [Token] {
        var out: [Token] = []
        var current = ""
        var start = 0
        for (i, c) in line.enumerated() {
            if c == " " || c == "\t" {
                if !current.isEmpty { out.append(Token(text: current, column: start + 1)); current = "" }
            } else {
                if current.isEmpty { start = i }
                current.append(c)
            }
        }
        if !current.isEmpty { out.append(Token(text: current, column: start + 1)) }
        return out
    }

    static func cpuLine(_ words: [Token], expectedIndex: Int, fail: (Token?, String) -> Failure) throws(Failure)
        -> (start: Mode, nmis: Int, irqs: Int, mces: Int, ops: [Op]) {
        guard words.count >= 3 else { throw fail(nil, "'cpu N MODE [nmis=K] [irqs=K] [mces=K]: OPS'") }
        guard Int(words[1].text) == expectedIndex else { throw fail(words[1], "cpu \(expectedIndex) (CPUs in order from 0)") }
        var rest = Array(words.dropFirst(2))
        // The header ends at the word that ends with ':' (or a lone ':').
        guard let colon = rest.firstIndex(where: { $0.text.hasSuffix(":") }) else {
            throw fail(nil, "':' after the CPU's mode and budgets, then its ops")
        }
        var header = Array(rest[...colon])
        header[colon].text.removeLast()
        if header[colon].text.isEmpty { header.removeLast() }
        rest = Array(rest[(colon + 1)...])
        guard let modeWord = header.first else { throw fail(words[2], "a mode: kernel, user, idle or indeterminate") }
        let modes: [String: Mode] = ["kernel": .kernel, "user": .user, "idle": .idle, "indeterminate": .indeterminate]
        guard let start = modes[modeWord.text] else { throw fail(modeWord, "a mode: kernel, user, idle or indeterminate") }
        var nmis = 0, irqs = 0, mces = 0
        for w in header.dropFirst() {
            let kv = w.text.split(separator: "=", maxSplits: 1).map(String.init)
            guard kv.count == 2, let n = Int(kv[1]), ["nmis", "irqs", "mces"].contains(kv[0]),
                  (0...(kv[0] == "mces" ? 1 : 3)).contains(n) else {
                throw fail(w, "nmis=K or irqs=K with K from 0 to 3, or mces=K with K 0 or 1")
            }
            switch kv[0] {
            case "nmis": nmis = n
            case "irqs": irqs = n
            default: mces = n
            }
        }
        var ops: [Op] = []
        for w in rest { ops.append(try op(w, fail: fail)) }
        return (start, nmis, irqs, mces, ops)
    }

    static let opNames = "exit_to_user, enter_from_user, kernel_access, run_text, enter_idle[(poll)], poll_idle, exit_idle, context_switch, rcu_reader[(write)], flush_kernel_tlb, patch_text, queue_callback(T,ID), run_on_behalf(T,ID), wake(T), interrupt(T,KIND), synchronize_rcu, switch_to(TASK), litmus_store(x|y[,VALUE][,ORDERING]), litmus_load(x|y[,ORDERING]), litmus_add(x|y[,ORDERING]), litmus_fence"

    static func op(_ w: Token, fail: (Token?, String) -> Failure) throws(Failure) -> Op {
        var name = w.text
        var args: [String] = []
        if let open = w.text.firstIndex(of: "(") {
            guard w.text.hasSuffix(")") else { throw fail(w, "')' closing the arguments of '\(w.text)'") }
            name = String(w.text[..<open])
            args = w.text[w.text.index(after: open)..<w.text.index(before: w.text.endIndex)]
                .split(separator: ",", omittingEmptySubsequences: false).map(String.init)
        }
        func int(_ i: Int, _ what: String) throws(Failure) -> Int {
            guard i < args.count, let n = Int(args[i]) else { throw fail(w, "\(what) in '\(w.text)'") }
            return n
        }
        func arity(_ n: Int) throws(Failure) {
            guard args.count == n else { throw fail(w, "\(n) argument\(n == 1 ? "" : "s") to \(name), not \(args.count)") }
        }
        func cell(_ s: String) throws(Failure) -> Int {
            switch s { case "x": return 0; case "y": return 1; default: throw fail(w, "cell x or y in '\(w.text)'") }
        }
        switch name {
        case "exit_to_user": try arity(0); return .exitToUser
        case "enter_from_user": try arity(0); return .enterFromUser
        case "kernel_access": try arity(0); return .kernelAccess
        case "run_text": try arity(0); return .runText
        case "enter_idle":
            guard args.isEmpty || args == ["poll"] else { throw fail(w, "enter_idle or enter_idle(poll)") }
            return .enterIdle(polling: !args.isEmpty)
        case "poll_idle": try arity(0); return .pollIdle
        case "exit_idle": try arity(0); return .exitIdle
        case "context_switch": try arity(0); return .contextSwitch
        case "rcu_reader":
            guard args.isEmpty || args == ["write"] else { throw fail(w, "rcu_reader or rcu_reader(write)") }
            return .rcuReader(write: !args.isEmpty)
        case "flush_kernel_tlb": try arity(0); return .flushKernelTLB
        case "patch_text": try arity(0); return .patchText
        case "synchronize_rcu": try arity(0); return .synchronizeRCU
        case "switch_to": try arity(1); return .switchTo(task: try int(0, "a task number"))
        case "queue_callback":
            try arity(2)
            return .queueCallback(target: try int(0, "a target CPU"), id: try int(1, "a callback id"))
        case "run_on_behalf":
            try arity(2)
            return .runOnBehalf(target: try int(0, "a target CPU"), id: try int(1, "a callback id"))
        case "wake": try arity(1); return .wake(target: try int(0, "a target CPU"))
        case "interrupt":
            try arity(2)
            guard let k = WorkKind(rawValue: args[1]) else {
                throw fail(w, "a work kind in '\(w.text)': \(WorkKind.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            return .interrupt(target: try int(0, "a target CPU"), kind: k)
        case "litmus_store", "litmus_load", "litmus_add":
            let shape = name == "litmus_store" ? "litmus_store(x|y[,VALUE][,relaxed|release|seq_cst])"
                : "\(name)(x|y[,relaxed|acquire|seq_cst\(name == "litmus_add" ? "|release" : "")])"
            guard (1...3).contains(args.count) else { throw fail(w, shape) }
            var value = 1
            var ordering = LitmusOrdering.relaxed
            for a in args.dropFirst() {
                if let v = Int(a), name == "litmus_store", (1...LitmusOutcome.valueMax).contains(v) {
                    value = v
                } else if let o = LitmusOrdering(rawValue: a) {
                    ordering = o
                } else {
                    throw fail(w, shape)
                }
            }
            let c = try cell(args[0])
            switch name {
            case "litmus_store": return .litmusStore(cell: c, value: value, ordering: ordering)
            case "litmus_load": return .litmusLoad(cell: c, ordering: ordering)
            default: return .litmusAdd(cell: c, ordering: ordering)
            }
        case "litmus_fence": try arity(0); return .litmusFence
        default: throw fail(w, "an op: \(opNames)")
        }
    }

    // MARK: Writing

    /// The scenario as text that `parse` reads back to the same scenario.
    public static func render(_ s: Scenario) -> String {
        var out = "# cpuflags scenario (cpuflags verify --file THIS)\n"
        out += "scenario \(s.name)\n"
        if !s.summary.isEmpty { out += "summary \(s.summary)\n" }
        if !s.covers.isEmpty { out += "covers \(s.covers.map(String.init).joined(separator: " "))\n" }
        out += "policy \(s.config.exitPolicy.rawValue)\n"
        out += "pin \(s.config.pinProtocol == .flagInWord ? "flag-in-word" : "count-then-check")\n"
        if s.config.placement != .perCPU { out += "words \(s.config.placement.rawValue)\n" }
        out += "pti \(s.pti ? "on" : "off")\n"
        out += "nmi-body \(s.nmiBody == .kernelAccess ? "kernel-access" : "rcu-reader")\n"
        out += "expedited-rcu \(s.expeditedRCU ? "on" : "off")\n"
        for m in Mutations.named where s.config.mutations.contains(m.mutation) { out += "mutation \(m.name)\n" }
        if let f = s.litmusForbidden { out += "litmus-forbidden \(f)\n" }
        let modeWord: [Mode: String] = [.kernel: "kernel", .user: "user", .idle: "idle", .indeterminate: "indeterminate"]
        for c in s.programs.indices {
            var head = "cpu \(c) \(modeWord[s.start[c]]!)"
            if s.nmis[c] != 0 { head += " nmis=\(s.nmis[c])" }
            if s.irqs[c] != 0 { head += " irqs=\(s.irqs[c])" }
            if s.mces[c] != 0 { head += " mces=\(s.mces[c])" }
            out += head + ":" + s.programs[c].map { " " + text($0) }.joined() + "\n"
        }
        return out
    }

    /// An op as the file writes it: its name as `Op.described` gives it (the one list
    /// of op names, shared with `scenarios --json`), and its arguments in parentheses.
    static func text(_ op: Op) -> String {
        let d = op.described
        var args: [String] = []
        if let t = d.target { args.append("\(t)") }
        if let t = d.task { args.append("\(t)") }
        if let id = d.id { args.append("\(id)") }
        if let k = d.kind { args.append(k) }
        if d.polling == true { args.append("poll") }
        if d.write == true { args.append("write") }
        if let c = d.cell { args.append(c == 0 ? "x" : "y") }
        if let v = d.value, v != 1 { args.append("\(v)") }
        if let o = d.ordering, o != LitmusOrdering.relaxed.rawValue { args.append(o) }
        return args.isEmpty ? d.op : "\(d.op)(\(args.joined(separator: ",")))"
    }
}
