import Delta
import Foundation
import ReceiverRequest

/// Sends a stream to a `thin-backup serve` receiver (`tb://HOST:PORT`, `tbs://` over TLS).
///
/// Protocol: see `ReceiverWire` (the names both sides use).
///
/// Resume: the stream id is a hash of the stream's first 64 KiB (which hold its header, naming
/// source, target and base). Before uploading, the sink asks for the status; if the receiver holds
/// an interrupted receive of the same stream, the bytes before its resume point are skipped. When
/// the connection breaks mid-stream, the sink asks again and resends from the receiver's resume
/// point, out of a window of the last `windowLimit` bytes it kept; a resume point older than
/// the window fails with a message saying to run the same send again (it then resumes there).
final class ReceiverSink: ByteSink, @unchecked Sendable {
    static let idPrefixLength = 64 << 10
    private let baseURL: String
    private let device: UInt64
    private let token: String
    private let options: TransportOptions
    private let curl: CurlEasy
    private let windowLimit: Int

    private var prefix: [UInt8] = []
    private var streamID: String?
    private var written: UInt64 = 0  // stream bytes given to this sink
    private var window = ByteWindow()  // the last bytes written, for in-process resume
    private var put: HTTPPutSink?
    private var putOffset: UInt64 = 0  // stream offset of the next byte the current PUT gets
    /// How many times the upload was resumed (within this process or from an earlier run).
    private(set) var resumes = 0
    /// The receiver's final answer.
    private(set) var summary: String?

    init(host: String, port: Int, tls: Bool, device: UInt64, options: TransportOptions, windowLimit: Int = 32 << 20) throws {
        let h = host.contains(":") ? "[\(host)]" : host
        baseURL = "\(tls ? "https" : "http")://\(h):\(port)\(ReceiverWire.path(device: device))"
        self.device = device
        token = try options.token()
        self.options = options
        curl = try CurlEasy()
        self.windowLimit = windowLimit
    }

    func write(_ bytes: UnsafeRawBufferPointer) throws {
        guard !bytes.isEmpty else { return }
        if streamID == nil {
            prefix.append(contentsOf: bytes)
            written += UInt64(bytes.count)
            if prefix.count >= Self.idPrefixLength { try start() }
            return
        }
        window.append(bytes, limit: windowLimit)
        written += UInt64(bytes.count)
        try send(bytes, endingAt: written)
    }

    func finish() throws {
        if streamID == nil { try start() }
        while true {
            do {
                guard let put else { throw TransportError(.protocolViolation, "no upload in progress") }
                try put.finish()
                summary = put.response.map { serverMessage($0) }
                return
            } catch let e as TransportError where e.isRetryable {
                try recover(after: e)
            }
        }
    }

    // MARK: -

    private func request(_ method: String) -> HTTPRequest {
        var r = HTTPRequest(method: method, url: baseURL)
        r.headers.append((ReceiverWire.authorization, ReceiverWire.credentials(token)))
        r.tls = options.tls
        r.apply(options.timeouts)
        return r
    }

    /// Computes the stream id, asks where to start, and opens the first PUT.
    private func start() throws {
        let n = min(prefix.count, Self.idPrefixLength)
        streamID = String(format: "%016llx-%llx", fnv1a64(prefix[..<n]), UInt64(n))
        let bytes = prefix
        prefix = []
        bytes.withUnsafeBytes { window.append($0, limit: max(windowLimit, bytes.count)) }
        let status = try fetchStatus()
        var from: UInt64 = 0
        if status.state == "interrupted", status.streamID == streamID {
            from = status.offset
            if from > 0 { resumes += 1 }
        }
        try openPut(at: from)
    }

    /// The resume token of the device's interrupted receive, when the receiver (a pool) has one.
    func resumeToken() throws -> String? {
        let s = try fetchStatus()
        return s.state == "interrupted" ? s.resumeToken : nil
    }

    private func fetchStatus() throws -> ReceiveStatus {
        let req = request("GET")
        return try options.retry.run { _ in
            let response = try curl.perform(req)
            guard response.isSuccess else { throw httpError(req, response) }
            guard let s = try? JSONDecoder().decode(ReceiveStatus.self, from: Data(response.body)) else {
                throw TransportError(.protocolViolation, "GET \(baseURL): not a receiver's status answer")
            }
            return s
        }
    }

    /// Opens a PUT at stream offset `from` and sends what the window holds from there.
    private func openPut(at from: UInt64) throws {
        guard from >= window.start else {
            throw TransportError(.protocolViolation,
                                 "the receiver can resume this stream at byte \(from), before the \(windowLimit >> 20) MiB "
                                     + "this send kept: run the same send again to resume there")
        }
        var r = request("PUT")
        r.headers.append((ReceiverWire.offset, "\(from)"))
        r.headers.append((ReceiverWire.streamID, streamID!))
        r.headers.append(("Content-Type", "application/octet-stream"))
        let sink = HTTPPutSink(request: r, retry: .none)
        put = sink
        putOffset = from
        try window.forEach(from: from) { chunk in
            try sink.write(chunk)
            putOffset += UInt64(chunk.count)
        }
    }

    /// Sends `bytes` (whose last byte is at stream offset `end - 1`), skipping what the
    /// receiver already has; recovers from a broken connection.
    private func send(_ bytes: UnsafeRawBufferPointer, endingAt end: UInt64) throws {
        while true {
            let begin = end - UInt64(bytes.count)
            guard putOffset < end else { return }  // all of it is before the resume point
            let skip = Int(putOffset > begin ? putOffset - begin : 0)
            do {
                try put!.write(UnsafeRawBufferPointer(rebasing: bytes.dropFirst(skip)))
                putOffset = end
                return
            } catch let e as TransportError where e.isRetryable {
                try recover(after: e)
                // openPut resent the window up to `written`, which includes `bytes`.
                return
            }
        }
    }

    /// After a broken connection: wait for the receiver to notice, ask its resume point, reopen.
    private func recover(after error: TransportError) throws {
        put = nil
        var attempt = 1
        while true {
            guard attempt < options.retry.attempts else { throw error }
            sleepSeconds(options.retry.delay(beforeAttempt: attempt))
            attempt += 1
            let status: ReceiveStatus
            do { status = try fetchStatus() } catch let e as TransportError where e.isRetryable { continue }
            if status.state == "receiving" { continue }  // the receiver has not yet seen the cut
            guard status.state == "interrupted", status.streamID == streamID else {
                let again = status.resumeToken != nil ? "; run the same send again to resume from its checkpoint" : ""
                throw TransportError(.protocolViolation, "\(error.message); the receiver then reported '\(status.state)'"
                                         + (status.message.map { ": \($0)" } ?? "") + again)
            }
            resumes += 1
            do {
                try openPut(at: status.offset)
                return
            } catch let e as TransportError where e.isRetryable {
                put = nil
                continue
            }
        }
    }
}

/// The last bytes of a stream, as chunks with their stream offsets.
struct ByteWindow {
    private var chunks: [[UInt8]] = []
    private var size = 0
    /// Stream offset of the first byte held.
    private(set) var start: UInt64 = 0
    private var end: UInt64 = 0

    mutating func append(_ bytes: UnsafeRawBufferPointer, limit: Int) {
        chunks.append(Array(bytes))
        size += bytes.count
        end += UInt64(bytes.count)
        while size - (chunks.first?.count ?? 0) >= limit, chunks.count > 1 {
            let c = chunks.removeFirst()
            size -= c.count
            start += UInt64(c.count)
        }
    }

    func forEach(from offset: UInt64, _ body: (UnsafeRawBufferPointer) throws -> Void) throws {
        var at = start
        for c in chunks {
            let cEnd = at + UInt64(c.count)
            if cEnd > offset {
                let skip = Int(offset > at ? offset - at : 0)
                try c.withUnsafeBytes { try body(UnsafeRawBufferPointer(rebasing: $0.dropFirst(skip))) }
            }
            at = cEnd
        }
    }
}

/// FNV-1a, 64 bit: identifies a stream by its first bytes (not a security measure: the token is).
func fnv1a64<C: Collection>(_ bytes: C) -> UInt64 where C.Element == UInt8 {
    var h: UInt64 = 0xcbf2_9ce4_8422_2325
    for b in bytes {
        h ^= UInt64(b)
        h = h &* 0x100_0000_01b3
    }
    return h
}
