import ArgumentParser
import Foundation
import Recorder

struct Record: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Record IPIs and CPU modes through tracefs (root).",
        usage: "cpuflags record [--isolated <cpulist>] [--duration <s>] [-o <file>] [--workload <name> | -- <command> ...]",
        discussion: """
            Enables the IPI, CSD, interrupt-vector, syscall, page-fault, idle, sched_switch and \
            TLB-flush events (BRIEF §5) with trace_clock mono in a tracefs instance of its own \
            (the top-level settings are not touched), while COMMAND or a built-in --workload runs \
            or for --duration seconds (default 10), and writes the raw ftrace text (header \
            included) to FILE. Every tracefs setting changed is restored, also on SIGINT/SIGTERM \
            (exit 130/143, with what was recorded written) and on errors. A --workload runs a \
            housekeeping load on the CPUs not in --isolated against a user-space spinner 'spin' \
            pinned to each isolated CPU (default: the last online CPU).
            """)

    // Read as text with `.unconditional` parsing, so that `--duration -1` is the value -1
    // (not a missing value before an option "-1"), and checked by RecordOptions.parse,
    // whose messages name the option and what was expected.
    @Option(name: .long, parsing: .unconditional, help: ArgumentHelp("Isolated CPUs, a cpulist such as 1 or 1,3-5 (default: the last online CPU); the other online CPUs are housekeeping.", valueName: "cpulist"))
    var isolated: String?
    @Option(name: .long, parsing: .unconditional, help: ArgumentHelp("Seconds to record (default 10; with -- COMMAND, until it exits, or at most this long).", valueName: "s"))
    var duration: String?
    @Option(name: [.customShort("o"), .long], parsing: .unconditional, help: ArgumentHelp("Where to write the trace text ('-' for standard output; default \(Recorder.defaultOutput)).", valueName: "file"))
    var output: String?
    @Option(name: .long, help: ArgumentHelp("A built-in housekeeping load against the spinner: \(Workload.allCases.map(\.rawValue).joined(separator: ", ")).", valueName: "name"))
    var workload: String?
    @Flag(name: .long, help: "List the workloads, one line each, and exit.")
    var listWorkloads = false
    @Argument(parsing: .postTerminator, help: ArgumentHelp("A command to run while recording (after --).", valueName: "command"))
    var command: [String] = []

    func makeOptions() throws -> RecordOptions {
        do {
            return try RecordOptions.parse(isolated: isolated, duration: duration, output: output, workload: workload, command: command)
        } catch {
            throw ValidationError("\(error)")
        }
    }

    mutating func validate() throws {
        if listWorkloads {
            // A listing records nothing: an option that would shape a recording is a mistake.
            let given = [("--isolated", isolated != nil), ("--duration", duration != nil), ("-o/--output", output != nil),
                         ("--workload", workload != nil), ("COMMAND", !command.isEmpty)].filter(\.1).map(\.0)
            if !given.isEmpty { throw ValidationError("--list-workloads records nothing; drop \(given.joined(separator: ", "))") }
            return
        }
        _ = try makeOptions()
    }

    func run() throws {
        if listWorkloads {
            let width = (Workload.allCases.map(\.rawValue.count).max() ?? 0) + 2
            for w in Workload.allCases {
                print(w.rawValue.padding(toLength: width, withPad: " ", startingAt: 0) + w.summary)
            }
            return
        }
        let options: RecordOptions
        do { options = try makeOptions() } catch { Record.exit(withError: error) }
        let result: RecordResult
        do {
            result = try record(options) { line in
                FileHandle.standardError.write("\(line)\n".data(using: .utf8)!)
            }
        } catch {
            FileHandle.standardError.write("Error: \(error)\n".data(using: .utf8)!)
            throw ExitCode(error.exitStatus)
        }
        if let code = result.commandExitCode, code != 0, !result.commandStopped {
            FileHandle.standardError.write("note: the command's exit code was \(code) (the recording is complete)\n".data(using: .utf8)!)
        }
        if let sig = result.interruptedBy {
            // The shell's convention for a process ended by a signal: 128 + its number.
            throw ExitCode(128 + sig)
        }
    }
}
