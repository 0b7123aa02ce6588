/// A set of block numbers held as sorted, disjoint, non-adjacent ranges: its memory follows the
/// number of runs, not of blocks (a 2^30-block device whose changes come in clusters is a few
/// thousand ranges). What a newest-first merge has already made final (`NewestFirstMerge`).
struct BlockRangeSet: Equatable, Sendable {
    /// Ascending; no two touch or overlap; none empty.
    private(set) var ranges: [Range<UInt64>] = []

    var isEmpty: Bool { ranges.isEmpty }

    /// Index of the first range that ends after `block` (ranges.count if none).
    private func firstEnding(after block: UInt64) -> Int {
        var lo = 0, hi = ranges.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if ranges[mid].upperBound <= block { lo = mid + 1 } else { hi = mid }
        }
        return lo
    }

    /// Whether every block of `r` is in the set (an empty `r` is).
    func contains(_ r: Range<UInt64>) -> Bool {
        if r.isEmpty { return true }
        let i = firstEnding(after: r.lowerBound)
        return i < ranges.count && ranges[i].lowerBound <= r.lowerBound && r.upperBound <= ranges[i].upperBound
    }

    /// Hands `body` the parts of `r` that are not in the set, ascending.
    func gaps(in r: Range<UInt64>, _ body: (Range<UInt64>) throws -> Void) rethrows {
        var at = r.lowerBound
        var i = firstEnding(after: at)
        while at < r.upperBound {
            guard i < ranges.count, ranges[i].lowerBound < r.upperBound else {
                try body(at..<r.upperBound)
                return
            }
            if ranges[i].lowerBound > at { try body(at..<ranges[i].lowerBound) }
            at = max(at, ranges[i].upperBound)
            i += 1
        }
    }

    /// Adds `r`. Cheap when `r` starts at or after the last range (a stream's records ascend);
    /// anything else is merged where it falls.
    mutating func insert(_ r: Range<UInt64>) {
        if r.isEmpty { return }
        if let last = ranges.last, r.lowerBound >= last.lowerBound {
            if r.lowerBound <= last.upperBound {
                ranges[ranges.count - 1] = last.lowerBound..<max(last.upperBound, r.upperBound)
            } else {
                ranges.append(r)
            }
            return
        }
        if ranges.isEmpty { ranges.append(r); return }
        // The ranges that touch or overlap `r`: from the first ending at or after its start to the
        // last starting at or before its end.
        var lo = 0, hi = ranges.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if ranges[mid].upperBound < r.lowerBound { lo = mid + 1 } else { hi = mid }
        }
        var j = lo
        var merged = r
        while j < ranges.count, ranges[j].lowerBound <= r.upperBound {
            merged = min(merged.lowerBound, ranges[j].lowerBound)..<max(merged.upperBound, ranges[j].upperBound)
            j += 1
        }
        ranges.replaceSubrange(lo..<j, with: [merged])
    }

    /// Adds every range of `other` (one pass over both).
    mutating func formUnion(_ other: BlockRangeSet) {
        if other.isEmpty { return }
        if isEmpty { self = other; return }
        var out: [Range<UInt64>] = []
        out.reserveCapacity(ranges.count + other.ranges.count)
        var i = 0, j = 0
        while i < ranges.count || j < other.ranges.count {
            let next: Range<UInt64>
            if j == other.ranges.count || (i < ranges.count && ranges[i].lowerBound <= other.ranges[j].lowerBound) {
                next = ranges[i]; i += 1
            } else {
                next = other.ranges[j]; j += 1
            }
            if let last = out.last, next.lowerBound <= last.upperBound {
                out[out.count - 1] = last.lowerBound..<max(last.upperBound, next.upperBound)
            } else {
                out.append(next)
            }
        }
        ranges = out
    }
}
