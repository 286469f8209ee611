import ArgumentParser
import Foundation

/// The version `cpuflags --version` prints.
let cpuflagsVersion = "0.4.0"

struct CPUFlagsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cpuflags",
        abstract: "Implement, prove and measure the per-CPU mode + deferred work design (cpu_flags).",
        version: cpuflagsVersion,
        subcommands: [Verify.self, Scenarios.self, Mutants.self, Simulate.self, Record.self, Analyze.self],
        defaultSubcommand: Verify.self)
}

// `verify` is the default subcommand, so ArgumentParser would read `cpuflags nosuch` as
// verify's unexpected argument and print verify's usage. A first argument that is not
// an option is meant as a subcommand: say so, with the root usage.
let subcommandNames = [Verify._commandName, Scenarios._commandName, Mutants._commandName, Simulate._commandName, Record._commandName, Analyze._commandName]
if let first = CommandLine.arguments.dropFirst().first, !first.hasPrefix("-"), !subcommandNames.contains(first), first != "help" {
    let names = subcommandNames.joined(separator: ", ")
    FileHandle.standardError.write("""
        Error: unknown subcommand '\(first)'; expected one of: \(names)
        Usage: \(CPUFlagsCommand.usageString())
          See 'cpuflags --help' for more information.

        """.data(using: .utf8)!)
    exit(ExitCode.validationFailure.rawValue)
}
CPUFlagsCommand.main()
