import PoolCore

/// The difference between two thin devices' bottom-level mapping trees,
/// computed by walking both trees together.
///
/// Snapshots share subtrees by copy-on-write. Where both walks reach the same
/// metadata block, everything under it maps identically on both sides:
/// ``changes(_:)`` skips such a block without reading it, so its cost grows
/// with the paths that changed, not with the size of the devices. ``all(_:)``
/// also reports the `same` runs, so it reads each shared leaf once (never
/// twice) and does not compare it. Both are exact on trees that share nothing
/// (thin_restore images) and on any mix of shared internal nodes and leaves.
///
/// Runs are handed out in ascending virtual order as soon as they are
/// complete; memory holds one node per tree level, whatever the device size.
/// A run ends wherever either side's mapping run ends (the virtual and data
/// blocks stop advancing together), exactly as a `thin_delta --verbose`
/// `range` does, so each run is one contiguous extent of data on each side
/// that maps it.
///
/// ```swift
/// let view = try MetadataReader(path: "pool/metadata").metadataSnapshot()
/// try MappingDiff(view: view, left: base, right: target).changes { run in
///     switch run.kind {
///     case .leftOnly: discard(run.begin, run.length)
///     case .rightOnly, .different: copy(run.begin, run.length, from: run.rightData!)
///     case .same: break  // never handed out by changes(_:)
///     }
/// }
/// ```
public struct MappingDiff {
    /// Where the metadata blocks are read from (wrap it in a `CountingReader` to measure).
    public let source: any BlockReading
    /// Root block of the left (older) device's bottom tree.
    public let leftRoot: UInt64
    /// Root block of the right (newer) device's bottom tree.
    public let rightRoot: UInt64

    /// The diff of two bottom trees given by their root blocks.
    public init(source: any BlockReading, leftRoot: UInt64, rightRoot: UInt64) {
        self.source = source
        self.leftRoot = leftRoot
        self.rightRoot = rightRoot
    }

    /// The diff of thin devices `left` and `right` as `view` (live superblock or
    /// held metadata snapshot) sees them.
    ///
    /// - Throws: `MappingDiffError.unknownDevice` when either id has no mapping
    ///   tree; `.damaged` when the top-level tree cannot be read.
    public init(view: MetadataView, left: UInt64, right: UInt64) throws(MappingDiffError) {
        func root(_ dev: UInt64, _ side: MappingDiffError.Side) throws(MappingDiffError) -> UInt64 {
            do {
                guard let r = try view.topLevelTree.lookup64(dev) else { throw MappingDiffError.unknownDevice(side: side, id: dev) }
                return r
            } catch let e as MappingDiffError {
                throw e
            } catch let e as MetadataError {
                throw .damaged(side: side, underlying: e)
            } catch {
                preconditionFailure("unexpected error \(error)")
            }
        }
        let l = try root(left, .left)
        let r = try root(right, .right)
        self.init(source: view.source, leftRoot: l, rightRoot: r)
    }

    /// Hands `body` every run where the devices differ (`different`, `leftOnly`,
    /// `rightOnly`), in ascending virtual order, skipping shared subtrees unread.
    ///
    /// - Throws: `MappingDiffError.damaged` naming the side and block of a
    ///   damaged tree, or whatever `body` throws. Runs already handed out stay valid.
    public func changes(_ body: (DeltaRun) throws -> Void) throws {
        try walk(includeSame: false, body)
    }

    /// Hands `body` every run, `same` ones included, in ascending virtual order.
    /// Shared subtrees are read once and reported as `same` without comparing.
    ///
    /// - Throws: as ``changes(_:)``.
    public func all(_ body: (DeltaRun) throws -> Void) throws {
        try walk(includeSame: true, body)
    }

    // MARK: the joint walk

    private func walk(includeSame: Bool, _ body: (DeltaRun) throws -> Void) throws {
        var left = TreeCursor(source: source, root: leftRoot)
        var right = TreeCursor(source: source, root: rightRoot)
        var runs = RunBuilder(includeSame: includeSame)

        func add(_ v: UInt64, _ l: UInt64?, _ r: UInt64?, _ side: MappingDiffError.Side) throws {
            guard try runs.add(v, left: l, right: r, emit: body) else {
                throw MappingDiffError.outOfOrder(side: side, virtualBlock: v)
            }
        }
        func expand(_ c: inout TreeCursor, _ side: MappingDiffError.Side) throws {
            do { try c.expand() } catch { throw MappingDiffError.damaged(side: side, underlying: error) }
        }

        while true {
            switch (left.current, right.current) {
            case (nil, nil):
                try runs.finish(emit: body)
                return

            case let (.entry(k, d)?, nil):
                try add(k, d, nil, .left)
                left.advance()
            case let (nil, .entry(k, d)?):
                try add(k, nil, d, .right)
                right.advance()
            case (.subtree?, nil):
                try expand(&left, .left)
            case (nil, .subtree?):
                try expand(&right, .right)

            case let (.entry(lk, ld)?, .entry(rk, rd)?):
                if lk < rk {
                    try add(lk, ld, nil, .left)
                    left.advance()
                } else if rk < lk {
                    try add(rk, nil, rd, .right)
                    right.advance()
                } else {
                    try add(lk, ld, rd, .both)
                    left.advance()
                    right.advance()
                }

            case let (.subtree(_, low, _, _)?, .entry(k, d)?):
                // The subtree may hold keys ≤ k: read it. Otherwise k comes first.
                if let low, low > k {
                    try add(k, nil, d, .right)
                    right.advance()
                } else {
                    try expand(&left, .left)
                }
            case let (.entry(k, d)?, .subtree(_, low, _, _)?):
                if let low, low > k {
                    try add(k, d, nil, .left)
                    left.advance()
                } else {
                    try expand(&right, .right)
                }

            case let (.subtree(lb, llow, lhigh, lparent)?, .subtree(rb, rlow, rhigh, _)?):
                if lb == rb {
                    // The same block on both sides: identical mappings below it.
                    if includeSame {
                        try walkShared(lb, low: max(llow, rlow), high: min(lhigh, rhigh), parent: lparent, &runs, body)
                    }
                    left.advance()
                    right.advance()
                } else if expandsLeft(left, right, (llow, lhigh), (rlow, rhigh)) {
                    try expand(&left, .left)
                } else {
                    try expand(&right, .right)
                }
            }
        }
    }

    /// Which of two different unread subtrees to read first: one wholly before
    /// the other goes first; else the higher one (known once a leaf was read on
    /// both sides), so that a lower subtree it may share with the other side is
    /// met at its own level; else the one with the wider key range.
    private func expandsLeft(_ left: TreeCursor, _ right: TreeCursor,
                             _ l: (low: UInt64?, high: UInt64?), _ r: (low: UInt64?, high: UInt64?)) -> Bool {
        if let lh = l.high, let rl = r.low, lh <= rl { return true }
        if let rh = r.high, let ll = l.low, rh <= ll { return false }
        if let hl = left.height, let hr = right.height, hl != hr { return hl > hr }
        return width(l) >= width(r)
    }

    private func width(_ range: (low: UInt64?, high: UInt64?)) -> UInt64 {
        (range.high ?? .max) - (range.low ?? 0)
    }

    /// Reports every entry under a block both trees share as `same`, reading it once.
    private func walkShared(_ block: UInt64, low: UInt64?, high: UInt64?, parent: UInt64?,
                            _ runs: inout RunBuilder, _ body: (DeltaRun) throws -> Void) throws {
        var c = TreeCursor(source: source, block: block, low: low, high: high, parent: parent)
        while let item = c.current {
            switch item {
            case let .entry(k, d):
                guard try runs.add(k, left: d, right: d, emit: body) else {
                    throw MappingDiffError.outOfOrder(side: .both, virtualBlock: k)
                }
                c.advance()
            case .subtree:
                do { try c.expand() } catch { throw MappingDiffError.damaged(side: .both, underlying: error) }
            }
        }
    }
}

/// Why a diff could not be computed.
public enum MappingDiffError: Error, Equatable, Sendable, CustomStringConvertible {
    /// Which tree a fault was found in.
    public enum Side: String, Sendable {
        case left, right
        /// A block both trees share, or the comparison of the two.
        case both
    }

    /// The device has no entry in the top-level mapping tree.
    case unknownDevice(side: Side, id: UInt64)
    /// A node of a tree is damaged (checksum, order, range, cycle…).
    case damaged(side: Side, underlying: MetadataError)
    /// The walk met a virtual block at or before one already compared (a damaged
    /// tree whose node ranges overlap; a safety net behind the per-node range checks).
    case outOfOrder(side: Side, virtualBlock: UInt64)

    public var description: String {
        switch self {
        case let .unknownDevice(side, id):
            return "no mapping tree for thin device \(id) (\(side))"
        case let .damaged(side, underlying):
            let which = side == .both ? "the mapping trees" : "the \(side) mapping tree"
            return "damage in \(which): \(underlying)"
        case let .outOfOrder(side, v):
            let which = side == .both ? "the mapping trees" : "the \(side) mapping tree"
            return "damage in \(which): virtual block \(v) comes out of order"
        }
    }
}

private func max(_ a: UInt64?, _ b: UInt64?) -> UInt64? {
    guard let a else { return b }
    guard let b else { return a }
    return Swift.max(a, b)
}

private func min(_ a: UInt64?, _ b: UInt64?) -> UInt64? {
    guard let a else { return b }
    guard let b else { return a }
    return Swift.min(a, b)
}
