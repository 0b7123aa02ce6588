// The only Swift file that imports libcurl (loaded on first use by CCurlShim): one easy handle, typed options through CCurlShim,
// callbacks bridged to Swift closures, every CURLcode turned into a TransportError at once.
internal import CCurl
internal import CCurlShim
import Foundation

/// Owns one libcurl easy handle and performs `HTTPRequest`s on it, one at a time (the handle
/// keeps its connection between requests). Not thread-safe: one thread uses it at a time.
final class CurlEasy {
    private let handle: UnsafeMutableRawPointer
    private static let globalInit: Bool = {
        csys_curl_global_init(Int(CURL_GLOBAL_DEFAULT)) == CURLE_OK
    }()

    init() throws {
        guard CurlEasy.globalInit, let h = csys_curl_easy_init() else {
            throw TransportError(.local, "libcurl: " + (csys_curl_load_error().map { String(cString: $0) } ?? "cannot initialise"))
        }
        handle = h
    }

    deinit { csys_curl_easy_cleanup(handle) }

    /// What the C callbacks reach through their userdata pointer.
    private final class Context {
        var upload: HTTPRequest.Body = .none
        var uploadOffset = 0
        var onBody: ((UnsafeRawBufferPointer) throws -> Void)?
        var headersReady: ((Int, [String: String]) throws -> Void)?
        var headers: [String: String] = [:]
        var errorBody: [UInt8] = []
        var statusChecked = false
        var bodyAccepted = false
        var callbackError: (any Error)?
        var handle: UnsafeMutableRawPointer?
        var bytesUploaded: UInt64 = 0
        var bytesDownloaded: UInt64 = 0
    }

    /// Counters of the last `perform`, for resume decisions by callers.
    private(set) var lastBytesUploaded: UInt64 = 0
    private(set) var lastBytesDownloaded: UInt64 = 0

    /// Performs `request`. A 2xx body goes to `onBody` when given (otherwise it is collected in
    /// the response); any other status's body is collected (up to 1 MiB) for the error message.
    /// Throws `TransportError` for transport failures; HTTP errors are returned, not thrown.
    /// `headersReady` runs once per 2xx answer, before its first body byte, with the status and
    /// headers; throwing from it aborts the transfer with that error.
    func perform(_ request: HTTPRequest,
                 onBody: ((UnsafeRawBufferPointer) throws -> Void)? = nil,
                 headersReady: ((Int, [String: String]) throws -> Void)? = nil) throws -> HTTPResponse {
        csys_curl_easy_reset(handle)
        let ctx = Context()
        ctx.upload = request.body
        ctx.onBody = onBody
        ctx.headersReady = headersReady
        ctx.handle = handle
        let userdata = Unmanaged.passUnretained(ctx).toOpaque()
        var headerList: UnsafeMutablePointer<curl_slist>? = nil
        defer { if let l = headerList { csys_curl_slist_free_all(l) } }
        var errorBuffer = [CChar](repeating: 0, count: Int(CURL_ERROR_SIZE) + 1)

        let code: CURLcode = try errorBuffer.withUnsafeMutableBufferPointer { eb in
            try setString(CURLOPT_URL, request.url)
            try set(CURLOPT_NOSIGNAL, 1)
            try set(CURLOPT_FOLLOWLOCATION, 0)
            try set(CURLOPT_CONNECTTIMEOUT, request.connectTimeout)
            if request.stallTimeout > 0 {
                try set(CURLOPT_LOW_SPEED_LIMIT, 1)
                try set(CURLOPT_LOW_SPEED_TIME, request.stallTimeout)
            }
            try set(CURLOPT_SSL_VERIFYPEER, request.tls.verifyPeer ? 1 : 0)
            try set(CURLOPT_SSL_VERIFYHOST, request.tls.verifyPeer ? 2 : 0)
            if let ca = request.tls.caFile { try setString(CURLOPT_CAINFO, ca) }
            try check(csys_curl_setopt_ptr(handle, CURLOPT_ERRORBUFFER, eb.baseAddress), "CURLOPT_ERRORBUFFER")

            var headers = request.headers
            // Never wait for "100 Continue": some servers never send it. (Not through the header
            // list when signing: curl 7.88 would sign the removed header too.)
            if request.sigV4 == nil {
                headers.append(("Expect", ""))
            } else {
                try set(CURLOPT_EXPECT_100_TIMEOUT_MS, 0)
            }
            switch request.method {
            case "GET": try set(CURLOPT_HTTPGET, 1)
            case "HEAD": try set(CURLOPT_NOBODY, 1)
            case "PUT":
                try set(CURLOPT_UPLOAD, 1)
                switch request.body {
                case .none: try setOff(CURLOPT_INFILESIZE_LARGE, 0)
                case .bytes(let b): try setOff(CURLOPT_INFILESIZE_LARGE, Int64(b.count))
                case .stream: headers.append(("Transfer-Encoding", "chunked"))
                }
            case "POST":
                try set(CURLOPT_POST, 1)
                switch request.body {
                case .none: try setOff(CURLOPT_POSTFIELDSIZE_LARGE, 0)
                case .bytes(let b): try setOff(CURLOPT_POSTFIELDSIZE_LARGE, Int64(b.count))
                case .stream: headers.append(("Transfer-Encoding", "chunked"))
                }
            default:
                try setString(CURLOPT_CUSTOMREQUEST, request.method)
            }
            if let sig = request.sigV4 {
                try setString(CURLOPT_AWS_SIGV4, sig.provider)
                try setString(CURLOPT_USERPWD, sig.userPassword)
            }
            for (name, value) in headers {
                let line = value.isEmpty ? "\(name):" : "\(name): \(value)"
                guard let l = csys_curl_slist_append(headerList, line) else {
                    throw TransportError(.local, "libcurl: out of memory building headers")
                }
                headerList = l
            }
            try check(csys_curl_setopt_ptr(handle, CURLOPT_HTTPHEADER, headerList), "CURLOPT_HTTPHEADER")

            try check(csys_curl_setopt_io(handle, CURLOPT_READFUNCTION, Self.curlRead), "CURLOPT_READFUNCTION")
            try check(csys_curl_setopt_ptr(handle, CURLOPT_READDATA, userdata), "CURLOPT_READDATA")
            try check(csys_curl_setopt_io(handle, CURLOPT_WRITEFUNCTION, Self.curlWrite), "CURLOPT_WRITEFUNCTION")
            try check(csys_curl_setopt_ptr(handle, CURLOPT_WRITEDATA, userdata), "CURLOPT_WRITEDATA")
            try check(csys_curl_setopt_io(handle, CURLOPT_HEADERFUNCTION, Self.curlHeader), "CURLOPT_HEADERFUNCTION")
            try check(csys_curl_setopt_ptr(handle, CURLOPT_HEADERDATA, userdata), "CURLOPT_HEADERDATA")
            return csys_curl_easy_perform(handle)
        }
        lastBytesUploaded = ctx.bytesUploaded
        lastBytesDownloaded = ctx.bytesDownloaded
        var status = 0
        var s = 0
        if csys_curl_getinfo_long(handle, CURLINFO_RESPONSE_CODE, &s) == CURLE_OK { status = s }

        if code != CURLE_OK {
            if let e = ctx.callbackError {
                if let te = e as? TransportError { throw te }
                throw TransportError(.local, "\(request.method) \(redacted(request.url)): \(e)")
            }
            let buffered = String(decoding: errorBuffer.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) },
                                  as: UTF8.self)
            let detail = buffered.isEmpty ? String(cString: csys_curl_easy_strerror(code)) : buffered
            throw TransportError(Self.kind(of: code),
                                 "\(request.method) \(redacted(request.url)): \(detail) (curl error \(code.rawValue))")
        }
        let body = (onBody == nil || !(200...299).contains(status)) ? ctx.errorBody : []
        return HTTPResponse(status: status, headers: ctx.headers, body: body)
    }

    private static func kind(of code: CURLcode) -> TransportError.Kind {
        switch code {
        case CURLE_COULDNT_CONNECT, CURLE_COULDNT_RESOLVE_HOST, CURLE_COULDNT_RESOLVE_PROXY,
             CURLE_OPERATION_TIMEDOUT, CURLE_SEND_ERROR, CURLE_RECV_ERROR, CURLE_GOT_NOTHING,
             CURLE_PARTIAL_FILE, CURLE_HTTP2, CURLE_HTTP2_STREAM:
            return .connection
        case CURLE_SSL_CONNECT_ERROR, CURLE_PEER_FAILED_VERIFICATION, CURLE_SSL_CACERT_BADFILE,
             CURLE_SSL_CERTPROBLEM, CURLE_SSL_CIPHER:
            return .tls
        case CURLE_URL_MALFORMAT, CURLE_UNSUPPORTED_PROTOCOL:
            return .usage
        default:
            return .protocolViolation
        }
    }

    private func set(_ option: CURLoption, _ value: Int) throws {
        try check(csys_curl_setopt_long(handle, option, value), "option \(option.rawValue)")
    }
    private func setOff(_ option: CURLoption, _ value: Int64) throws {
        try check(csys_curl_setopt_off(handle, option, curl_off_t(value)), "option \(option.rawValue)")
    }
    private func setString(_ option: CURLoption, _ value: String) throws {
        try value.withCString { try check(csys_curl_setopt_str(handle, option, $0), "option \(option.rawValue)") }
    }
    private func check(_ code: CURLcode, _ what: String) throws {
        guard code == CURLE_OK else {
            throw TransportError(.local, "libcurl: cannot set \(what): \(String(cString: csys_curl_easy_strerror(code)))")
        }
    }

    /// The libcurl version line (for `--version`-style diagnostics and the benchmark notes).
    static var version: String { String(cString: csys_curl_version()) }

    // MARK: C callbacks (non-capturing; state reached through the userdata pointer)

    private static func context(_ p: UnsafeMutableRawPointer?) -> Context {
        Unmanaged<Context>.fromOpaque(p!).takeUnretainedValue()
    }

    private static let curlRead: csys_curl_io_cb = { buffer, size, nitems, userdata in
        let ctx = CurlEasy.context(userdata)
        let capacity = size * nitems
        guard let buffer, capacity > 0 else { return 0 }
        let out = UnsafeMutableRawBufferPointer(start: buffer, count: capacity)
        switch ctx.upload {
        case .none:
            return 0
        case .bytes(let bytes):
            let n = min(capacity, bytes.count - ctx.uploadOffset)
            if n > 0 {
                bytes.withUnsafeBytes { src in
                    out.copyMemory(from: UnsafeRawBufferPointer(rebasing: src[ctx.uploadOffset..<ctx.uploadOffset + n]))
                }
            }
            ctx.uploadOffset += n
            ctx.bytesUploaded += UInt64(n)
            return n
        case .stream(let pull):
            do {
                let n = try pull(out)
                ctx.bytesUploaded += UInt64(n)
                return n
            } catch {
                ctx.callbackError = error
                return Int(CURL_READFUNC_ABORT)
            }
        }
    }

    private static let curlWrite: csys_curl_io_cb = { buffer, size, nitems, userdata in
        let ctx = CurlEasy.context(userdata)
        let n = size * nitems
        guard let buffer else { return n }
        let bytes = UnsafeRawBufferPointer(start: buffer, count: n)
        if !ctx.statusChecked {
            var status = 0
            _ = csys_curl_getinfo_long(ctx.handle, CURLINFO_RESPONSE_CODE, &status)
            ctx.bodyAccepted = (200...299).contains(status) && ctx.onBody != nil
            ctx.statusChecked = true
            if ctx.bodyAccepted, let ready = ctx.headersReady {
                do { try ready(status, ctx.headers) } catch {
                    ctx.callbackError = error
                    return 0
                }
            }
        }
        if ctx.bodyAccepted, let onBody = ctx.onBody {
            do {
                try onBody(bytes)
                ctx.bytesDownloaded += UInt64(n)
            } catch {
                ctx.callbackError = error
                return 0  // makes curl fail with CURLE_WRITE_ERROR
            }
        } else if ctx.errorBody.count < 1 << 20 {
            ctx.errorBody.append(contentsOf: bytes.prefix(1 << 20 - ctx.errorBody.count))
        }
        return n
    }

    private static let curlHeader: csys_curl_io_cb = { buffer, size, nitems, userdata in
        let ctx = CurlEasy.context(userdata)
        let n = size * nitems
        guard let buffer else { return n }
        let line = String(decoding: UnsafeRawBufferPointer(start: buffer, count: n), as: UTF8.self)
        if line.hasPrefix("HTTP/") {
            // A new response (after 100 Continue or a redirect): forget the previous headers.
            ctx.headers = [:]
            ctx.statusChecked = false
        } else if let colon = line.firstIndex(of: ":") {
            let name = line[..<colon].lowercased()
            let value = line[line.index(after: colon)...].trimmingCharacters(in: " \t\r\n")
            ctx.headers[name] = value
        }
        return n
    }
}

/// A URL without any user:password part, for messages.
func redacted(_ url: String) -> String {
    guard let scheme = url.range(of: "://"), let at = url[scheme.upperBound...].firstIndex(of: "@") else { return url }
    let slash = url[scheme.upperBound...].firstIndex(of: "/") ?? url.endIndex
    return at < slash ? String(url[..<scheme.upperBound]) + String(url[url.index(after: at)...]) : url
}

extension StringProtocol {
    /// Trims the characters made only of scalars in `set` ("\r\n" is one Character in Swift).
    func trimmingCharacters(in set: String) -> String {
        let scalars = Set(set.unicodeScalars)
        func strip(_ c: Character) -> Bool { c.unicodeScalars.allSatisfy { scalars.contains($0) } }
        var s = Substring(self)
        while let f = s.first, strip(f) { s.removeFirst() }
        while let l = s.last, strip(l) { s.removeLast() }
        return String(s)
    }
}
