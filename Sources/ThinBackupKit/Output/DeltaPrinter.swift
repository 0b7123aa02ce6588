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
}

/// Prints runs as Debian's thin_delta 0.9.0 does, byte for byte, or as JSON.
///
/// - `plain`: one element per stretch of one kind; touching pieces of the same
///   kind are merged even when their data blocks are unrelated.
/// - `verbose`: one `range` per run (a comparison step of thin_delta), grouped
///   in a wrapper element that opens when the kind changes.
/// - `json`: one object per run and line: `{"kind":…,"begin":…,"length":…,
///   "left_data":…,"right_data":…}` (a side that does not map the run: null).
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

    public func begin() {
        guard style != .json else { return }
        let h = header
        out.append("<superblock uuid=\"\" time=\"")
        out.append(decimal: UInt64(h.time))
        out.append("\" transaction=\"")
        out.append(decimal: h.transaction)
        out.append("\" data_block_size=\"")
        out.append(decimal: UInt64(h.dataBlockSize))
        out.append("\" nr_data_blocks=\"")
        out.append(decimal: h.dataBlockCount)
        if let m = h.metadataSnap {
            out.append("\" metadata_snap=\"")
            out.append(decimal: m)
        }
        out.append("\">\n  <diff left=\"")
        out.append(decimal: h.left)
        out.append("\" right=\"")
        out.append(decimal: h.right)
        out.append("\">\n")
    }

    public func add(_ run: DeltaRun) throws {
        switch style {
        case .plain:
            if let p = pending, p.kind == run.kind, p.end == run.begin {
                pending = (p.kind, p.begin, run.end)
                return
            }
            element()
            pending = (run.kind, run.begin, run.end)
        case .verbose:
            if pending?.kind != run.kind {
                if let p = pending { wrapper(p.kind, closing: true) }
                wrapper(run.kind, closing: false)
                pending = (run.kind, 0, 0)
            }
            out.append("      <range begin=\"")
            out.append(decimal: run.begin)
            switch run.kind {
            case .different:
                out.append("\" left_data_begin=\"")
                out.append(decimal: run.leftData ?? 0)
                out.append("\" right_data_begin=\"")
                out.append(decimal: run.rightData ?? 0)
            case .same, .leftOnly:
                out.append("\" data_begin=\"")
                out.append(decimal: run.leftData ?? 0)
            case .rightOnly:
                out.append("\" data_begin=\"")
                out.append(decimal: run.rightData ?? 0)
            }
            out.append("\" length=\"")
            out.append(decimal: run.length)
            out.append("\"/>\n")
        case .json:
            out.append("{\"kind\":\"")
            out.append(name(run.kind))
            out.append("\",\"begin\":")
            out.append(decimal: run.begin)
            out.append(",\"length\":")
            out.append(decimal: run.length)
            out.append(",\"left_data\":")
            if let d = run.leftData { out.append(decimal: d) } else { out.append("null") }
            out.append(",\"right_data\":")
            if let d = run.rightData { out.append(decimal: d) } else { out.append("null") }
            out.append("}\n")
        }
        try out.flushIfFull()
    }

    public func end() {
        switch style {
        case .plain:
            element()
        case .verbose:
            if let p = pending { wrapper(p.kind, closing: true) }
        case .json:
            return
        }
        pending = nil
        out.append("  </diff>\n</superblock>\n")
    }

    private func element() {
        guard let p = pending else { return }
        out.append("    <")
        out.append(name(p.kind))
        out.append(" begin=\"")
        out.append(decimal: p.begin)
        out.append("\" length=\"")
        out.append(decimal: p.end - p.begin)
        out.append("\"/>\n")
        pending = nil
    }

    private func wrapper(_ kind: DeltaKind, closing: Bool) {
        out.append(closing ? "    </" : "    <")
        out.append(name(kind))
        out.append(">\n")
    }

    private func name(_ kind: DeltaKind) -> StaticString {
        switch kind {
        case .same: return "same"
        case .different: return "different"
        case .leftOnly: return "left_only"
        case .rightOnly: return "right_only"
        }
    }
}
