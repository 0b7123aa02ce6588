/// Gathers block-by-block comparisons, in ascending virtual order, into
/// `DeltaRun`s. A run grows while the next block follows on, has the same
/// kind, and continues the data blocks of each side that maps it; so a run
/// ends wherever either side's mapping run ends, as a `thin_delta --verbose`
/// range does.
struct RunBuilder {
    private var run: DeltaRun?
    /// Whether `same` runs are handed out (they are always tracked).
    let includeSame: Bool
    /// The last virtual block added, to check the walk's order.
    private var last: UInt64?

    init(includeSame: Bool) { self.includeSame = includeSame }

    /// Adds virtual block `v`, mapped to `left` and/or `right` (at least one non-nil).
    /// Returns false if `v` does not follow the previous block (a damaged tree).
    @inline(__always)
    mutating func add(_ v: UInt64, left: UInt64?, right: UInt64?, emit: (DeltaRun) throws -> Void) rethrows -> Bool {
        if let last, v <= last { return false }
        last = v
        let kind: DeltaKind
        switch (left, right) {
        case let (l?, r?): kind = l == r ? .same : .different
        case (_?, nil): kind = .leftOnly
        case (nil, _?): kind = .rightOnly
        case (nil, nil): preconditionFailure("a compared block is mapped on at least one side")
        }
        if var r = run {
            if r.kind == kind && r.end == v && follows(r.leftData, left, r.length)
                && follows(r.rightData, right, r.length)
            {
                r.length += 1
                run = r
                return true
            }
            try emitRun(r, emit)
        }
        run = DeltaRun(kind: kind, begin: v, length: 1, leftData: left, rightData: right)
        return true
    }

    /// Hands out the run in progress.
    mutating func finish(emit: (DeltaRun) throws -> Void) rethrows {
        if let r = run { try emitRun(r, emit) }
        run = nil
    }

    @inline(__always)
    private func follows(_ start: UInt64?, _ next: UInt64?, _ length: UInt64) -> Bool {
        guard let start else { return next == nil }
        guard let next else { return false }
        return start &+ length == next
    }

    @inline(__always)
    private func emitRun(_ r: DeltaRun, _ emit: (DeltaRun) throws -> Void) rethrows {
        if includeSame || r.kind != .same { try emit(r) }
    }
}
