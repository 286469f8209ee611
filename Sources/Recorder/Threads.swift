import CPUFlagsRuntime
import Foundation

/// CPU affinity and thread names, through the runtime's `ThreadAffinity`.
enum Affinity {
    /// Pins the calling thread to `cpus`.
    static func pinCurrentThread(to cpus: CPUSet) throws(RecorderError) {
        let e = ThreadAffinity.pinCurrentThread(to: cpus.cpus)
        guard e == 0 else { throw RecorderError(.workload, "sched_setaffinity(CPUs \(cpus))", "cannot pin the thread", errno: e) }
    }

    /// The calling thread's CPUs.
    static func currentThread() -> CPUSet? { ThreadAffinity.currentThread().map(CPUSet.init) }

    static func nameCurrentThread(_ name: String) { ThreadAffinity.nameCurrentThread(name) }
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
