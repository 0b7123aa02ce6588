/// XXH64 (Yann Collet's xxHash, 64-bit variant), the hash zstd uses for its frame checksums.
///
/// Used for the stream digest and the per-block content digest: fast (several
/// GB/s), well mixed, and checkable against zstd's frame checksum in tests.
public enum XXHash64 {
    static let p1: UInt64 = 11_400_714_785_074_694_791
    static let p2: UInt64 = 14_029_467_366_897_019_727
    static let p3: UInt64 = 1_609_587_929_392_839_161
    static let p4: UInt64 = 9_650_029_242_287_828_579
    static let p5: UInt64 = 2_870_177_450_012_600_261

    @inline(__always) static func rotl(_ x: UInt64, _ r: UInt64) -> UInt64 { (x << r) | (x >> (64 - r)) }

    @inline(__always) static func round(_ acc: UInt64, _ input: UInt64) -> UInt64 {
        rotl(acc &+ input &* p2, 31) &* p1
    }

    @inline(__always) static func merge(_ acc: UInt64, _ v: UInt64) -> UInt64 {
        (acc ^ round(0, v)) &* p1 &+ p4
    }

    public static func hash(_ bytes: [UInt8], seed: UInt64 = 0) -> UInt64 {
        bytes.withUnsafeBytes { hash($0, seed: seed) }
    }

    public static func hash(_ data: UnsafeRawBufferPointer, seed: UInt64 = 0) -> UInt64 {
        let n = data.count
        var i = 0
        var h: UInt64
        if n >= 32 {
            var v1 = seed &+ p1 &+ p2, v2 = seed &+ p2, v3 = seed, v4 = seed &- p1
            while i + 32 <= n {
                v1 = round(v1, data.loadUnaligned(fromByteOffset: i, as: UInt64.self).littleEndian)
                v2 = round(v2, data.loadUnaligned(fromByteOffset: i + 8, as: UInt64.self).littleEndian)
                v3 = round(v3, data.loadUnaligned(fromByteOffset: i + 16, as: UInt64.self).littleEndian)
                v4 = round(v4, data.loadUnaligned(fromByteOffset: i + 24, as: UInt64.self).littleEndian)
                i += 32
            }
            h = converge(v1, v2, v3, v4)
        } else {
            h = seed &+ p5
        }
        return finish(h &+ UInt64(n), tail: UnsafeRawBufferPointer(rebasing: data[i...]))
    }

    /// The four lanes folded into one (inputs of 32 bytes or more).
    @inline(__always) static func converge(_ v1: UInt64, _ v2: UInt64, _ v3: UInt64, _ v4: UInt64) -> UInt64 {
        var h = rotl(v1, 1) &+ rotl(v2, 7) &+ rotl(v3, 12) &+ rotl(v4, 18)
        h = merge(h, v1); h = merge(h, v2); h = merge(h, v3); h = merge(h, v4)
        return h
    }

    /// `h` (the converged lanes or the short-input start, plus the total length) over the last
    /// bytes that fill no 32-byte stripe, then the final avalanche.
    @inline(__always) static func finish(_ start: UInt64, tail: UnsafeRawBufferPointer) -> UInt64 {
        var h = start
        let n = tail.count
        var i = 0
        while i + 8 <= n {
            h ^= round(0, tail.loadUnaligned(fromByteOffset: i, as: UInt64.self).littleEndian)
            h = rotl(h, 27) &* p1 &+ p4
            i += 8
        }
        if i + 4 <= n {
            h ^= UInt64(tail.loadUnaligned(fromByteOffset: i, as: UInt32.self).littleEndian) &* p1
            h = rotl(h, 23) &* p2 &+ p3
            i += 4
        }
        while i < n {
            h ^= UInt64(tail[i]) &* p5
            h = rotl(h, 11) &* p1
            i += 1
        }
        h ^= h >> 33; h &*= p2
        h ^= h >> 29; h &*= p3
        h ^= h >> 32
        return h
    }
}

extension XXHash64 {
    /// XXH64 over bytes given in pieces: the same value as `hash` over their concatenation
    /// (a record hashed while its parts stay where they are, never copied together).
    public struct Streaming {
        private var v1: UInt64, v2: UInt64, v3: UInt64, v4: UInt64
        private let seed: UInt64
        private var total = 0
        /// Up to 31 bytes not yet folded into a 32-byte stripe.
        private var pending: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)
        private var pendingCount = 0

        public init(seed: UInt64 = 0) {
            self.seed = seed
            v1 = seed &+ p1 &+ p2; v2 = seed &+ p2; v3 = seed; v4 = seed &- p1
        }

        @inline(__always) private mutating func stripe(_ p: UnsafeRawPointer) {
            v1 = round(v1, p.loadUnaligned(as: UInt64.self).littleEndian)
            v2 = round(v2, p.loadUnaligned(fromByteOffset: 8, as: UInt64.self).littleEndian)
            v3 = round(v3, p.loadUnaligned(fromByteOffset: 16, as: UInt64.self).littleEndian)
            v4 = round(v4, p.loadUnaligned(fromByteOffset: 24, as: UInt64.self).littleEndian)
        }

        public mutating func update(_ data: UnsafeRawBufferPointer) {
            guard let base = data.baseAddress, data.count > 0 else { return }
            total += data.count
            var i = 0
            var held = pending
            withUnsafeMutableBytes(of: &held) { buf in
                if pendingCount > 0 {
                    let k = min(32 - pendingCount, data.count)
                    buf.baseAddress!.advanced(by: pendingCount).copyMemory(from: base, byteCount: k)
                    pendingCount += k
                    i = k
                    if pendingCount == 32 {
                        stripe(UnsafeRawPointer(buf.baseAddress!))
                        pendingCount = 0
                    }
                }
                while i + 32 <= data.count {
                    stripe(base + i)
                    i += 32
                }
                if i < data.count {
                    buf.baseAddress!.copyMemory(from: base + i, byteCount: data.count - i)
                    pendingCount = data.count - i
                }
            }
            pending = held
        }

        public func finish() -> UInt64 {
            let start = total >= 32 ? converge(v1, v2, v3, v4) : seed &+ p5
            var rest = pending
            return withUnsafeBytes(of: &rest) { data in
                XXHash64.finish(start &+ UInt64(total), tail: UnsafeRawBufferPointer(rebasing: data[0..<pendingCount]))
            }
        }
    }
}
