/// How a byte range splits over discard granules: the whole granules it covers, and the
/// unaligned edges before and after them (written as zeros). With granularity 0 it is all edge.
public struct DiscardPlan: Equatable, Sendable {
    public var head: Range<UInt64>
    public var whole: Range<UInt64>
    public var tail: Range<UInt64>

    public init(offset: UInt64, length: UInt64, granularity g: UInt64) {
        let (end, overflow) = offset.addingReportingOverflow(length)
        let stop = overflow ? UInt64.max : end
        guard g > 0 else {
            head = offset..<stop
            whole = stop..<stop
            tail = stop..<stop
            return
        }
        let rem = offset % g
        let up = rem == 0 ? offset : offset.addingReportingOverflow(g - rem).partialValue
        let first = (rem != 0 && up < offset) || up > stop ? stop : up
        let last = max(first, stop - stop % g)
        head = offset..<first
        whole = first..<last
        tail = last..<stop
    }

    public init(head: Range<UInt64>, whole: Range<UInt64>, tail: Range<UInt64>) {
        self.head = head
        self.whole = whole
        self.tail = tail
    }
}
