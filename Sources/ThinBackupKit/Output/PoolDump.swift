import PoolCore

/// `thin-backup dump`: a pool's metadata as thin_dump 0.9.0's XML.
public enum PoolDump {
    public struct Options: Sendable {
        /// The live superblock, or the held metadata snapshot (`-m [BLOCK]`).
        public var mode = MetadataSnapMode.live
        /// Only these devices (all when empty), like repeated `--dev-id`.
        public var deviceIDs: [UInt64] = []
        /// Devices without their mappings.
        public var skipMappings = false
    }

    /// Writes the dump to `out`. On a failure the unwritten rest of the output is dropped
    /// (no closing tag is ever written) and the error thrown.
    public static func dump(_ reader: MetadataReader, options: Options, to out: TextOutput) throws {
        do {
            try write(reader, options: options, to: out)
            try out.flush()
        } catch {
            out.discard()
            throw error
        }
    }

    private static func write(_ reader: MetadataReader, options: Options, to out: TextOutput) throws {
        let view = try options.mode.view(reader)
        let sb = view.superblock
        var devices = try view.devices()
        if !options.deviceIDs.isEmpty {
            let wanted = Set(options.deviceIDs)
            devices = devices.filter { wanted.contains($0.id) }
        }
        var xml = ThinDumpXMLWriter(out: out)
        xml.beginSuperblock(.init(time: sb.time, transaction: sb.transactionID, flags: sb.flags, version: sb.version,
                                  dataBlockSize: sb.dataBlockSize, dataBlockCount: view.dataBlockCount))
        for (id, d) in devices {
            xml.beginDevice(.init(id: id, mappedBlocks: d.mappedBlocks, transaction: d.transactionID,
                                  creationTime: d.creationTime, snapTime: d.snapshottedTime))
            if !options.skipMappings {
                try view.mappingTree(of: id).forEachLeaf { leaf in
                    try leaf.forEachEntry64 { key, value in
                        let bt = BlockTime(raw: value)
                        try xml.mapping(virtualBlock: key, dataBlock: bt.dataBlock, time: bt.time)
                    }
                }
            }
            try xml.endDevice()
            try out.flushIfFull()
        }
        xml.endSuperblock()
    }
}
