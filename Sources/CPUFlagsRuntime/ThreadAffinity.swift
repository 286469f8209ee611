import Glibc

/// CPU affinity and thread names for the calling thread. Glibc's module does not import
/// the GNU extensions (`sched_setaffinity`, `pthread_setname_np` need _GNU_SOURCE), so
/// they are looked up in the C library by name: they have been in glibc since 2.3 and
/// 2.12. Shared by the runtime (`register(pinTo:)`) and the recorder's workloads.
public enum ThreadAffinity {
    private typealias AffinityCall = @convention(c) (pid_t, Int, UnsafeMutableRawPointer?) -> Int32
    private typealias SetNameCall = @convention(c) (pthread_t, UnsafePointer<CChar>) -> Int32

    private static let libc = dlopen(nil, RTLD_NOW)
    private static let setCall: AffinityCall? = dlsym(libc, "sched_setaffinity").map { unsafeBitCast($0, to: AffinityCall.self) }
    private static let getCall: AffinityCall? = dlsym(libc, "sched_getaffinity").map { unsafeBitCast($0, to: AffinityCall.self) }
    private static let setNameCall: SetNameCall? = dlsym(libc, "pthread_setname_np").map { unsafeBitCast($0, to: SetNameCall.self) }

    /// CPUs a mask can name (Linux's NR_CPUS is at most 8192; the kernel takes any
    /// multiple of sizeof(long) at least as large as its nr_cpu_ids).
    public static let cpusMax = 8192
    private static let words = cpusMax / 64

    /// Pins the calling thread (pid 0 means the caller) to `cpus`. Returns 0, or the
    /// errno (ENOSYS when the C library has no sched_setaffinity, EINVAL for a CPU
    /// outside 0..<cpusMax).
    public static func pinCurrentThread(to cpus: [Int]) -> Int32 {
        guard let call = setCall else { return ENOSYS }
        var mask = [UInt64](repeating: 0, count: words)
        for c in cpus {
            guard c >= 0 && c < cpusMax else { return EINVAL }
            mask[c / 64] |= 1 << UInt64(c % 64)
        }
        let r = mask.withUnsafeMutableBytes { call(0, $0.count, $0.baseAddress) }
        return r == 0 ? 0 : errno
    }

    /// The calling thread's CPUs, or nil when they cannot be read.
    public static func currentThread() -> [Int]? {
        guard let call = getCall else { return nil }
        var mask = [UInt64](repeating: 0, count: words)
        let r = mask.withUnsafeMutableBytes { call(0, $0.count, $0.baseAddress) }
        guard r == 0 else { return nil }
        var cpus: [Int] = []
        for (w, word) in mask.enumerated() where word != 0 {
            for bit in 0..<64 where word & (1 << UInt64(bit)) != 0 { cpus.append(w * 64 + bit) }
        }
        return cpus
    }

    /// Names the calling thread (at most 15 characters: the kernel's TASK_COMM_LEN), the
    /// name a trace shows in its TASK column.
    public static func nameCurrentThread(_ name: String) {
        _ = setNameCall?(pthread_self(), String(name.prefix(15)))
    }
}
