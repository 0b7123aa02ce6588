/// One input of a `StreamComposer`: a stream read record by record, holding only the current
/// body record (and, when a part of it is needed, its decompressed bytes).
final class RecordCursor {
    enum Kind: Equatable { case data, zero, discard }
    struct Span {
        var kind: Kind
        /// Blocks the record names, as in the stream.
        var begin: UInt64
        var end: UInt64
    }

    private let source: ByteSource
    private var decoder: StreamDecoder
    private var buffer = [UInt8](repeating: 0, count: 1 << 20)
    private var sourceDone = false
    /// The current body record; nil once the trailer was read.
    private(set) var current: Span?
    private(set) var frame: [UInt8] = []
    private var raw: UnsafeMutableRawBufferPointer?
    private(set) var header: StreamHeader?
    var trailer: StreamTrailer? { decoder.trailer }

    init(_ source: ByteSource, keyring: StreamKeyring? = nil) {
        self.source = source
        decoder = StreamDecoder(keyring: keyring)
    }

    deinit { raw?.deallocate() }

    private func next() throws -> StreamRecord? {
        while true {
            if let r = try decoder.next() { return r }
            if sourceDone { try decoder.finish(); return nil }
            let n = try buffer.withUnsafeMutableBytes { try source.read(into: $0) }
            if n == 0 { sourceDone = true; continue }
            buffer.withUnsafeBytes { decoder.feed(UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
        }
    }

    /// Reads the header and the first body record.
    func readHeader() throws -> StreamHeader {
        guard case .header(let h)? = try next() else { throw StreamError.badRecord(sequence: 0, reason: "no header") }
        header = h
        try advance()
        return h
    }

    /// Moves to the next body record (or to the end).
    func advance() throws {
        raw?.deallocate()
        raw = nil
        frame = []
        switch try next() {
        case let .data(first, count, f)?:
            current = Span(kind: .data, begin: first, end: first + UInt64(count))
            frame = f
        case let .zero(first, count)?:
            current = Span(kind: .zero, begin: first, end: first + count)
        case let .discard(first, count)?:
            current = Span(kind: .discard, begin: first, end: first + count)
        case .trailer?, nil:
            current = nil
        case .header?, .sealed?:
            throw StreamError.badRecord(sequence: decoder.progress.nextSequence &- 1, reason: "a second header")
        }
    }

    /// Drops records that end at or before block `p`.
    func skip(below p: UInt64) throws {
        while let s = current, s.end <= p { try advance() }
    }

    /// The current data record's bytes (decompressed once).
    func decompressed(_ z: ZstdDecompressor, blockSize: Int) throws -> UnsafeMutableRawBufferPointer {
        if let raw { return raw }
        let s = current!
        let n = Int(s.end - s.begin) * blockSize
        let out = UnsafeMutableRawBufferPointer.allocate(byteCount: n, alignment: 4096)
        let got: Int
        do {
            got = try frame.withUnsafeBytes { try z.decompress($0, into: out) }
        } catch {
            out.deallocate()
            throw StreamError.payload(sequence: decoder.progress.nextSequence &- 1, reason: "does not decompress: \(error)")
        }
        guard got == n else {
            out.deallocate()
            throw StreamError.payload(sequence: decoder.progress.nextSequence &- 1, reason: "decompressed to \(got) bytes, expected \(n)")
        }
        raw = out
        return out
    }

    /// Reads to the end of the stream (the decoder checks the trailer and that nothing follows it).
    func finish() throws {
        while current != nil { try advance() }
        while try next() != nil {}
    }
}
