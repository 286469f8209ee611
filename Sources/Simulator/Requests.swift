import CPUFlags
import Foundation
import HeapModule
import Histogram

extension Simulation {
    // MARK: Requests

    /// What the policy does with `kind` for target `t`, asked by `r` (one target of
    /// `routes`; for tests).
    func deliver(_ kind: WorkKind, to t: Int, from r: Int) -> Delivery {
        routes(kind, to: [t], from: r)[0].delivery
    }

    /// The policy's routes of `kind` from `r` to `targets` (`r` skipped).
    func routes(_ kind: WorkKind, to targets: [Int], from r: Int) -> [(target: Int, delivery: Delivery)] {
        model.routes(kind, to: targets, core: core(r), machine: RoutingContext(isolated: isolated, config: config))
    }

    /// on_each_cpu(kind) from housekeeping CPU `r` (a random one if nil) to `targets`.
    /// It completes when every interrupted target has run the handler: the interrupted
    /// isolated CPUs are simulated (they may be busy), the others take `ipiLatencyNs`
    /// plus the handler. `then` says what follows completion.
    func broadcast(_ kind: WorkKind, to targets: [Int], cause: String, from requester: Int? = nil, then: Then = .nothing) {
        let r = requester ?? housekeeping[rng.below(housekeeping.count)]
        var worst = 0.0
        var anyIPI = false
        var onBehalfNs = 0.0
        let id = callCount
        callCount += 1
        var outstanding = 0
        for (t, d) in routes(kind, to: targets, from: r) {
            deliveries[d.rawValue, default: 0] += 1
            if isolated[t] && d != .interrupted {
                trace("\(d.rawValue): \(cause)", cpu: t, args: ["from": "cpu\(r)", "mode": "\(platform.word(t).mode)"])
            }
            switch d {
            case .interrupted:
                anyIPI = true
                if isolated[t] {
                    outstanding += 1
                    schedule(after(config.costs.ipiLatencyNs), .interrupt(t, PendingInterrupt(cause: cause, kind: kind, call: id)))
                } else {
                    worst = max(worst, config.costs.ipiLatencyNs + config.costs.handlerNs(kind))
                }
            case .hardware:
                worst = max(worst, config.costs.hardwareFlushNs)
            case .onBehalf:
                // The pinner runs the drain itself, one target after another.
                onBehalfNs += config.costs.cacheDrainNs
            case .wokenByBit:
                // A polling idle CPU leaves idle now (its wakeup is the bit).
                idleExitAt[t] = now
                schedule(now, .idleExit(t))
            case .deferred, .skipped:
                break
            }
        }
        let call = Call(id: id, start: now, requester: r, cause: cause, kind: kind, outstanding: outstanding, latestNs: after(worst),
                        requesterNs: (anyIPI ? config.costs.ipiSendNs : 0) + onBehalfNs, then: then)
        if outstanding == 0 { complete(call) } else { calls[id] = call }
    }

    /// One interrupted target of call `id` has finished its handler (now).
    func targetDone(_ id: Int) {
        guard var call = calls[id] else { return }
        call.outstanding -= 1
        call.latestNs = max(call.latestNs, now)
        if call.outstanding > 0 { calls[id] = call; return }
        calls[id] = nil
        complete(call)
    }

    func complete(_ call: Call) {
        let done = call.latestNs + Simulation.nanoseconds(call.requesterNs)
        let latency = Double(done - call.start)
        record(&requesterLatency, latency)
        if case .expeditedGracePeriod = call.then { record(&gpExpedited, latency) }
        if tracing(call.start), let sink = traceSink {
            // Async slices: calls from one housekeeping CPU may overlap (independent
            // sources), which "X" slices on one track must not.
            let name = "on_each_cpu: \(call.cause)"
            _ = sink.emit(TraceEvent(name: name, ph: "b", ts: Double(call.start) / 1000, pid: 0, tid: call.requester,
                                     cat: "on_each_cpu", id: "\(call.id)", args: ["kind": call.kind.rawValue]))
            _ = sink.emit(TraceEvent(name: name, ph: "e", ts: Double(done) / 1000, pid: 0, tid: call.requester,
                                     cat: "on_each_cpu", id: "\(call.id)"))
        }
        if case .nextTextPatchRound(let left) = call.then {
            if left > 0 {
                // The next round starts when this one has completed on every target.
                schedule(max(done, now), .textPatchRound(requester: call.requester, roundsLeft: left - 1))
            } else if textPatchesWaiting > 0 {
                // The batch is over: the next one takes text_mutex.
                textPatchesWaiting -= 1
                schedule(max(done, now), .textPatchRound(requester: housekeeping[rng.below(housekeeping.count)], roundsLeft: 2))
            } else {
                textPatchInProgress = false
            }
        }
    }
}
