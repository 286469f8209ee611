/// Splits a `TraceInput` into lines without copying them: each line is handed over as
/// a view into the read buffer (valid during the call only). Memory is one buffer of
/// `TraceInput.chunkBytes` plus the longest line, whatever the input's length.
public struct LineReader {
    public let input: TraceInput
    public private(set) var lineNumber = 0

    public init(_ input: TraceInput) { self.input = input }

    public enum Failure: Error, CustomStringConvertible {
        case input(TraceInput.Failure)
        case lineTooLong(input: String, line: Int)
        public var description: String {
            switch self {
            case .input(let f): return f.description
            case .lineTooLong(let input, let line):
                return "\(input):\(line): line longer than \(TraceLimits.lineBytesMax) bytes; expected ftrace text (is this a trace?)"
            }
        }
    }

    /// Calls `body` for each line (without its newline, a trailing '\r' dropped) with its
    /// 1-based number. `body` returns false to stop early.
    public mutating func forEachLine(_ body: (UnsafeBufferPointer<UInt8>, Int) throws -> Bool) throws {
        let capacity = TraceInput.chunkBytes + TraceLimits.lineBytesMax
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: capacity, alignment: 16)
        defer { buffer.deallocate() }
        let base = buffer.baseAddress!.assumingMemoryBound(to: UInt8.self)
        var filled = 0
        var eof = false
        while !eof || filled > 0 {
            if !eof {
                let room = UnsafeMutableRawBufferPointer(start: buffer.baseAddress! + filled, count: min(TraceInput.chunkBytes, capacity - filled))
                let n: Int
                do { n = try input.read(into: room) } catch { throw Failure.input(error) }
                if n == 0 { eof = true }
                filled += n
            }
            var start = 0
            while start < filled {
                guard let nl = memchr(base + start, 0x0A, filled - start) else { break }
                let end = UnsafeMutablePointer<UInt8>(nl.assumingMemoryBound(to: UInt8.self)) - base
                lineNumber += 1
                var len = end - start
                if len > 0 && base[start + len - 1] == 0x0D { len -= 1 }
                if len > TraceLimits.lineBytesMax { throw Failure.lineTooLong(input: input.name, line: lineNumber) }
                if try !body(UnsafeBufferPointer(start: base + start, count: len), lineNumber) { return }
                start = end + 1
            }
            // What is left is a partial line: keep it for the next read.
            let rest = filled - start
            if rest > TraceLimits.lineBytesMax { throw Failure.lineTooLong(input: input.name, line: lineNumber + 1) }
            if eof {
                if rest > 0 {
                    // A last line without a newline.
                    lineNumber += 1
                    _ = try body(UnsafeBufferPointer(start: base + start, count: rest), lineNumber)
                }
                return
            }
            if start > 0 && rest > 0 { memmove(base, base + start, rest) }
            filled = rest
        }
    }
}

#if canImport(Glibc)
import Glibc
#endif
