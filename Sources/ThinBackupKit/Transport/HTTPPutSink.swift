import Delta
import Foundation

/// Uploads a stream with one chunked HTTP PUT while it is produced: `write` fills a bounded
/// pipe that curl's read callback drains on a worker thread, so memory stays at the pipe's
/// capacity whatever the stream's size.
///
/// Retries: a connection that fails before curl took any byte is retried with backoff. A PUT
/// cut after bytes left cannot be replayed (they are gone from memory) and fails with a clear
/// error: a plain HTTP server keeps no partial upload to continue (use `tb://` or `s3://` for
/// resumable uploads). If the producer stops without `finish()` (the sink is released), the
/// transfer is aborted, so the server never stores a truncated object as complete.
final class HTTPPutSink: ByteSink, @unchecked Sendable {
    private let template: HTTPRequest
    private let retry: RetryPolicy
    private let pipe: BoundedPipe
    private var worker: Worker<HTTPResponse>?
    private let acceptStatus: (Int) -> Bool

    init(request: HTTPRequest, retry: RetryPolicy, pipeCapacity: Int = 4 << 20,
         acceptStatus: @escaping (Int) -> Bool = { (200...299).contains($0) }) {
        var r = request
        r.method = "PUT"
        template = r
        self.retry = retry
        pipe = BoundedPipe(capacity: pipeCapacity)
        self.acceptStatus = acceptStatus
    }

    deinit {
        pipe.fail(TransportError(.local, "upload abandoned before the end of the stream"))
    }

    private func start() {
        guard worker == nil else { return }
        let pipe = self.pipe, retry = self.retry, accept = acceptStatus
        var request = template
        request.body = .stream { try pipe.read(into: $0) }
        worker = Worker(name: "http-put") {
            do {
                let curl = try CurlEasy()
                var attempt = 1
                while true {
                    do {
                        let response = try curl.perform(request)
                        guard accept(response.status) else { throw httpError(request, response) }
                        pipe.fail(TransportError(.protocolViolation,
                                                 "PUT \(redacted(request.url)): the server answered before the end of the stream"))
                        return response
                    } catch let e as TransportError where e.isRetryable && pipe.totalRead == 0 && attempt < retry.attempts {
                        sleepSeconds(retry.delay(beforeAttempt: attempt))
                        attempt += 1
                    }
                }
            } catch {
                pipe.fail(error)
                throw error
            }
        }
    }

    func write(_ bytes: UnsafeRawBufferPointer) throws {
        start()
        do {
            try pipe.write(bytes)
        } catch {
            // The transfer ended: report why it ended rather than "pipe closed".
            if let worker, worker.isDone { _ = try worker.wait() }
            throw error
        }
    }

    /// The final response (after `finish`), e.g. for a receiver's JSON answer.
    private(set) var response: HTTPResponse?

    func finish() throws {
        start()
        pipe.close()
        response = try worker!.wait()
    }
}

/// The one-line error for an HTTP answer outside 2xx: method, URL, status and the server's text.
func httpError(_ request: HTTPRequest, _ response: HTTPResponse) -> TransportError {
    let text = serverMessage(response)
    let reason = httpReason[response.status] ?? ""
    return TransportError(.http(status: response.status),
                          "\(request.method) \(redacted(request.url)): HTTP \(response.status)\(reason.isEmpty ? "" : " " + reason)"
                              + (text.isEmpty ? "" : ": \(text)"))
}

let httpReason: [Int: String] = [
    400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed",
    409: "Conflict", 411: "Length Required", 412: "Precondition Failed", 413: "Content Too Large",
    416: "Range Not Satisfiable", 422: "Unprocessable Content", 429: "Too Many Requests",
    500: "Internal Server Error", 501: "Not Implemented", 502: "Bad Gateway", 503: "Service Unavailable",
    504: "Gateway Timeout",
]

/// The most useful line of an error body: an S3 `<Code>`/`<Message>`, a JSON "message", or the text.
func serverMessage(_ response: HTTPResponse) -> String {
    let body = response.bodyText
    if let code = xmlValue(body, "Code") {
        return xmlValue(body, "Message").map { "\(code): \($0)" } ?? code
    }
    if let data = body.data(using: .utf8),
       let obj = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
       let m = obj["message"] as? String {
        return m
    }
    let plain = body.replacingOccurrences(of: "<[^>]+>", with: " ", options: .regularExpression)
        .split(whereSeparator: { $0 == "\n" || $0 == "\r" }).map { $0.trimmingCharacters(in: " \t") }
        .filter { !$0.isEmpty }.joined(separator: " ")
    return String(plain.prefix(200))
}

/// The text of the first `<name>…</name>` element (enough for S3's small XML answers).
func xmlValue(_ xml: String, _ name: String) -> String? {
    guard let open = xml.range(of: "<\(name)>"),
          let close = xml.range(of: "</\(name)>", range: open.upperBound..<xml.endIndex) else { return nil }
    return xmlUnescape(String(xml[open.upperBound..<close.lowerBound]))
}


func xmlUnescape(_ s: String) -> String {
    s.replacingOccurrences(of: "&quot;", with: "\"").replacingOccurrences(of: "&apos;", with: "'")
        .replacingOccurrences(of: "&lt;", with: "<").replacingOccurrences(of: "&gt;", with: ">")
        .replacingOccurrences(of: "&#34;", with: "\"").replacingOccurrences(of: "&amp;", with: "&")
}
