import Delta
import Foundation
import PoolCore

/// Makes byte ranges of a merge or restore target read as zeros while keeping it thin.
///
/// - A regular file gets holes (fallocate PUNCH_HOLE): no blocks stay allocated there.
/// - A block device gets BLKDISCARD over the whole discard granules (receiver blocks: a thin
///   device's granule is its pool's block size, which may differ from the sender's) the range
///   covers, and zeros written on the unaligned edges (dm-thin ignores a partial-block discard).
///   A discard does not promise zeros on every device (a disk may return old data, a thin device
///   over an external origin returns the origin's bytes), so the discarded range is read back and
///   whatever does not read as zeros is written with zeros. On dm-thin an unmapped block reads as
///   zeros without touching the data device, so the check costs no I/O there.
final class ZeroingTarget {
    let file: RandomAccessFile
    /// Discard granule of a block device in bytes; 0: it takes no discards (zeros are written).
    let granularity: UInt64
    private let zeros: UnsafeMutableRawBufferPointer
    private let check: UnsafeMutableRawBufferPointer
    static let chunk = 1 << 20
    /// Bytes made to read zeros by a discard or a hole, and bytes written as zeros.
    private(set) var unmappedBytes: UInt64 = 0
    private(set) var zeroWrittenBytes: UInt64 = 0

    init(_ file: RandomAccessFile) {
        self.file = file
        granularity = file.isBlockDevice ? Self.discardGranularity(of: file.path) : 0
        zeros = .allocate(byteCount: Self.chunk, alignment: 4096)
        zeros.initializeMemory(as: UInt8.self, repeating: 0)
        check = .allocate(byteCount: Self.chunk, alignment: 4096)
    }

    deinit {
        zeros.deallocate()
        check.deallocate()
    }

    /// Makes `[offset, offset+length)` read as zeros.
    func zero(offset: UInt64, length: UInt64) throws {
        guard length > 0 else { return }
        if !file.isBlockDevice {
            try file.discard(offset: offset, length: length)
            unmappedBytes += length
            return
        }
        let plan = DiscardPlan(offset: offset, length: length, granularity: granularity)
        try writeZeros(plan.head)
        try writeZeros(plan.tail)
        guard !plan.whole.isEmpty else { return }
        do {
            try file.discard(offset: plan.whole.lowerBound, length: UInt64(plan.whole.count))
        } catch {
            // A device that refuses the discard (EOPNOTSUPP) is zeroed by writing.
            return try writeZeros(plan.whole)
        }
        try zeroWhatDoesNotReadZero(plan.whole)
    }

    private func writeZeros(_ range: Range<UInt64>) throws {
        var off = range.lowerBound
        while off < range.upperBound {
            let k = Int(min(UInt64(zeros.count), range.upperBound - off))
            try file.write(UnsafeRawBufferPointer(rebasing: zeros[0..<k]), at: off)
            off += UInt64(k)
            zeroWrittenBytes += UInt64(k)
        }
    }

    private func zeroWhatDoesNotReadZero(_ range: Range<UInt64>) throws {
        var off = range.lowerBound
        while off < range.upperBound {
            let k = Int(min(UInt64(check.count), range.upperBound - off))
            let buf = UnsafeMutableRawBufferPointer(rebasing: check[0..<k])
            let got = try file.read(into: buf, at: off)
            if got < k || !Self.allZero(UnsafeRawBufferPointer(rebasing: buf[0..<got])) {
                try writeZeros(off..<off + UInt64(k))
            } else {
                unmappedBytes += UInt64(k)
            }
            off += UInt64(k)
        }
    }

    static func allZero(_ b: UnsafeRawBufferPointer) -> Bool {
        var i = 0
        let n = b.count
        while i + 8 <= n {
            if b.loadUnaligned(fromByteOffset: i, as: UInt64.self) != 0 { return false }
            i += 8
        }
        while i < n {
            if b[i] != 0 { return false }
            i += 1
        }
        return true
    }

    /// The discard granule of the block device at `path` from sysfs (a partition's is its disk's);
    /// 0 when the device takes no discards.
    static func discardGranularity(of path: String) -> UInt64 {
        var st = stat()
        guard stat(path, &st) == 0 else { return 0 }
        let dev = UInt64(st.st_rdev)
        let major = ((dev >> 8) & 0xfff) | ((dev >> 32) & ~UInt64(0xfff))
        let minor = (dev & 0xff) | ((dev >> 12) & ~UInt64(0xff))
        let base = "/sys/dev/block/\(major):\(minor)"
        for q in ["\(base)/queue", "\(base)/../queue"] {
            guard let maxBytes = readNumber("\(q)/discard_max_bytes") else { continue }
            guard maxBytes > 0, let g = readNumber("\(q)/discard_granularity"), g > 0 else { return 0 }
            return g
        }
        return 0
    }

    private static func readNumber(_ path: String) -> UInt64? {
        guard let s = try? String(contentsOfFile: path, encoding: .utf8) else { return nil }
        return UInt64(s.trimmingCharacters(in: .whitespacesAndNewlines))
    }
}
