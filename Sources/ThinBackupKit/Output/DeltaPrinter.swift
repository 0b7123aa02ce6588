import Delta

/// What the `superblock` element of a delta listing shows (thin_delta 0.9.0).
public struct DeltaHeader: Sendable {
    public var time: UInt32
    public var transaction: UInt64
    /// In 512-byte sectors.
    public var dataBlockSize: UInt32
    /// 0 when read through a metadata snapshot (its space maps are not kept).
    public var dataBlockCount: UInt64
    /// The read superblock's `held_root`, when non-zero.
    public var metadataSnap: UInt64?
    /// The ids given as `--thin1` and `--thin2`.
    public var left: UInt64
    public var right: UInt64

    public init(time: UInt32, transaction: UInt64, dataBlockSize: UInt32, dataBlockCount: UInt64,
                metadataSnap: UInt64?, left: UInt64, right: UInt64) {
        self.time = time
        self.transaction = transaction
        self.dataBlockSize = dataBlockSize
        self.dataBlockCount = dataBlockCount
        self.metadataSnap = metadataSnap
        self.left = left
        self.right = right
    }
}

/// Prints runs as Debian's thin_delta 0.9.0 does, byte for byte, or as JSON.
///
/// - `plain`: one element per stretch of one kind; touching pieces of the same
///   kind are merged even when their data blocks are unrelated.
/// - `verbose`: one `range` per run (a comparison step of thin_delta), grouped
///   in a wrapper element that opens when the kind changes.
/// - `json`: one object per run and line: `{"kind":…,"begin":…,"length":…,
///   "left_data":…,"right_data":…}` (a side that does not map the run is null).
public final class DeltaPrinter {
    public enum Style: Sendable { case plain, verbose, json }

    private let out: TextOutput
    private let style: Style
    private let header: DeltaHeader
    /// plain: the element being merged; verbose: the open wrapper's kind.
    private var pending: (kind: DeltaKind, begin: UInt64, end: UInt64)?

    public init(style: Style, header: DeltaHeader, to out: TextOutput) {
        self.style = style
        self.header = header
        self.out = out
    }

    public func begin() throws {
        guard style != .json else { return }
        let h = header
        var s = "<superblock uuid=\"\" time=\"\(h.time)\" transaction=\"\(h.transaction)\""
        s += " data_block_size=\"\(h.dataBlockSize)\" nr_data_blocks=\"\(h.dataBlockCount)\""
        if let m = h.metadataSnap { s += " metadata_snap=\"\(m)\"" }
        s += ">\n  <diff left=\"\(h.left)\" right=\"\(h.right)\">\n"
        try out.write(s)
    }

    public func add(_ run: DeltaRun) throws {
        switch style {
        case .plain:
            if let p = pending, p.kind == run.kind, p.end == run.begin {
                pending = (p.kind, p.begin, run.end)
                return
            }
            try flushPlain()
            pending = (run.kind, run.begin, run.end)
        case .verbose:
            if pending?.kind != run.kind {
                if let p = pending { try out.write("    </\(p.kind.rawValue)>\n") }
                try out.write("    <\(run.kind.rawValue)>\n")
                pending = (run.kind, 0, 0)
            }
            var s = "      <range begin=\"\(run.begin)\""
            switch run.kind {
            case .different:
                s += " left_data_begin=\"\(run.leftData ?? 0)\" right_data_begin=\"\(run.rightData ?? 0)\""
            case .same, .leftOnly:
                s += " data_begin=\"\(run.leftData ?? 0)\""
            case .rightOnly:
                s += " data_begin=\"\(run.rightData ?? 0)\""
            }
            try out.write(s + " length=\"\(run.length)\"/>\n")
        case .json:
            func n(_ v: UInt64?) -> String { v.map(String.init) ?? "null" }
            try out.write("{\"kind\":\"\(run.kind.rawValue)\",\"begin\":\(run.begin),\"length\":\(run.length)"
                + ",\"left_data\":\(n(run.leftData)),\"right_data\":\(n(run.rightData))}\n")
        }
    }

    public func end() throws {
        switch style {
        case .plain:
            try flushPlain()
        case .verbose:
            if let p = pending { try out.write("    </\(p.kind.rawValue)>\n") }
            pending = nil
        case .json:
            return
        }
        try out.write("  </diff>\n</superblock>\n")
    }

    private func flushPlain() throws {
        guard let p = pending else { return }
        try out.write("    <\(p.kind.rawValue) begin=\"\(p.begin)\" length=\"\(p.end - p.begin)\"/>\n")
        pending = nil
    }
}
