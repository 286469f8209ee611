import Foundation
import Simulator

/// A set of CPU numbers, read from and shown as a kernel cpulist ("0-3,8,10-11").
///
/// The text is parsed by the simulator's `CPUList` (the kernel's syntax: `N`, `N-M`,
/// `N-M:used/group`, `all`); this type adds the check against the CPUs that are online,
/// because a spinner cannot be pinned to a CPU that is offline or absent.
public struct CPUSet: Hashable, Sendable, CustomStringConvertible {
    public private(set) var cpus: [Int]

    public init(_ cpus: [Int]) { self.cpus = Array(Set(cpus)).sorted() }

    /// A cpulist that cannot be used, with the text and what was expected instead.
    public struct ParseError: Error, CustomStringConvertible, Equatable, Sendable {
        public var input: String
        public var expected: String
        public var description: String {
            let shown = input.count > 60 ? String(input.prefix(57)) + "..." : input
            return "cpulist '\(shown)': expected \(expected)"
        }
    }

    /// The largest machine a list may describe: the simulator's (`SimulatorLimits.cpusMax`).
    public static let cpuMax = SimulatorLimits.cpusMax - 1

    /// Parses `text` with the package's one cpulist parser (`CPUList`, which reads it as
    /// the kernel's `bitmap_parselist` does); see `checkOnline` for the machine.
    public init(parsing text: String) throws(ParseError) {
        do {
            let list = try CPUList(parsing: text, cpuCount: CPUSet.cpuMax + 1)
            guard !list.cpus.isEmpty else {
                throw ParseError(input: text, expected: "at least one CPU: a cpulist such as 1 or 1,3-5")
            }
            cpus = list.cpus
        } catch let e as CPUList.ParseError {
            throw ParseError(input: text, expected: "\(e.expected) at character \(e.position + 1): a cpulist such as 1 or 1,3-5")
        } catch let e as ParseError {
            throw e
        } catch {
            throw ParseError(input: text, expected: "a cpulist such as 1 or 1,3-5")
        }
    }

    /// Throws unless every CPU of the set is online.
    public func checkOnline(_ online: CPUSet, input: String) throws(ParseError) {
        let offline = cpus.filter { !online.cpus.contains($0) }
        guard offline.isEmpty else {
            throw ParseError(input: input, expected: "online CPUs only (online: \(online)); not online: \(CPUSet(offline))")
        }
    }

    public var isEmpty: Bool { cpus.isEmpty }
    public func contains(_ cpu: Int) -> Bool { cpus.contains(cpu) }
    public func subtracting(_ other: CPUSet) -> CPUSet { CPUSet(cpus.filter { !other.cpus.contains($0) }) }

    /// The shortest cpulist ("0-3,8"), as `CPUList` writes it.
    public var description: String { CPUList(cpus).description }

    /// The CPUs online now, from sysfs (`/sys/devices/system/cpu/online`, a cpulist); if it
    /// cannot be read (a container without /sys), the CPUs the C library counts.
    public static func online(sysfs: String = "/sys/devices/system/cpu/online") -> CPUSet {
        if let text = try? String(contentsOfFile: sysfs, encoding: .utf8),
           let set = try? CPUSet(parsing: text.trimmingCharacters(in: .whitespacesAndNewlines)), !set.isEmpty {
            return set
        }
        let n = max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))))
        return CPUSet(Array(0..<n))
    }
}
