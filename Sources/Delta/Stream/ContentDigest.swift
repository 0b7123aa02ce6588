/// A digest of a device's content that can be updated block by block.
///
/// D = Σ over blocks v that are not all zeros of a 128-bit value derived from
/// XXH64(block bytes, seed: v), summed mod 2^64 per half. All-zero blocks (and
/// unmapped ones, which read as zeros) add nothing, so a thin device, its
/// fully provisioned copy and a plain file with the same bytes share one digest,
/// and replacing block v changes D by (new − old) without reading anything else.
/// Not a cryptographic hash: it detects accidents (a wrong base, a damaged
/// block), not an adversary.
public struct ContentDigest: Equatable, Sendable {
    public private(set) var value: Digest128

    public init(_ value: Digest128 = .zero) { self.value = value }

    /// The two halves a block contributes (nil for an all-zero block).
    @inline(__always)
    public static func contribution(block v: UInt64, _ bytes: UnsafeRawBufferPointer) -> (UInt64, UInt64)? {
        if isAllZero(bytes) { return nil }
        let h = XXHash64.hash(bytes, seed: v)
        var z = h ^ (v &* 0x9E37_79B9_7F4A_7C15)
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return (z ^ (z >> 31), h)
    }

    public mutating func add(block v: UInt64, _ bytes: UnsafeRawBufferPointer) {
        if let (a, b) = Self.contribution(block: v, bytes) { value.high &+= a; value.low &+= b }
    }

    public mutating func remove(block v: UInt64, _ bytes: UnsafeRawBufferPointer) {
        if let (a, b) = Self.contribution(block: v, bytes) { value.high &-= a; value.low &-= b }
    }

    /// Adds every block of `bytes`, which holds consecutive blocks of `blockSize` from virtual block `first`.
    public mutating func add(blocks bytes: UnsafeRawBufferPointer, from first: UInt64, blockSize: Int) {
        var i = 0
        while i < bytes.count {
            add(block: first + UInt64(i / blockSize), UnsafeRawBufferPointer(rebasing: bytes[i..<min(i + blockSize, bytes.count)]))
            i += blockSize
        }
    }

    /// What `add(blocks:from:blockSize:)` adds to a digest, summed on its own (any thread may compute it).
    public static func sum(blocks bytes: UnsafeRawBufferPointer, from first: UInt64, blockSize: Int) -> Digest128 {
        var d = ContentDigest()
        d.add(blocks: bytes, from: first, blockSize: blockSize)
        return d.value
    }

    /// Writes each block's contribution (zero for an all-zero block) of `bytes` — consecutive blocks
    /// of `blockSize` from virtual block `first`, the last one possibly short — into `out` (an entry
    /// per block) and returns their sum (`sum(blocks:from:blockSize:)`).
    public static func contributions(blocks bytes: UnsafeRawBufferPointer, from first: UInt64, blockSize: Int,
                                     into out: UnsafeMutableBufferPointer<Digest128>) -> Digest128 {
        var s = Digest128.zero
        var i = 0
        while i * blockSize < bytes.count {
            let b = UnsafeRawBufferPointer(rebasing: bytes[i * blockSize..<min((i + 1) * blockSize, bytes.count)])
            if let (hi, lo) = contribution(block: first &+ UInt64(i), b) {
                out[i] = Digest128(high: hi, low: lo)
                s.high &+= hi
                s.low &+= lo
            } else {
                out[i] = .zero
            }
            i += 1
        }
        return s
    }

    /// Adds a `sum` of blocks' contributions.
    public mutating func add(_ sum: Digest128) { value.high &+= sum.high; value.low &+= sum.low }

    /// Removes a `sum` of blocks' contributions.
    public mutating func remove(_ sum: Digest128) { value.high &-= sum.high; value.low &-= sum.low }

    public mutating func remove(blocks bytes: UnsafeRawBufferPointer, from first: UInt64, blockSize: Int) {
        var i = 0
        while i < bytes.count {
            remove(block: first + UInt64(i / blockSize), UnsafeRawBufferPointer(rebasing: bytes[i..<min(i + blockSize, bytes.count)]))
            i += blockSize
        }
    }
}

/// True when every byte is zero (word at a time).
@inline(__always)
public func isAllZero(_ bytes: UnsafeRawBufferPointer) -> Bool {
    let n = bytes.count
    var i = 0
    var acc: UInt64 = 0
    while i + 64 <= n {
        for k in stride(from: 0, to: 64, by: 8) { acc |= bytes.loadUnaligned(fromByteOffset: i + k, as: UInt64.self) }
        if acc != 0 { return false }
        i += 64
    }
    while i < n {
        if bytes[i] != 0 { return false }
        i += 1
    }
    return true
}
