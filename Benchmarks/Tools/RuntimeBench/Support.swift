// Threads, clocks and a small JSON writer for runtime-bench (no Foundation).

import Atomics
import CPUFlags
import CPUFlagsRuntime
import Glibc

/// Monotonic nanoseconds (clock_gettime through the vDSO: no system call).
@inline(__always) func nowNs() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return UInt64(ts.tv_sec) &* 1_000_000_000 &+ UInt64(ts.tv_nsec)
}

/// Sleeps until the monotonic clock reads `ns`.
func sleepUntil(_ ns: UInt64) {
    var ts = timespec(tv_sec: Int(ns / 1_000_000_000), tv_nsec: Int(ns % 1_000_000_000))
    while clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, nil) == EINTR {}
}

/// Pins the calling thread, or stops with a message.
func pin(_ cpu: Int, _ who: String) {
    let e = ThreadAffinity.pinCurrentThread(to: [cpu])
    if e != 0 { fail("cannot pin \(who) to CPU \(cpu): \(String(cString: strerror(e)))") }
}

func fail(_ message: String) -> Never {
    var err = StandardError()
    print("runtime-bench: \(message)", to: &err)
    exit(1)
}

struct StandardError: TextOutputStream {
    mutating func write(_ string: String) { _ = string.withCString { Glibc.write(2, $0, strlen($0)) } }
}

/// Progress lines go to stderr, so that `--json` leaves stdout to the JSON document.
func progress(_ s: String) {
    var err = StandardError()
    print(s, to: &err)
}

/// A joinable thread running `body`.
final class BenchThread: @unchecked Sendable {
    private var thread = pthread_t()
    private final class Box {
        let body: @Sendable () -> Void
        init(_ body: @escaping @Sendable () -> Void) { self.body = body }
    }

    init(_ body: @escaping @Sendable () -> Void) {
        let box = Unmanaged.passRetained(Box(body)).toOpaque()
        let r = pthread_create(&thread, nil, { p in
            Unmanaged<Box>.fromOpaque(p!).takeRetainedValue().body()
            return nil
        }, box)
        if r != 0 { fail("pthread_create: \(String(cString: strerror(r)))") }
    }

    func join() { pthread_join(thread, nil) }
}

/// A runtime call that must not fail here.
func must<T>(_ what: String, _ body: () throws(RuntimeError) -> T) -> T {
    do { return try body() } catch { fail("\(what): \(error)") }
}

/// A runtime with one worker slot under `policy`, and a work that counts its runs.
func countingRuntime(_ policy: ExitPolicy) -> (IsolationRuntime, IsolationRuntime.WorkID, ManagedAtomic<Int>) {
    var o = IsolationRuntime.Options()
    o.workersMax = 1
    o.exitPolicy = policy
    let rt = must("IsolationRuntime") { () throws(RuntimeError) in try IsolationRuntime(o) }
    let ran = ManagedAtomic<Int>(0)
    let work = must("defineWork") { () throws(RuntimeError) in
        try rt.defineWork { _ in ran.wrappingIncrement(ordering: .relaxed) }
    }
    return (rt, work, ran)
}

/// The CPUs the workers run on: 1, 2, ... (CPU 0 is the housekeeping one).
func workerCPU(_ i: Int) -> Int {
    let n = Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))
    return n > 1 ? 1 + i % (n - 1) : 0
}

/// Minimal JSON (objects keep their key order).
indirect enum JSON: CustomStringConvertible {
    case number(Double)
    case int(Int)
    case string(String)
    case bool(Bool)
    case array([JSON])
    case object([(String, JSON)])

    var description: String { render("") }

    func render(_ indent: String) -> String {
        switch self {
        case .number(let d): return d.isFinite ? String(Double((d * 1000).rounded() / 1000)) : "null"
        case .int(let i): return String(i)
        case .string(let s): return Self.quote(s)
        case .bool(let b): return b ? "true" : "false"
        case .array(let xs):
            if xs.isEmpty { return "[]" }
            let inner = indent + "  "
            return "[\n" + xs.map { inner + $0.render(inner) }.joined(separator: ",\n") + "\n\(indent)]"
        case .object(let kvs):
            if kvs.isEmpty { return "{}" }
            let inner = indent + "  "
            return "{\n" + kvs.map { inner + Self.quote($0.0) + ": " + $0.1.render(inner) }.joined(separator: ",\n") + "\n\(indent)}"
        }
    }

    static func quote(_ s: String) -> String {
        var out = "\""
        for c in s.unicodeScalars {
            switch c {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            default: out.unicodeScalars.append(c)
            }
        }
        return out + "\""
    }
}

/// Fixed-point formatting without Foundation.
func fmt(_ x: Double, _ digits: Int = 1) -> String {
    guard x.isFinite else { return "-" }
    var p = 1.0
    for _ in 0..<digits { p *= 10 }
    let r = (abs(x) * p).rounded()
    let whole = Int(r / p), frac = Int(r.truncatingRemainder(dividingBy: p))
    var f = String(frac)
    while f.count < digits { f = "0" + f }
    return (x < 0 ? "-" : "") + String(whole) + (digits > 0 ? "." + f : "")
}

func pad(_ s: String, _ n: Int, left: Bool = false) -> String {
    let fill = String(repeating: " ", count: max(0, n - s.count))
    return left ? s + fill : fill + s
}
