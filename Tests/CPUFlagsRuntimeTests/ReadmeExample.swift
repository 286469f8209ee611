import Atomics
import CPUFlags
import Foundation
import Testing

@testable import CPUFlagsRuntime

// The README's example of the runtime, compiled and run by `readmeExampleRuns`; the
// README must show the lines between BEGIN and END exactly (`readmeShowsTheExample`).
func readmeExample() throws -> (Route, Int) {
    // BEGIN README
    let runtime = try IsolationRuntime()         // strict exit policy, SIGRTMIN+4, 8 workers
    let drained = ManagedAtomic<Int>(0)
    let drain = try runtime.defineWork { worker in
        drained.wrappingIncrement(ordering: .relaxed)  // async-signal-safe: atomics only
    }
    let isolated = ManagedAtomic<Bool>(false), done = ManagedAtomic<Bool>(false)
    let latencyCritical = Thread {
        let me = try! runtime.register(pinTo: 1)   // this thread is worker 0, on CPU 1
        me.enterUserStretch()                      // isolated from here: no signals
        isolated.store(true, ordering: .releasing)
        while !done.load(ordering: .acquiring) {}  // the packet loop: no system calls
        me.leaveUserStretch()                      // runs the deferred drain, first
        runtime.unregister(me)
    }
    latencyCritical.start()
    while !isolated.load(ordering: .acquiring) {}
    let route = try runtime.request(drain, on: 0)  // .deferred: a bit in its word, no signal
    try runtime.synchronize()                      // a grace period: the user stretch counts
    done.store(true, ordering: .releasing)
    while runtime.isRegistered(0) {}
    runtime.shutdown()
    // END README
    return (route, drained.load(ordering: .relaxed))
}

extension RuntimeTests {
    @Test func readmeExampleRuns() throws {
        let (route, drained) = try readmeExample()
        #expect(route == .deferred)
        #expect(drained == 1)
    }

    @Test func readmeShowsTheExample() throws {
        let here = URL(fileURLWithPath: #filePath)
        let source = try String(contentsOf: here, encoding: .utf8).components(separatedBy: "\n")
        guard let b = source.firstIndex(where: { $0.hasSuffix("// BEGIN README") }),
              let e = source.firstIndex(where: { $0.hasSuffix("// END README") }) else {
            Issue.record("markers missing")
            return
        }
        let example = source[(b + 1)..<e].map { String($0.dropFirst(4)) }.joined(separator: "\n")
        let readme = try String(contentsOf: here.deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("README.md"), encoding: .utf8)
        #expect(readme.contains(example), "README.md must show the example of \(here.lastPathComponent) verbatim")
    }
}
