import Foundation

extension MachineConfig {
    /// Reads a JSON config file: any subset of `MachineConfig`'s fields (nested
    /// `workload` and `costs` objects too) over the defaults. Unknown keys and wrong
    /// types are errors that name the file and the field.
    public static func load(path: String, over base: MachineConfig = MachineConfig()) throws -> MachineConfig {
        let data: Data
        do { data = try Data(contentsOf: URL(fileURLWithPath: path)) } catch {
            throw Simulation.SetupError.bad("\(path): cannot read the file (\(error.localizedDescription))")
        }
        let user: Any
        do { user = try JSONSerialization.jsonObject(with: data) } catch {
            throw Simulation.SetupError.bad("\(path): not valid JSON (\(error.localizedDescription))")
        }
        guard let userObject = user as? [String: Any] else {
            throw Simulation.SetupError.bad("\(path): expected a JSON object at the top level")
        }
        let defaults = try JSONSerialization.jsonObject(with: JSONEncoder().encode(base)) as! [String: Any]
        func merge(_ d: [String: Any], _ u: [String: Any], at path0: String) throws -> [String: Any] {
            var out = d
            for (k, v) in u.sorted(by: { $0.key < $1.key }) {
                let here = path0.isEmpty ? k : "\(path0).\(k)"
                guard let dv = d[k] else {
                    throw Simulation.SetupError.bad("\(path): unknown field '\(here)'; expected one of: \(d.keys.sorted().joined(separator: ", "))")
                }
                if let dObj = dv as? [String: Any] {
                    guard let uObj = v as? [String: Any] else {
                        throw Simulation.SetupError.bad("\(path): field '\(here)' must be an object")
                    }
                    out[k] = try merge(dObj, uObj, at: here)
                } else {
                    out[k] = v
                }
            }
            return out
        }
        return try decode(merge(defaults, userObject, at: ""), source: path)
    }

    static func decode(_ object: [String: Any], source: String) throws -> MachineConfig {
        do {
            return try JSONDecoder().decode(MachineConfig.self, from: JSONSerialization.data(withJSONObject: object))
        } catch let DecodingError.typeMismatch(type, ctx) {
            let field = ctx.codingPath.map(\.stringValue).joined(separator: ".")
            throw Simulation.SetupError.bad("\(source): field '\(field)' must be \(type)")
        } catch {
            throw Simulation.SetupError.bad("\(source): \(error)")
        }
    }

    /// Every numeric parameter a sweep may vary, by its JSON path.
    public static var sweepable: [String] {
        let o = try! JSONSerialization.jsonObject(with: JSONEncoder().encode(MachineConfig())) as! [String: Any]
        var out: [String] = []
        for (k, v) in o {
            if let sub = v as? [String: Any] {
                for (k2, v2) in sub where v2 is NSNumber { out.append("\(k).\(k2)") }
            } else if v is NSNumber, k != "seed", !k.hasSuffix("Max") {
                out.append(k)
            }
        }
        return out.sorted()
    }

    /// This config with the numeric field at `path` (e.g. `workload.isolatedSyscallsPerSec`)
    /// set to `value`.
    public func setting(_ path: String, to value: Double) throws -> MachineConfig {
        guard MachineConfig.sweepable.contains(path) else {
            throw Simulation.SetupError.bad("--sweep: unknown parameter '\(path)'; expected one of: \(MachineConfig.sweepable.joined(separator: ", "))")
        }
        var o = try JSONSerialization.jsonObject(with: JSONEncoder().encode(self)) as! [String: Any]
        let parts = path.split(separator: ".").map(String.init)
        if parts.count == 1 {
            o[parts[0]] = value
        } else {
            var sub = o[parts[0]] as! [String: Any]
            sub[parts[1]] = value
            o[parts[0]] = sub
        }
        return try MachineConfig.decode(o, source: "--sweep \(path)=\(value)")
    }
}
