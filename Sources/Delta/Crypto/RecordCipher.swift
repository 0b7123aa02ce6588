/// How an encrypted stream is sealed: which key (by id and derivation) and the nonce salt of this
/// run of the sender (a resumed stream gets a new one, so no nonce is ever used twice).
public struct StreamEncryption: Equatable, Sendable, Codable {
    public var keyID: Digest128
    public var derivation: KeyDerivation
    public var nonceSalt: Digest128

    public init(keyID: Digest128, derivation: KeyDerivation, nonceSalt: Digest128) {
        self.keyID = keyID
        self.derivation = derivation
        self.nonceSalt = nonceSalt
    }

    public init(key: StreamKey, nonceSalt: Digest128) {
        keyID = key.id
        derivation = key.derivation
        self.nonceSalt = nonceSalt
    }
}

/// Seals and opens the record bodies of one encrypted stream (docs/STREAM.md, "Encryption"):
/// XChaCha20-Poly1305 under the stream's subkey, nonce = nonce salt ‖ sequence, associated data =
/// BLAKE2b-256 of the header (resume fields and nonce salt zeroed) ‖ the record's 16 head bytes.
struct RecordCipher: Sendable {
    private let subkey: [UInt8]
    private let headerHash: [UInt8]
    private var nonceSalt: [UInt8]

    init(key: StreamKey, header: StreamHeader) {
        subkey = key.streamSubkey(header.streamID)
        headerHash = Sodium.blake2b(header.canonicalBody(), length: 32)
        nonceSalt = (header.encryption?.nonceSalt ?? .zero).bytes
    }

    private func nonce(_ seq: UInt64) -> [UInt8] {
        nonceSalt + withUnsafeBytes(of: seq.littleEndian) { Array($0) }
    }

    /// Appends the sealed `body` to `out`. `head`: the record's 16 head bytes (type … sequence).
    func seal(_ body: UnsafeRawBufferPointer, head: [UInt8], sequence: UInt64, appendingTo out: inout [UInt8]) {
        Sodium.seal(body, ad: headerHash + head, nonce: nonce(sequence), key: subkey, appendingTo: &out)
    }

    /// The body a sealed record holds; nil when it does not authenticate. `head`: its 16 head bytes.
    func open(_ sealed: UnsafeRawBufferPointer, head: [UInt8], sequence: UInt64) -> [UInt8]? {
        Sodium.open(sealed, ad: headerHash + head, nonce: nonce(sequence), key: subkey)
    }

    /// Ciphertext bytes a body of `n` bytes becomes.
    static func sealedSize(_ n: Int) -> Int { n + Sodium.tagBytes }
}
