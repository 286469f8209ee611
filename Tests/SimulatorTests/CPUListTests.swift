import Foundation
import Testing

@testable import Simulator

/// The bits of `cpus` as 64-bit words (bit i of word i/64), to compare with the kernel's
/// expected bitmaps.
private func words(_ cpus: [Int], nbits: Int) -> [UInt64] {
    var w = [UInt64](repeating: 0, count: (nbits + 63) / 64)
    for c in cpus { w[c / 64] |= 1 << UInt64(c % 64) }
    return w
}

/// `parselist_tests` of Linux lib/test_bitmap.c, ported: the input, the bitmap size, and
/// the expected words (nil: no bitmap compared) or the kernel's error.
private enum Expect { case bits([UInt64]?), einval, erange, eoverflow }
private let kernelCases: [(String, Int, Expect)] = [
    ("0", 8, .bits([0x1])), ("1", 8, .bits([0x2])),
    ("0-15", 32, .bits([0x0000ffff])), ("16-31", 32, .bits([0xffff0000])),
    ("0-31:1/2", 32, .bits([0x55555555])), ("1-31:1/2", 32, .bits([0xaaaaaaaa])),
    ("0-31:1/4", 32, .bits([0x11111111])), ("1-31:1/4", 32, .bits([0x22222222])),
    ("0-31:4/4", 32, .bits([0xffffffff])), ("1-31:4/4", 32, .bits([0xfffffffe])),
    ("0-31:1/4,32-63:2/4", 64, .bits([0x3333333311111111])),
    ("0-31:3/4,32-63:4/4", 64, .bits([0xffffffff77777777])),
    ("  ,,  0-31:3/4  ,, 32-63:4/4  ,,  ", 64, .bits([0xffffffff77777777])),
    ("0-31:1/4,32-63:2/4,64-95:3/4,96-127:4/4", 128, .bits([0x3333333311111111, 0xffffffff77777777])),
    ("0-2047:128/256", 2048, .bits(nil)),
    ("", 8, .bits([0])), ("\n", 8, .bits([0])), (",,  ,,  , ,  ,", 8, .bits([0])),
    (" ,  ,,  , ,   ", 8, .bits([0])), (" ,  ,,  , ,   \n", 8, .bits([0])),
    ("0-0", 32, .bits([0x1])), ("1-1", 32, .bits([0x2])), ("15-15", 32, .bits([0x8000])), ("31-31", 32, .bits([0x80000000])),
    ("0-0:0/1", 32, .bits([0])), ("0-0:1/1", 32, .bits([0x1])), ("0-0:1/31", 32, .bits([0x1])),
    ("0-0:31/31", 32, .bits([0x1])), ("1-1:1/1", 32, .bits([0x2])), ("0-15:16/31", 32, .bits([0xffff])),
    ("15-15:1/2", 32, .bits([0x8000])), ("15-15:31/31", 32, .bits([0x8000])), ("15-31:1/31", 32, .bits([0x8000])),
    ("16-31:16/31", 32, .bits([0xffff0000])), ("31-31:31/31", 32, .bits([0x80000000])),
    ("N-N", 32, .bits([0x80000000])), ("0-0:1/N", 32, .bits([0x1])), ("0-0:N/N", 32, .bits([0x1])),
    ("0-15:16/N", 32, .bits([0xffff])), ("15-15:N/N", 32, .bits([0x8000])), ("15-N:1/N", 32, .bits([0x8000])),
    ("16-N:16/N", 32, .bits([0xffff0000])), ("N-N:N/N", 32, .bits([0x80000000])),
    ("0-N:1/3,1-N:1/3,2-N:1/3", 32, .bits([0xffffffff])),
    ("0-31:1/3,1-31:1/3,2-31:1/3", 32, .bits([0xffffffff])),
    ("1-10:8/12,8-31:24/29,0-31:0/3", 32, .bits([0xfffffffe])),
    ("all", 32, .bits([0xffffffff])), ("0, 1, all,  ", 32, .bits([0xffffffff])),
    ("all:1/2", 32, .bits([0x55555555])), ("ALL:1/2", 32, .bits([0x55555555])),
    ("al", 8, .einval), ("alll", 8, .einval),
    ("-1", 8, .einval), ("-0", 8, .einval), ("10-1", 8, .einval), ("8-8", 8, .erange), ("0-31", 8, .erange),
    ("0-31:", 32, .einval), ("0-31:0", 32, .einval), ("0-31:0/", 32, .einval), ("0-31:0/0", 32, .einval),
    ("0-31:1/0", 32, .einval), ("0-31:10/1", 32, .einval),
    ("0-98765432123456789:10/1", 8, .eoverflow),
    ("a-31", 8, .einval), ("0-a1", 8, .einval), ("a-31:10/1", 8, .einval), ("0-31:a/1", 8, .einval), ("0-\n", 8, .einval),
]

@Test func cpulistsParseLikeTheKernel() {
    for (input, nbits, expect) in kernelCases {
        let shown = input.debugDescription
        do {
            let list = try CPUList(parsing: input, cpuCount: nbits)
            guard case .bits(let w) = expect else {
                Issue.record("\(shown) (\(nbits) bits) parsed as \(list), expected \(expect)")
                continue
            }
            if let w { #expect(words(list.cpus, nbits: nbits) == w, "\(shown): \(list)") }
        } catch {
            switch (expect, error.kind) {
            case (.einval, .invalid), (.erange, .outOfRange), (.eoverflow, .overflow): break
            default: Issue.record("\(shown) (\(nbits) bits): \(error), expected \(expect)")
            }
        }
    }
    // The case the kernel's table checks only for time: 128 of each group of 256.
    let big = try? CPUList(parsing: "0-2047:128/256", cpuCount: 2048)
    #expect(big?.cpus.count == 1024 && big?.cpus.prefix(129).last == 256)
}

/// The syntax of the review's examples: groups, N, all, and the bare stride the kernel
/// does not have.
@Test func cpulistGroupsAndSpecialNames() throws {
    #expect(try CPUList(parsing: "8-63:2/4", cpuCount: 64).cpus == stride(from: 8, to: 64, by: 4).flatMap { [$0, $0 + 1] })
    #expect(try CPUList(parsing: "0-N", cpuCount: 16).cpus == Array(0...15))
    #expect(try CPUList(parsing: "all", cpuCount: 4).cpus == [0, 1, 2, 3])
    #expect(try CPUList(parsing: "4-N:1/2", cpuCount: 12).cpus == [4, 6, 8, 10])
    // Whitespace separates like a comma; a newline ends the list, as in the kernel.
    #expect(try CPUList(parsing: " 1\t2 ,3", cpuCount: 8).cpus == [1, 2, 3])
    #expect(try CPUList(parsing: "1\n2", cpuCount: 8).cpus == [1])
    // After a group size the kernel looks for the next region at once: "2N" is 2 and N.
    #expect(try CPUList(parsing: "0-5:1/2N", cpuCount: 8).cpus == [0, 2, 4, 7])
    #expect(throws: CPUList.ParseError.self) { try CPUList(parsing: "10-15:2", cpuCount: 64) }
    #expect(throws: CPUList.ParseError.self) { try CPUList(parsing: "5:1/2", cpuCount: 64) }
}

/// Errors point at the offending character (1-based), not at the start of the region.
@Test func cpulistErrorsPointAtTheCharacter() {
    func error(_ text: String, _ n: Int = 64) -> CPUList.ParseError? {
        do { _ = try CPUList(parsing: text, cpuCount: n); return nil } catch { return error }
    }
    for (text, character, mentions) in [
        ("10-15:2", 8, "'/'"), ("0-a1", 3, "CPU number"), ("1,,x", 4, "CPU number"), ("0-31:0/0", 8, "group size"),
        ("8-8", 3, "below 8"), ("0-31:10/1", 6, "at most"), ("5-3", 3, "at least its start"), ("8-", 3, "after '-'"),
        ("2,70", 3, "below 64"), ("0-7x", 4, "':used/group_size'"),
    ] {
        let n = text == "8-8" ? 8 : 64
        guard let e = error(text, n) else {
            Issue.record("'\(text)' parsed")
            continue
        }
        #expect(e.position + 1 == character, "\(text): \(e)")
        #expect(e.description.contains("at character \(character)"), "\(text): \(e)")
        #expect(e.description.contains(mentions), "\(text): \(e)")
        #expect(e.description.contains("'\(text)'"))
    }
}

/// The input is bounded: a list longer than `lengthMax` is refused before parsing, huge
/// numbers and ranges are refused without building them, and the message stays short.
@Test func cpulistInputIsBounded() {
    let huge = (0..<50_000).map(String.init).joined(separator: ",")
    let start = ContinuousClock.now
    do {
        _ = try CPUList(parsing: huge, cpuCount: 64)
        Issue.record("a \(huge.count)-character list parsed")
    } catch {
        #expect(error.kind == .tooLong)
        #expect(error.description.contains("at most \(CPUList.lengthMax) characters"))
        #expect(error.description.count < 300)
    }
    for text in ["0-4294967295", "4294967295", "0-4095:1/4294967295"] {
        _ = try? CPUList(parsing: text, cpuCount: 4096)
    }
    #expect((try? CPUList(parsing: "0-4095:1/4294967295", cpuCount: 4096))?.cpus == [0])
    #expect((try? CPUList(parsing: "0-4294967296", cpuCount: 4096)) == nil)
    #expect((try? CPUList(parsing: "0", cpuCount: SimulatorLimits.cpusMax + 1)) == nil, "never a bitmap larger than the machine")
    #expect(ContinuousClock.now - start < .seconds(5))
}

@Test func cpulistDescriptionIsNormalized() throws {
    #expect(CPUList([1, 2, 3, 7]).description == "1-3,7")
    #expect(try CPUList(parsing: "8-63,8-63", cpuCount: 64).description == "8-63")
    #expect(try CPUList(parsing: "3,1,2,9-10", cpuCount: 64).description == "1-3,9-10")
    #expect(try CPUList(parsing: "0-7:2/4", cpuCount: 8).description == "0-1,4-5")
}
