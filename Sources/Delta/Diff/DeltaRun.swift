/// How a virtual range differs between the left (older) and right (newer) device.
public enum DeltaKind: String, Sendable, Codable {
    /// Both map it to the same data blocks.
    case same
    /// Both map it, to different data blocks.
    case different
    /// Only the left maps it: gone from the newer device (a discard).
    case leftOnly = "left_only"
    /// Only the right maps it: new in the newer device.
    case rightOnly = "right_only"
}

/// One piece of a diff: `length` virtual blocks from `begin`, contiguous in the
/// data blocks of each side that maps it (so a piece can be copied as one run).
///
/// `MappingDiff` hands out the longest such pieces: a run ends only where the
/// kind changes or either side's mapping stops advancing with the virtual block
/// (a `thin_delta --verbose` range), so runs of one kind may touch.
public struct DeltaRun: Equatable, Hashable, Sendable {
    public var kind: DeltaKind
    /// First virtual block.
    public var begin: UInt64
    public var length: UInt64
    /// First data block on the left (nil for `rightOnly`).
    public var leftData: UInt64?
    /// First data block on the right (nil for `leftOnly`).
    public var rightData: UInt64?

    public init(kind: DeltaKind, begin: UInt64, length: UInt64, leftData: UInt64?, rightData: UInt64?) {
        self.kind = kind
        self.begin = begin
        self.length = length
        self.leftData = leftData
        self.rightData = rightData
    }

    public var end: UInt64 { begin + length }
}
