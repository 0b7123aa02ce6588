import Delta

/// An independent model of thin_delta 0.9.0's comparison (thin_delta.cc
/// `mapping_recorder` + `dump_diff`), over whole in-memory mapping tables:
/// collapse each side into runs where the virtual and data blocks advance
/// together, then step through both run lists. Each step is one
/// `thin_delta --verbose` range, and one `DeltaRun` of `MappingDiff.all`.
enum ReferenceDelta {
    struct Run { var v: UInt64; var d: UInt64; var len: UInt64 }

    static func runs(_ table: [UInt64: UInt64]) -> [Run] {
        var out: [Run] = []
        for v in table.keys.sorted() {
            let d = table[v]!
            if var last = out.last, last.v + last.len == v, last.d + last.len == d {
                last.len += 1
                out[out.count - 1] = last
            } else {
                out.append(Run(v: v, d: d, len: 1))
            }
        }
        return out
    }

    static func steps(_ left: [UInt64: UInt64], _ right: [UInt64: UInt64]) -> [DeltaRun] {
        steps(runs(left), runs(right))
    }

    static func steps(_ left: [Run], _ right: [Run]) -> [DeltaRun] {
        var ls = left[...], rs = right[...]
        var out: [DeltaRun] = []
        func consume(_ s: inout ArraySlice<Run>, _ n: UInt64) {
            var r = s.first!
            if n == r.len { s.removeFirst(); return }
            r.v += n; r.d += n; r.len -= n
            s[s.startIndex] = r
        }
        while let l = ls.first, let r = rs.first {
            if l.v < r.v {
                let n = min(l.len, r.v - l.v)
                out.append(DeltaRun(kind: .leftOnly, begin: l.v, length: n, leftData: l.d, rightData: nil))
                consume(&ls, n)
            } else if r.v < l.v {
                let n = min(r.len, l.v - r.v)
                out.append(DeltaRun(kind: .rightOnly, begin: r.v, length: n, leftData: nil, rightData: r.d))
                consume(&rs, n)
            } else {
                let n = min(l.len, r.len)
                out.append(DeltaRun(kind: l.d == r.d ? .same : .different, begin: l.v, length: n, leftData: l.d, rightData: r.d))
                consume(&ls, n)
                consume(&rs, n)
            }
        }
        for l in ls { out.append(DeltaRun(kind: .leftOnly, begin: l.v, length: l.len, leftData: l.d, rightData: nil)) }
        for r in rs { out.append(DeltaRun(kind: .rightOnly, begin: r.v, length: r.len, leftData: nil, rightData: r.d)) }
        return out
    }
}
