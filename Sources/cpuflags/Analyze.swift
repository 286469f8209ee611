import ArgumentParser
import Traces

struct Analyze: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Replay the IPIs of a real ftrace recording through every policy.")
    func run() throws { throw ValidationError("analyze: not built yet") }
}
