import ArgumentParser

/// A size or offset in bytes, as every option takes it: a number with an optional unit,
/// k/M/G/T (powers of 1024, either case), also spelled KiB/MiB/GiB/TiB or KB/MB/GB/TB;
/// e.g. `4096`, `64k`, `1G`, `10GiB`. A value beyond 2^64-1 bytes is refused, never wrapped.
public struct ByteSize: ExpressibleByArgument, Sendable, Equatable {
    public let bytes: UInt64

    public init(bytes: UInt64) { self.bytes = bytes }

    public init?(argument: String) {
        var s = Substring(argument.lowercased())
        if s.hasSuffix("ib") { s = s.dropLast(2) } else if s.hasSuffix("b") { s = s.dropLast() }
        var shift: UInt64 = 0
        if let last = s.last, let i = "kmgt".firstIndex(of: last) {
            shift = UInt64("kmgt".distance(from: "kmgt".startIndex, to: i) + 1) * 10
            s = s.dropLast()
        } else if argument.lowercased().hasSuffix("ib") {
            return nil  // "iB" without a unit
        }
        guard !s.isEmpty, s.allSatisfy(\.isASCIIDigit), let n = UInt64(s) else { return nil }
        let (v, overflow) = n.multipliedReportingOverflow(by: UInt64(1) << shift)
        guard !overflow else { return nil }
        bytes = v
    }

    /// Refuses a size that is not whole 512-byte sectors (device-mapper counts device sizes in
    /// sectors): one line naming `option`, exit 64, before anything is opened or changed.
    public func requireWholeSectors(_ option: String) throws {
        guard bytes % 512 == 0 else {
            throw JobError(.usage, "\(option) \(bytes) bytes is not a whole number of 512-byte sectors")
        }
    }

    /// Shown in `--help` as the default: the largest exact unit, e.g. `64k`.
    public var defaultValueDescription: String {
        for (unit, shift) in [("t", 40), ("g", 30), ("m", 20), ("k", 10)] where bytes > 0 && bytes % (UInt64(1) << UInt64(shift)) == 0 {
            return "\(bytes >> UInt64(shift))\(unit)"
        }
        return "\(bytes)"
    }
}

private extension Character {
    var isASCIIDigit: Bool { ("0"..."9").contains(self) }
}
