import Foundation
import NIOSSL

/// The TLS side of a `serve` receiver: a server context made from a PEM certificate chain
/// (leaf first, then intermediates) and its PEM private key. Every failure is one clear line
/// naming the file.
public struct ReceiverTLS: Sendable {
    let context: NIOSSLContext

    public init(certificateFile: String, keyFile: String) throws {
        let certBytes = try Self.read(certificateFile, what: "--tls-cert")
        let keyBytes = try Self.read(keyFile, what: "--tls-key")
        let chain: [NIOSSLCertificate]
        do {
            chain = try NIOSSLCertificate.fromPEMBytes(certBytes)
        } catch {
            throw TransportError(.usage, "--tls-cert \(certificateFile): not a PEM certificate (\(error))")
        }
        guard !chain.isEmpty else {
            throw TransportError(.usage, "--tls-cert \(certificateFile): no PEM certificate in the file")
        }
        let key: NIOSSLPrivateKey
        do {
            key = try NIOSSLPrivateKey(bytes: keyBytes, format: .pem)
        } catch {
            throw TransportError(.usage, "--tls-key \(keyFile): not an unencrypted PEM private key (\(error))")
        }
        let configuration = TLSConfiguration.makeServerConfiguration(
            certificateChain: chain.map { .certificate($0) }, privateKey: .privateKey(key))
        do {
            context = try NIOSSLContext(configuration: configuration)
        } catch {
            throw TransportError(.usage, "--tls-cert/--tls-key: the key \(keyFile) does not fit the certificate "
                                     + "\(certificateFile) (\(error))")
        }
    }

    private static func read(_ path: String, what: String) throws -> [UInt8] {
        guard let data = FileManager.default.contents(atPath: path) else {
            let reason = FileManager.default.fileExists(atPath: path) ? "cannot be read" : "no such file"
            throw TransportError(.usage, "\(what) \(path): \(reason)")
        }
        return Array(data)
    }
}

extension ReceiverTLS {
    /// One short line for a failed TLS handshake (BoringSSL's reason codes, no source paths), or nil
    /// when `error` is not one.
    static func handshakeFailure(_ error: any Error) -> String? {
        guard let e = error as? NIOSSLError, case .handshakeFailed(let ssl) = e else { return nil }
        let text = "\(ssl)"
        if text.contains("HTTP_REQUEST") { return "TLS handshake failed: a plain HTTP request on the TLS port (send with tbs://)" }
        let reasons = text.components(separatedBy: "OPENSSL_internal:").dropFirst()
            .map { $0.prefix { $0.isLetter || $0.isNumber || $0 == "_" } }
        return "TLS handshake failed: " + (reasons.isEmpty ? text : reasons.joined(separator: ", "))
    }
}
