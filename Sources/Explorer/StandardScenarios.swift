import CPUFlags

extension Scenario {
    /// The standard set `cpuflags verify` runs, written in the scenario file format
    /// (ScenarioFile.swift) and read by the same parser as `verify --file`: what a user
    /// writes and what ships are one format. `cpuflags scenarios --export scenarios`
    /// writes them to the repository's `scenarios/` (a test checks the files match).
    /// Directives at their defaults (policy strict, pin flag-in-word, pti on, nmi-body
    /// kernel-access, expedited-rcu off) are left out here; the export writes them all.
    static let standardTexts: [String] = [
        """
        scenario tlb-flush
        summary kernel PTE change + flush against an isolated CPU doing user round trips (PTI on)
        covers 1 3 4 5 9
        cpu 0 kernel: flush_kernel_tlb
        cpu 1 user: enter_from_user kernel_access exit_to_user enter_from_user kernel_access
        """,
        """
        scenario tlb-flush-nopti
        summary the same with PTI off: the flush is explicit, a miss is a silent stale read
        covers 1 3 4 5
        pti off
        cpu 0 kernel: flush_kernel_tlb
        cpu 1 user: enter_from_user kernel_access exit_to_user enter_from_user kernel_access
        """,
        """
        scenario text-patch
        summary text patch + sync_core against an isolated CPU executing patched text
        covers 4 5 10
        cpu 0 kernel: patch_text
        cpu 1 user: enter_from_user run_text exit_to_user enter_from_user run_text
        """,
        """
        scenario lazy-adaptive
        summary INDETERMINATE isolated CPU under the adaptive policy: IPIs, then promotion to USER
        covers 2 5 7
        policy adaptive
        cpu 0 kernel: flush_kernel_tlb patch_text
        cpu 1 indeterminate: enter_from_user kernel_access exit_to_user enter_from_user run_text kernel_access
        """,
        """
        scenario idle-wake
        summary polling idle woken by a bit, with a flush deferred to idle exit and a timer IRQ in idle
        covers 6 8
        cpu 0 kernel: flush_kernel_tlb wake(1)
        cpu 1 kernel irqs=1: enter_idle(poll) poll_idle exit_idle kernel_access
        """,
        """
        scenario nmi
        summary an NMI anywhere in an isolated CPU's round trip while a flush and a callback are deferred
        covers 2 4 5
        cpu 0 kernel: flush_kernel_tlb queue_callback(1,0)
        cpu 1 user nmis=1: enter_from_user kernel_access exit_to_user
        """,
        """
        scenario irq-ipi
        summary timer IRQs and a must-interrupt IPI against a round trip with a deferred flush
        covers 2 5
        cpu 0 kernel: interrupt(1,userTLBFlush) flush_kernel_tlb
        cpu 1 user irqs=1: enter_from_user kernel_access exit_to_user
        """,
        """
        scenario pin
        summary pin an isolated CPU and drain its callback on its behalf, or IPI it
        covers 11
        cpu 0 kernel: run_on_behalf(1,0)
        cpu 1 user: enter_from_user kernel_access exit_to_user enter_from_user kernel_access
        """,
        """
        scenario pin-nmi
        summary pinning with an NMI that may land while the entry waits for the pinner
        covers 4 9 11
        cpu 0 kernel: flush_kernel_tlb run_on_behalf(1,0)
        cpu 1 user nmis=1: enter_from_user kernel_access
        """,
        """
        scenario pin-dekker
        summary the thread's pin sketch completed: count, full fence, mode check; entry checks the count
        covers 11
        pin count-then-check
        cpu 0 kernel: run_on_behalf(1,0)
        cpu 1 user: enter_from_user kernel_access exit_to_user enter_from_user kernel_access
        """,
        """
        scenario pin-lock
        summary two pinners of one CPU under the completed sketch, their count updates serialized by the per-target pin lock
        covers 11
        pin count-then-check
        cpu 0 kernel: run_on_behalf(1,0)
        cpu 1 user: enter_from_user kernel_access
        cpu 2 kernel: run_on_behalf(1,1)
        """,
        """
        scenario mce-nmi
        summary a machine check anywhere in an isolated CPU's round trip, also nested in an NMI handler, while a flush and a callback are deferred
        covers 2 4
        cpu 0 kernel: flush_kernel_tlb queue_callback(1,0)
        cpu 1 user nmis=1 mces=1: enter_from_user kernel_access exit_to_user
        """,
        """
        scenario task-migration
        summary §2.12: the words are the tasks', USER stored with its CPU; the task on cpu1 moves to cpu2 while a flush is in flight
        covers 12
        words per-task
        cpu 0 kernel: flush_kernel_tlb
        cpu 1 user: enter_from_user switch_to(3) kernel_access
        cpu 2 idle: exit_idle switch_to(1) exit_to_user enter_from_user kernel_access
        """,
        """
        scenario rcu
        summary grace period against readers before and after a user round trip
        covers 8
        cpu 0 kernel: synchronize_rcu
        cpu 1 kernel: rcu_reader(write) exit_to_user enter_from_user rcu_reader(write)
        """,
        """
        scenario rcu-idle
        summary a CPU flips through idle and back between samples and must still be credited; its readers write
        covers 8
        cpu 0 kernel: synchronize_rcu
        cpu 1 kernel: rcu_reader(write) enter_idle exit_idle rcu_reader(write)
        """,
        """
        scenario rcu-nmi
        summary RCU readers in NMIs that land anywhere in a user round trip
        covers 8
        nmi-body rcu-reader
        cpu 0 kernel: synchronize_rcu
        cpu 1 user nmis=1: enter_from_user exit_to_user
        """,
        """
        scenario rcu-lazy
        summary expedited grace period against a reader on a lazy (INDETERMINATE) CPU, whose entry has no barrier
        covers 2 7 8
        policy lazy
        expedited-rcu on
        cpu 0 kernel: synchronize_rcu
        cpu 1 indeterminate: enter_from_user rcu_reader exit_to_user
        """,
        """
        scenario three-cpus
        summary two housekeeping CPUs flush and patch concurrently against one isolated CPU
        covers 5
        cpu 0 kernel: flush_kernel_tlb
        cpu 1 user: enter_from_user kernel_access run_text exit_to_user
        cpu 2 kernel: patch_text
        """,
        """
        scenario isolated-mix
        summary one isolated CPU against flush + pin on one housekeeping CPU and a patch on another, NMI anywhere
        covers 3 4 5 9 10 11
        cpu 0 kernel: flush_kernel_tlb run_on_behalf(1,0)
        cpu 1 user nmis=1: enter_from_user kernel_access run_text
        cpu 2 kernel: patch_text
        """,
        """
        scenario four-cpus
        summary one flush gathered over three isolated CPUs, each entering the kernel once
        covers 5
        cpu 0 kernel: flush_kernel_tlb
        cpu 1 user: enter_from_user kernel_access
        cpu 2 user: enter_from_user kernel_access
        cpu 3 user: enter_from_user kernel_access
        """,
        """
        scenario adaptive-switch
        summary adaptive promotion by an IPI, lost at a context switch: the next user stretch is lazy again
        covers 7
        policy adaptive
        cpu 0 kernel: flush_kernel_tlb flush_kernel_tlb
        cpu 1 indeterminate: enter_from_user kernel_access context_switch exit_to_user enter_from_user kernel_access
        """,
        """
        scenario four-cpus-pin-rcu
        summary two isolated CPUs with NMIs against a pin on one housekeeping CPU and a grace period on another
        covers 4 8 11
        cpu 0 kernel: run_on_behalf(2,0)
        cpu 1 kernel: synchronize_rcu
        cpu 2 user nmis=1: enter_from_user kernel_access
        cpu 3 user nmis=1: enter_from_user run_text
        """,
    ]

    /// The standard set, parsed. Built-in text: a parse error is a bug in this file
    /// (the tests parse every one), reported with its line and column.
    public static let standard: [Scenario] = standardTexts.enumerated().map { i, text in
        do {
            return try ScenarioFile.parse(text, source: "built-in scenario \(i)")
        } catch {
            preconditionFailure("\(error)")
        }
    }
}
