import Foundation

/// CPU affinity and thread names. Glibc's module does not import the GNU extensions
/// (`sched_setaffinity`, `pthread_setname_np` need _GNU_SOURCE), so they are looked up
/// in the C library by name: they have been in glibc since 2.3 and 2.12.
enum Affinity {
    private typealias AffinityCall = @convention(c) (pid_t, Int, UnsafeMutableRawPointer?) -> Int32
    private typealias SetNameCall = @convention(c) (pthread_t, UnsafePointer<CChar>) -> Int32

    private static let libc = dlopen(nil, RTLD_NOW)
    private static let setCall: AffinityCall? = dlsym(libc, "sched_setaffinity").map { unsafeBitCast($0, to: AffinityCall.self) }
    private static let getCall: AffinityCall? = dlsym(libc, "sched_getaffinity").map { unsafeBitCast($0, to: AffinityCall.self) }
    private static let setNameCall: SetNameCall? = dlsym(libc, "pthread_setname_np").map { unsafeBitCast($0, to: SetNameCall.self) }

    /// Words of a mask big enough for `CPUSet.cpuMax` (the kernel takes any multiple of
    /// sizeof(long) at least as large as its nr_cpu_ids).
    private static let words = CPUSet.cpuMax / 64 + 1

    /// Pins the calling thread (pid 0 means the caller) to `cpus`.
    static func pinCurrentThread(to cpus: CPUSet) throws(RecorderError) {
        guard let call = setCall else { throw RecorderError(.workload, "sched_setaffinity", "not found in the C library") }
        var mask = [UInt64](repeating: 0, count: words)
        for c in cpus.cpus { mask[c / 64] |= 1 << UInt64(c % 64) }
        let r = mask.withUnsafeMutableBytes { call(0, $0.count, $0.baseAddress) }
        guard r == 0 else { throw RecorderError(.workload, "sched_setaffinity(CPUs \(cpus))", "cannot pin the thread", errno: errno) }
    }

    /// The calling thread's CPUs.
    static func currentThread() -> CPUSet? {
        guard let call = getCall else { return nil }
        var mask = [UInt64](repeating: 0, count: words)
        let r = mask.withUnsafeMutableBytes { call(0, $0.count, $0.baseAddress) }
        guard r == 0 else { return nil }
        var cpus: [Int] = []
        for (w, word) in mask.enumerated() where word != 0 {
            for bit in 0..<64 where word & (1 << UInt64(bit)) != 0 { cpus.append(w * 64 + bit) }
        }
        return CPUSet(cpus)
    }

    /// Names the calling thread (at most 15 characters: the kernel's TASK_COMM_LEN), the
    /// name a trace shows in its TASK column.
    static func nameCurrentThread(_ name: String) {
        _ = setNameCall?(pthread_self(), String(name.prefix(15)))
    }
}

/// A thread running `body`, pinned to `cpus` and named `name` before `body` starts.
final class PinnedThread {
    private final class Start {
        let name: String
        let cpus: CPUSet
        let body: () -> Void
        /// Set by the thread if pinning failed (the body then does not run).
        var failure: RecorderError?
        let ready = DispatchSemaphore(value: 0)
        init(name: String, cpus: CPUSet, body: @escaping () -> Void) {
            self.name = name
            self.cpus = cpus
            self.body = body
        }
    }

    private var thread: pthread_t
    private var joined = false

    /// Starts the thread and waits until it is pinned, so that a CPU that cannot be used
    /// is an error here rather than a thread silently running elsewhere.
    init(name: String, cpus: CPUSet, body: @escaping () -> Void) throws(RecorderError) {
        let start = Start(name: name, cpus: cpus, body: body)
        let arg = Unmanaged.passRetained(start).toOpaque()
        var t = pthread_t()
        let r = pthread_create(&t, nil, { raw in
            let start = Unmanaged<Start>.fromOpaque(raw!).takeRetainedValue()
            Affinity.nameCurrentThread(start.name)
            do throws(RecorderError) { try Affinity.pinCurrentThread(to: start.cpus) } catch {
                start.failure = error
                start.ready.signal()
                return nil
            }
            start.ready.signal()
            start.body()
            return nil
        }, arg)
        guard r == 0 else {
            Unmanaged<Start>.fromOpaque(arg).release()
            throw RecorderError(.workload, "thread '\(name)'", "cannot create it (pthread_create)", errno: r)
        }
        thread = t
        start.ready.wait()
        if let f = start.failure {
            pthread_join(t, nil)
            joined = true
            throw f
        }
    }

    func join() {
        guard !joined else { return }
        joined = true
        pthread_join(thread, nil)
    }
}

/// Sleeps `seconds` (a relative nanosleep, resumed after a signal so that the pace of a
/// workload does not depend on signals; a stop request is seen at the next iteration).
func sleepSeconds(_ seconds: Double) {
    guard seconds > 0 else { return }
    var req = timespec(tv_sec: Int(seconds), tv_nsec: Int((seconds - Double(Int(seconds))) * 1e9))
    var rem = timespec()
    while nanosleep(&req, &rem) != 0 && errno == EINTR { req = rem }
}

/// CLOCK_MONOTONIC in seconds: durations are measured on the clock the trace uses.
func monotonicSeconds() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}
