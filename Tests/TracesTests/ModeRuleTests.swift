import CPUFlags
import Foundation
import Simulator
import Testing

@testable import Traces

/// Each mode rule of `ModeTracker` (README, "How modes are reconstructed"), shown on a
/// synthetic recording: events on CPU 1, then a probe request from CPU 0 whose
/// `targetMode` says what the analyzer believed CPU 1 was doing.
typealias Ev = (String, Int, String, Double, String, String)

func probe(_ t: Double, _ n: Int, func f: String = "do_sync_core") -> Ev {
    ("hk-9", 0, "...2.", t, "csd_queue_cpu", "cpu=1 callsite=x+0x0/0x10 func=\(f) csd=00000000000000\(10 + n)")
}

/// The target modes the probes found, in order.
func modes(_ events: [Ev], isolated: [Int]? = nil) throws -> [ModeTracker.Observed] {
    let o = try analyze(text: ftrace(events), isolated: isolated, policies: [.cpuflags])
    #expect(o.error == nil, "\(o.error ?? "")")
    return o.requests.filter { $0.sender == 0 }.map(\.targetMode)
}

@Test func unknownUntilTheFirstDecisiveEvent() throws {
    #expect(try modes([
        ("spin-5", 1, "d.h..", 1.000, "local_timer_entry", "vector=236"),
        ("spin-5", 1, "d.h..", 1.001, "local_timer_exit", "vector=236"),
        probe(1.002, 0),
    ]) == [.unknown])
}

@Test func syscallsEnterAndLeaveTheKernel() throws {
    #expect(try modes([
        ("spin-5", 1, ".....", 1.000, "sys_enter", "NR 0 (0)"),
        probe(1.001, 0),
        ("spin-5", 1, ".....", 1.002, "sys_exit", "NR 0 = 0"),
        probe(1.003, 1),
    ]) == [.kernel, .user])
}

@Test func aUserFaultIsARoundTrip() throws {
    #expect(try modes([
        ("spin-5", 1, "d....", 1.000, "page_fault_user", "address=0x1 ip=0x2 error_code=0x6"),
        probe(1.001, 0),
    ]) == [.user])
}

@Test func idleAndPollingIdle() throws {
    let events: [Ev] = [
        ("<idle>-0", 1, "d..1.", 1.000, "cpu_idle", "state=1 cpu_id=1"),
        probe(1.001, 0),
        ("<idle>-0", 1, "d..1.", 1.002, "cpu_idle", "state=4294967295 cpu_id=1"),
        probe(1.003, 1),
        ("<idle>-0", 1, "d..1.", 1.004, "cpu_idle", "state=0 cpu_id=1"),
        probe(1.005, 2, func: "sched_ttwu_pending"),
    ]
    #expect(try modes(events) == [.idle, .kernel, .idle])
    // State 0 is cpuidle's polling state: a wakeup sets a bit instead of interrupting,
    // under Linux today too (set_nr_if_polling); a sync_core is deferred by cpu_flags.
    let o = try analyze(text: ftrace(events), policies: [.linux, .cpuflags])
    let wake = try #require(o.requests.first { $0.callback == "sched_ttwu_pending" })
    #expect(wake.verdicts == [.wokenByBit, .wokenByBit])
    #expect(o.requests.first?.verdicts == [.interrupted, .deferred])
}

@Test func interruptsOpenAndCloseOverTheModeTheyFind() throws {
    #expect(try modes([
        ("spin-5", 1, ".....", 1.000, "sys_exit", "NR 0 = 0"),
        ("spin-5", 1, "d.h..", 1.001, "local_timer_entry", "vector=236"),
        probe(1.0015, 0),
        ("spin-5", 1, "d.h..", 1.002, "local_timer_exit", "vector=236"),
        probe(1.003, 1),
        // A call-function IPI without its exit event ends at its handler's end.
        ("spin-5", 1, "d.h..", 1.004, "call_function_single_entry", "vector=251"),
        probe(1.0045, 2),
        ("spin-5", 1, "d.h..", 1.005, "csd_function_entry", "func=flush_tlb_func, csd=0000000000000001"),
        ("spin-5", 1, "d.h..", 1.006, "csd_function_exit", "func=flush_tlb_func, csd=0000000000000001"),
        probe(1.007, 3),
        // A reschedule IPI without its exit event is a point.
        ("spin-5", 1, "dnh..", 1.008, "reschedule_entry", "vector=253"),
        probe(1.009, 4),
    ]) == [.irq, .user, .irq, .user, .user])
}

@Test func aSwitchedOutTaskResumesWhereItWas() throws {
    #expect(try modes([
        ("spin-5", 1, ".....", 1.000, "sys_exit", "NR 0 = 0"),
        ("spin-5", 1, "d..2.", 1.001, "sched_switch", "prev_comm=spin prev_pid=5 prev_prio=120 prev_state=R ==> next_comm=kworker/1:0 next_pid=7 next_prio=120"),
        // A task never seen before: unknown.
        probe(1.002, 0),
        ("kworker/1:0-7", 1, "d..2.", 1.003, "sched_switch", "prev_comm=kworker/1:0 prev_pid=7 prev_prio=120 prev_state=I ==> next_comm=spin next_pid=5 next_prio=120"),
        probe(1.004, 1),
        // A switch that was not recorded: the task resumes where it was switched out.
        ("spin-5", 1, "d..2.", 1.005, "sched_switch", "prev_comm=spin prev_pid=5 prev_prio=120 prev_state=R ==> next_comm=other next_pid=8 next_prio=120"),
        ("spin-5", 1, "d.h..", 1.006, "local_timer_entry", "vector=236"),
        ("spin-5", 1, "d.h..", 1.007, "local_timer_exit", "vector=236"),
        probe(1.008, 2),
        // Switched out in a syscall: resumes in the kernel.
        ("spin-5", 1, ".....", 1.009, "sys_enter", "NR 0 (0)"),
        ("spin-5", 1, "d..2.", 1.010, "sched_switch", "prev_comm=spin prev_pid=5 prev_prio=120 prev_state=S ==> next_comm=swapper/1 next_pid=0 next_prio=120"),
        probe(1.011, 3),
        ("<idle>-0", 1, "d..2.", 1.012, "sched_switch", "prev_comm=swapper/1 prev_pid=0 prev_prio=120 prev_state=R ==> next_comm=spin next_pid=5 next_prio=120"),
        probe(1.013, 4),
    ]) == [.unknown, .user, .user, .kernel, .kernel])
}

@Test func kernelEventsInUserModeAreUntracedInterrupts() throws {
    let o = try analyze(text: ftrace([
        ("spin-5", 1, ".....", 1.000, "sys_exit", "NR 0 = 0"),
        ("spin-5", 1, "d.s2.", 1.001, "ipi_send_cpu", "cpu=0 callsite=wakeup_preempt+0x55/0xa0 callback=0x0"),
        probe(1.002, 0),
    ]), policies: [.cpuflags])
    #expect(o.requests.filter { $0.sender == 0 }.map(\.targetMode) == [.user])
    let cpu1 = try #require(o.report?.targets.first { $0.cpu == 1 })
    #expect(cpu1.untracedInterrupts == 1)
}

@Test func traceCmdSchedSwitchFormat() throws {
    let text = """
        cpus=2
                    spin-5     [001]     1.000000: sys_exit:             NR 0 = 0
                    spin-5     [001]     1.001000: sched_switch:         spin:5 [120] R ==> kworker/1:0:7 [120]
                    hk-9       [000]     1.002000: csd_queue_cpu:        cpu=1 callsite=x+0x0 func=do_sync_core csd=0xffff1
               kworker/1:0-7   [001]     1.003000: sched_switch:         kworker/1:0:7 [120] I ==> spin:5 [120]
                    hk-9       [000]     1.004000: csd_queue_cpu:        cpu=1 callsite=x+0x0 func=do_sync_core csd=0xffff2

        """
    let o = try analyze(text: text, policies: [.cpuflags])
    #expect(o.report?.format == "trace-cmd-report")
    #expect(o.requests.map(\.targetMode) == [.unknown, .user])
    #expect(o.requests.map { $0.verdicts } == [[.interrupted], [.deferred]])
}
