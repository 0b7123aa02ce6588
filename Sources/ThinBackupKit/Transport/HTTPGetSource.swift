import Delta
import Foundation

/// Downloads a stream with HTTP GET as a pull-style `ByteSource`: curl's write callback fills a
/// bounded pipe on a worker thread, `read` drains it.
///
/// Resume: when the connection fails (reset, cut, stalled, 5xx), the worker asks again with
/// `Range: bytes=N-` where N is the offset of the next byte not yet handed to the pipe, and
/// `If-Range` with the first answer's ETag (or Last-Modified) so a changed object is detected
/// instead of spliced. The reader therefore sees every byte exactly once and in order: the
/// resume point is the last byte received, which is always at or after the last whole frame,
/// so a stream decoder needs no help. A decoder that restarts in a new process (a resumed
/// receive) opens the source at a frame boundary with `startOffset`.
final class HTTPGetSource: ByteSource, @unchecked Sendable {
    private let template: HTTPRequest
    private let retry: RetryPolicy
    private let pipe: BoundedPipe
    private var worker: Worker<Void>?
    /// The object offset the first byte of this source comes from.
    let startOffset: UInt64
    /// How many times a broken transfer was resumed (for tests and progress).
    var resumes: Int { counters.resumes }
    private let counters = Counters()

    final class Counters: @unchecked Sendable {
        var resumes = 0
    }

    init(request: HTTPRequest, retry: RetryPolicy, startOffset: UInt64 = 0, pipeCapacity: Int = 4 << 20) {
        var r = request
        r.method = "GET"
        template = r
        self.retry = retry
        self.startOffset = startOffset
        pipe = BoundedPipe(capacity: pipeCapacity)
    }

    deinit {
        pipe.fail(TransportError(.local, "download abandoned"))
    }

    func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        start()
        return try pipe.read(into: buffer)
    }

    private func start() {
        guard worker == nil else { return }
        let pipe = self.pipe, retry = self.retry, template = self.template, counters = self.counters
        let start = startOffset
        worker = Worker(name: "http-get") {
            do {
                try Self.download(template, from: start, retry: retry, pipe: pipe, counters: counters)
                pipe.close()
            } catch {
                pipe.fail(error)
            }
        }
    }

    private static func download(_ template: HTTPRequest, from start: UInt64, retry: RetryPolicy,
                                 pipe: BoundedPipe, counters: Counters) throws {
        let curl = try CurlEasy()
        var offset = start  // next object byte to hand to the pipe
        var validator: String? = nil
        var failures = 0
        while true {
            var request = template
            if offset > 0 {
                request.headers.append(("Range", "bytes=\(offset)-"))
                if let v = validator { request.headers.append(("If-Range", v)) }
            }
            var skip: UInt64 = 0  // bytes to drop when a server ignores Range
            var progressed = false
            do {
                let response = try curl.perform(request) { bytes in
                    var b = bytes
                    if skip > 0 {
                        let n = Int(min(skip, UInt64(b.count)))
                        skip -= UInt64(n)
                        b = UnsafeRawBufferPointer(rebasing: b.dropFirst(n))
                    }
                    if !b.isEmpty {
                        try pipe.write(b)
                        offset += UInt64(b.count)
                        progressed = true
                    }
                } headersReady: { status, headers in
                    if offset > 0 {
                        if status == 200 {
                            // Range ignored (or If-Range failed): the whole object again.
                            if let v = validator, (headers["etag"] ?? headers["last-modified"]) != v {
                                throw TransportError(.protocolViolation,
                                                     "GET \(redacted(request.url)): the object changed while it was being read")
                            }
                            skip = offset
                        } else if status == 206 {
                            let range = headers["content-range"] ?? ""
                            guard range.hasPrefix("bytes \(offset)-") else {
                                throw TransportError(.protocolViolation,
                                                     "GET \(redacted(request.url)): asked for bytes from \(offset), got '\(range)'")
                            }
                        }
                    }
                    if validator == nil, (200...299).contains(status) {
                        validator = headers["etag"] ?? headers["last-modified"]
                    }
                }
                if response.status == 416 && offset > start {
                    return  // resumed exactly at the end
                }
                guard response.isSuccess else {
                    let e = httpError(request, response)
                    if e.isRetryable, failures + 1 < retry.attempts {
                        failures += 1
                        sleepSeconds(retry.delay(beforeAttempt: failures))
                        counters.resumes += 1
                        continue
                    }
                    throw e
                }
                return
            } catch let e as TransportError where e.isRetryable {
                failures = progressed ? 0 : failures + 1
                guard failures < retry.attempts else { throw e }
                sleepSeconds(retry.delay(beforeAttempt: max(failures, 1)))
                counters.resumes += 1
            }
        }
    }
}
