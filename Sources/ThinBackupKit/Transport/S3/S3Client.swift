import Foundation

/// Where an S3 object lives and how to sign requests for it. Builds `HTTPRequest`s (signed by
/// libcurl's CURLOPT_AWS_SIGV4) with the quirks of curl 7.88 handled: an explicit
/// `x-amz-content-sha256: UNSIGNED-PAYLOAD`, query parameters in sorted order, `?uploads=`
/// rather than a bare `?uploads`.
struct S3Client: Sendable {
    let bucket: String
    let key: String
    let credentials: S3Credentials
    /// "http(s)://host[:port]" for a custom endpoint (MinIO, Ceph RGW, moto): path-style URLs.
    let endpoint: String?
    let tls: TLSOptions

    let timeouts: NetworkTimeouts

    init(bucket: String, key: String, credentials: S3Credentials, endpoint: String?, tls: TLSOptions,
         timeouts: NetworkTimeouts = NetworkTimeouts()) throws {
        self.timeouts = timeouts
        guard !bucket.isEmpty, !key.isEmpty else {
            throw TransportError(.usage, "s3: expected s3://BUCKET/KEY")
        }
        self.bucket = bucket
        self.key = key
        self.credentials = credentials
        if let e = endpoint {
            guard e.hasPrefix("http://") || e.hasPrefix("https://") else {
                throw TransportError(.usage, "s3: --endpoint must start with http:// or https:// (got '\(e)')")
            }
            self.endpoint = e.hasSuffix("/") ? String(e.dropLast()) : e
        } else {
            self.endpoint = nil
        }
        self.tls = tls
    }

    var displayName: String { "s3://\(bucket)/\(key)" }

    /// The object's URL with `query` appended in sorted (canonical) order.
    func url(query: [(String, String)] = []) -> String {
        let path = "/" + Self.encode(key, keepSlash: true)
        var base: String
        if let endpoint {
            base = "\(endpoint)/\(Self.encode(bucket, keepSlash: false))\(path)"
        } else if bucket.contains(".") {
            base = "https://s3.\(credentials.region).amazonaws.com/\(bucket)\(path)"
        } else {
            base = "https://\(bucket).s3.\(credentials.region).amazonaws.com\(path)"
        }
        if !query.isEmpty {
            var pairs: [String] = []
            for (name, value) in query {
                let n: String = Self.encode(name, keepSlash: false)
                let v: String = Self.encode(value, keepSlash: false)
                pairs.append(n + "=" + v)
            }
            pairs.sort()
            base += "?" + pairs.joined(separator: "&")
        }
        return base
    }

    func request(_ method: String, query: [(String, String)] = [], body: HTTPRequest.Body = .none) -> HTTPRequest {
        var r = HTTPRequest(method: method, url: url(query: query))
        r.headers.append(("x-amz-content-sha256", "UNSIGNED-PAYLOAD"))
        if let token = credentials.sessionToken { r.headers.append(("x-amz-security-token", token)) }
        r.sigV4 = (provider: "aws:amz:\(credentials.region):s3",
                   userPassword: "\(credentials.accessKeyID):\(credentials.secretAccessKey)")
        r.body = body
        r.tls = tls
        r.apply(timeouts)
        return r
    }

    /// Performs `request` with retries on connection errors and 5xx; non-2xx answers throw.
    /// S3 may answer 200 with an `<Error>` document (CompleteMultipartUpload): that throws too.
    func perform(_ curl: CurlEasy, _ request: HTTPRequest, retry: RetryPolicy) throws -> HTTPResponse {
        try retry.run { _ in
            let response = try curl.perform(request)
            guard response.isSuccess else { throw s3Error(request, response) }
            if response.bodyText.contains("<Error>") {
                throw TransportError(.http(status: 500), "\(request.method) \(displayName): \(serverMessage(response))")
            }
            return response
        }
    }

    func s3Error(_ request: HTTPRequest, _ response: HTTPResponse) -> TransportError {
        let text = serverMessage(response)
        let reason = httpReason[response.status].map { " " + $0 } ?? ""
        return TransportError(.http(status: response.status),
                              "\(request.method) \(displayName): HTTP \(response.status)\(reason)"
                                  + (text.isEmpty ? "" : ": \(text)"))
    }

    /// RFC 3986 percent-encoding of everything but the unreserved characters (and '/' in keys).
    static func encode(_ s: String, keepSlash: Bool) -> String {
        var out = ""
        for b in s.utf8 {
            switch b {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
                 UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "."),
                 UInt8(ascii: "_"), UInt8(ascii: "~"):
                out.unicodeScalars.append(Unicode.Scalar(b))
            case UInt8(ascii: "/") where keepSlash:
                out.append("/")
            default:
                out += String(format: "%%%02X", b)
            }
        }
        return out
    }
}
