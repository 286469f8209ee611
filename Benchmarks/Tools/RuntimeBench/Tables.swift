// The readable tables of runtime-bench (the same figures as --json).

func printTables(_ doc: [(String, JSON)]) {
    func obj(_ j: JSON?) -> [(String, JSON)] { if case .object(let kv)? = j { return kv }; return [] }
    func get(_ kv: [(String, JSON)], _ k: String) -> JSON? { kv.first { $0.0 == k }?.1 }
    func num(_ j: JSON?) -> Double {
        switch j {
        case .number(let d)?: return d
        case .int(let i)?: return Double(i)
        default: return .nan
        }
    }
    func str(_ j: JSON?) -> String {
        switch j {
        case .number(let d)?: return fmt(d, 1)
        case .int(let i)?: return String(i)
        case .string(let s)?: return s
        case .bool(let b)?: return b ? "yes" : "no"
        default: return "-"
        }
    }
    print("runtime-bench on \(str(get(doc, "cpus"))) CPUs, seed \(str(get(doc, "seed")))")
    if let rt = get(doc, "round trips") {
        let kv = obj(rt)
        print("\n== user round trip (ns, median of \(str(get(kv, "runs"))) runs of \(str(get(kv, "round trips per run"))), CPU 0) ==")
        print(pad("loop", 18, left: true) + pad("ns", 9) + pad("min", 9) + pad("x hand", 9))
        for (name, row) in obj(get(kv, "loops")) {
            let r = obj(row)
            print(pad(name, 18, left: true) + pad(fmt(num(get(r, "ns")), 2), 9) + pad(fmt(num(get(r, "min ns")), 2), 9)
                + pad(fmt(num(get(r, "ratio to hand-written")), 2), 9))
        }
    }
    if let rq = get(doc, "requests") {
        let kv = obj(rq)
        print("\n== rt.request(work, on:), requester's ns per request ==")
        print(pad("case", 40, left: true) + pad("ns", 10) + pad("requests", 10) + pad("deferred", 10) + pad("signals", 9) + pad("runs", 10))
        for (name, row) in kv {
            guard case .object(let r) = row else { continue }
            print(pad(name, 40, left: true) + pad(fmt(num(get(r, "ns per request")), 1), 10) + pad(str(get(r, "requests")), 10)
                + pad(str(get(r, "routes deferred")), 10) + pad(str(get(r, "routes interrupt (signals)")), 9) + pad(str(get(r, "work runs")), 10))
        }
        print("ratio signal / deferred: \(fmt(num(get(kv, "ratio signal / deferred")), 1))   (goal: >= 50)")
    }
    if let sy = get(doc, "synchronize") {
        print("\n== rt.synchronize() latency (ns) ==")
        print(pad("case", 40, left: true) + pad("workers", 8) + pad("calls", 9) + pad("mean", 9) + pad("p50", 9) + pad("p99", 9) + pad("max", 10))
        for (name, row) in obj(sy) {
            let r = obj(row)
            print(pad(name, 40, left: true) + pad(str(get(r, "workers")), 8) + pad(str(get(r, "calls")), 9) + pad(fmt(num(get(r, "mean")), 0), 9)
                + pad(str(get(r, "p50")), 9) + pad(str(get(r, "p99")), 9) + pad(str(get(r, "max")), 10))
        }
    }
    if let iso = get(doc, "isolation") {
        let kv = obj(iso)
        print("\n== isolation: clock-read gaps on CPU \(str(get(kv, "cpu"))), requests at \(str(get(kv, "rate per s")))/s, leave every \(str(get(kv, "leave every ms"))) ms, seed \(str(get(kv, "seed"))) ==")
        print(pad("case", 16, left: true) + pad("requests", 9) + pad("signals", 8) + pad("runs", 7) + pad("p50 ns", 8) + pad("p99.9 ns", 10)
            + pad("p99.99 ns", 11) + pad("max ns", 10) + pad(">10us", 7) + pad(">100us", 7))
        for (name, row) in obj(get(kv, "cases")) {
            let r = obj(row)
            print(pad(name, 16, left: true) + pad(str(get(r, "requests")), 9) + pad(str(get(r, "signals (routes interrupt)")), 8)
                + pad(str(get(r, "work runs")), 7) + pad(str(get(r, "p50 gap ns")), 8) + pad(str(get(r, "p99.9 gap ns")), 10)
                + pad(str(get(r, "p99.99 gap ns")), 11) + pad(str(get(r, "max gap ns")), 10) + pad(str(get(r, "gaps over 10 us")), 7)
                + pad(str(get(r, "gaps over 100 us")), 7))
        }
    }
}
