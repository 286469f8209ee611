import ArgumentParser
import CPUFlags
import Explorer
import Foundation
import Simulator
import TextTable

struct CPUFlagsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cpuflags",
        abstract: "Implement, prove and measure the per-CPU mode + deferred work design (cpu_flags).",
        subcommands: [Verify.self, Scenarios.self, Mutants.self, Simulate.self],
        defaultSubcommand: Verify.self)
}

CPUFlagsCommand.main()
