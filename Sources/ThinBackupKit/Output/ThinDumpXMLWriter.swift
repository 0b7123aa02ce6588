/// thin_dump 0.9.0's XML, byte for byte (FORMAT.md §7.1).
///
/// Feed it the superblock, then each device and its mappings in ascending
/// virtual-block order; it merges mappings into `range_mapping` runs exactly
/// as thin_dump does: virtual and data block both advance by one and the time
/// is equal, across leaf boundaries; a run of one is a `single_mapping`.
/// Knows nothing of how the metadata is read.
public struct ThinDumpXMLWriter {
    public let out: TextOutput

    // The pending run.
    private var runLength: UInt64 = 0
    private var runVirtual: UInt64 = 0
    private var runData: UInt64 = 0
    private var runTime: UInt32 = 0

    public init(out: TextOutput) { self.out = out }

    public struct SuperblockFields {
        public var time: UInt32
        public var transaction: UInt64
        public var flags: UInt32
        public var version: UInt32
        public var dataBlockSize: UInt32
        public var dataBlockCount: UInt64
    }

    public struct DeviceFields {
        public var id: UInt64
        public var mappedBlocks: UInt64
        public var transaction: UInt64
        public var creationTime: UInt32
        public var snapTime: UInt32
    }

    public func beginSuperblock(_ s: SuperblockFields) {
        out.append("<superblock uuid=\"\" time=\"")
        out.append(decimal: UInt64(s.time))
        out.append("\" transaction=\"")
        out.append(decimal: s.transaction)
        out.append("\" flags=\"")
        out.append(decimal: UInt64(s.flags))
        out.append("\" version=\"")
        out.append(decimal: UInt64(s.version))
        out.append("\" data_block_size=\"")
        out.append(decimal: UInt64(s.dataBlockSize))
        out.append("\" nr_data_blocks=\"")
        out.append(decimal: s.dataBlockCount)
        out.append("\">\n")
    }

    public func endSuperblock() {
        out.append("</superblock>\n")
    }

    public mutating func beginDevice(_ d: DeviceFields) {
        runLength = 0
        out.append("  <device dev_id=\"")
        out.append(decimal: d.id)
        out.append("\" mapped_blocks=\"")
        out.append(decimal: d.mappedBlocks)
        out.append("\" transaction=\"")
        out.append(decimal: d.transaction)
        out.append("\" creation_time=\"")
        out.append(decimal: UInt64(d.creationTime))
        out.append("\" snap_time=\"")
        out.append(decimal: UInt64(d.snapTime))
        out.append("\">\n")
    }

    /// One mapping; calls must come in ascending `virtualBlock` order within a device.
    @inline(__always)
    public mutating func mapping(virtualBlock v: UInt64, dataBlock d: UInt64, time t: UInt32) throws {
        if runLength > 0, v == runVirtual &+ runLength, d == runData &+ runLength, t == runTime {
            runLength += 1
            return
        }
        if runLength > 0 { try emitRun() }
        runVirtual = v
        runData = d
        runTime = t
        runLength = 1
    }

    public mutating func endDevice() throws {
        if runLength > 0 { try emitRun() }
        out.append("  </device>\n")
    }

    private mutating func emitRun() throws {
        if runLength == 1 {
            out.append("    <single_mapping origin_block=\"")
            out.append(decimal: runVirtual)
            out.append("\" data_block=\"")
            out.append(decimal: runData)
        } else {
            out.append("    <range_mapping origin_begin=\"")
            out.append(decimal: runVirtual)
            out.append("\" data_begin=\"")
            out.append(decimal: runData)
            out.append("\" length=\"")
            out.append(decimal: runLength)
        }
        out.append("\" time=\"")
        out.append(decimal: UInt64(runTime))
        out.append("\"/>\n")
        runLength = 0
        try out.flushIfFull()
    }
}
