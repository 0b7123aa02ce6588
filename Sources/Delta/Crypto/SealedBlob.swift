/// One sealed object (a repository's catalog): magic, a random 24-byte nonce, then the
/// XChaCha20-Poly1305 ciphertext under a subkey of the master key for `label`. The associated
/// data is the magic and the key id, so a blob sealed under another key or label never opens.
public enum SealedBlob {
    public static let magic: [UInt8] = Array("TBSEALD\u{1}".utf8)

    public static func isSealed(_ bytes: [UInt8]) -> Bool { bytes.starts(with: magic) }

    public static func seal(_ plain: [UInt8], key: StreamKey, label: String) -> [UInt8] {
        let nonce = Sodium.randomBytes(Sodium.nonceBytes)
        var out = magic + nonce
        plain.withUnsafeBytes { Sodium.seal($0, ad: magic + key.id.bytes, nonce: nonce, key: subkey(key, label), appendingTo: &out) }
        return out
    }

    /// The plain bytes, or nil when the blob is not sealed under this key and label (or was changed).
    public static func open(_ sealed: [UInt8], key: StreamKey, label: String) -> [UInt8]? {
        let head = magic.count + Sodium.nonceBytes
        guard isSealed(sealed), sealed.count >= head + Sodium.tagBytes else { return nil }
        let nonce = Array(sealed[magic.count..<head])
        return sealed[head...].withUnsafeBytes { Sodium.open($0, ad: magic + key.id.bytes, nonce: nonce, key: subkey(key, label)) }
    }

    private static func subkey(_ key: StreamKey, _ label: String) -> [UInt8] {
        Sodium.blake2b(Array("thin-backup sealed \(label)".utf8), key: key.material, length: Sodium.keyBytes)
    }
}
