import ArgumentParser
import Recorder

struct Record: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Record IPIs and CPU modes through tracefs (root).")
    func run() throws { throw ValidationError("record: not built yet") }
}
