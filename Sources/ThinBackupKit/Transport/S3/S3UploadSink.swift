import Delta
import Foundation

/// Uploads a stream to S3 while it is produced. A stream shorter than one part goes up as a
/// single PUT; a longer one as a multipart upload whose parts (`partSize`, at least 5 MiB) are
/// sent as soon as they fill, one in flight while the next fills (memory: two parts).
///
/// Each part is held in memory until S3 acknowledged it, so a failed part is retried on its own
/// with backoff (the upload resumes part by part, never from the start). If the upload cannot
/// finish (a part fails for good, or the producer stops without `finish`), the multipart upload
/// is aborted so no partial object appears and S3 frees the parts.
final class S3UploadSink: ByteSink, @unchecked Sendable {
    static let minimumPartSize = 5 << 20

    private let client: S3Client
    private let retry: RetryPolicy
    private let partSize: Int
    private let curl: CurlEasy
    private var buffer: [UInt8] = []
    private var uploadID: String?
    private var completed: [(number: Int, etag: String)] = []
    private var inFlight: Worker<(Int, String)>?
    private var nextPart = 1
    private var finished = false
    /// How many parts were uploaded (for tests and the summary).
    private(set) var partCount = 0

    init(client: S3Client, retry: RetryPolicy, partSize: Int = 8 << 20) throws {
        guard partSize >= Self.minimumPartSize else {
            throw TransportError(.usage, "s3: the part size must be at least 5 MiB (S3's minimum)")
        }
        self.client = client
        self.retry = retry
        self.partSize = partSize
        curl = try CurlEasy()
        buffer.reserveCapacity(partSize)
    }

    deinit {
        if !finished { abortUpload() }
    }

    func write(_ bytes: UnsafeRawBufferPointer) throws {
        var rest = bytes
        while !rest.isEmpty {
            let n = min(rest.count, partSize - buffer.count)
            buffer.append(contentsOf: rest.prefix(n))
            rest = UnsafeRawBufferPointer(rebasing: rest.dropFirst(n))
            if buffer.count == partSize {
                try guarded { try sendPart(last: false) }
            }
        }
    }

    func finish() throws {
        try guarded {
            if uploadID == nil {
                let request = client.request("PUT", body: .bytes(buffer))
                _ = try client.perform(curl, request, retry: retry)
                partCount = 1
            } else {
                if !buffer.isEmpty { try sendPart(last: true) }
                try waitInFlight()
                try complete()
            }
            finished = true
        }
    }

    /// Runs `body`; on failure aborts the multipart upload before rethrowing.
    private func guarded(_ body: () throws -> Void) throws {
        do { try body() } catch {
            if let w = inFlight { _ = try? w.wait(); inFlight = nil }
            abortUpload()
            finished = true
            throw error
        }
    }

    private func sendPart(last: Bool) throws {
        if uploadID == nil { try initiate() }
        try waitInFlight()
        let data = buffer
        buffer.removeAll(keepingCapacity: true)
        let number = nextPart
        nextPart += 1
        let client = self.client, retry = self.retry
        inFlight = Worker(name: "s3-part") {
            let curl = try CurlEasy()
            let request = client.request("PUT", query: [("partNumber", "\(number)"), ("uploadId", self.uploadID!)],
                                         body: .bytes(data))
            let response = try client.perform(curl, request, retry: retry)
            guard let etag = response.header("etag") else {
                throw TransportError(.protocolViolation, "s3: part \(number) of \(client.displayName) got no ETag")
            }
            return (number, etag)
        }
    }

    private func waitInFlight() throws {
        guard let w = inFlight else { return }
        inFlight = nil
        let (number, etag) = try w.wait()
        completed.append((number, etag))
        partCount += 1
    }

    private func initiate() throws {
        let response = try client.perform(curl, client.request("POST", query: [("uploads", "")]), retry: retry)
        guard let id = xmlValue(response.bodyText, "UploadId"), !id.isEmpty else {
            throw TransportError(.protocolViolation, "s3: CreateMultipartUpload for \(client.displayName) returned no UploadId")
        }
        uploadID = id
    }

    private func complete() throws {
        var xml = "<CompleteMultipartUpload>"
        for p in completed.sorted(by: { $0.number < $1.number }) {
            let etag = p.etag.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "\"", with: "&quot;")
            xml += "<Part><PartNumber>\(p.number)</PartNumber><ETag>\(etag)</ETag></Part>"
        }
        xml += "</CompleteMultipartUpload>"
        var request = client.request("POST", query: [("uploadId", uploadID!)], body: .bytes(Array(xml.utf8)))
        request.headers.append(("Content-Type", "application/xml"))
        _ = try client.perform(curl, request, retry: retry)
    }

    private func abortUpload() {
        guard let id = uploadID else { return }
        uploadID = nil
        _ = try? curl.perform(client.request("DELETE", query: [("uploadId", id)]))
    }
}

/// Opens an S3 object for reading: a signed GET that resumes with Range requests.
func s3Source(_ client: S3Client, retry: RetryPolicy, startOffset: UInt64) -> HTTPGetSource {
    HTTPGetSource(request: client.request("GET"), retry: retry, startOffset: startOffset)
}
