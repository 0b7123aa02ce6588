import Foundation

/// How a stream key came to be: a random key kept in a file, or Argon2id over a passphrase
/// with the salt and cost stored beside the data (docs/STREAM.md, "Encryption").
public enum KeyDerivation: Equatable, Hashable, Sendable, Codable {
    case keyFile
    case argon2id(salt: [UInt8], opsLimit: UInt64, memLimit: UInt64)

    /// The most memory a stream or repository may ask a reader to spend on Argon2id (4 GiB).
    public static let maxMemLimit: UInt64 = 4 << 30
    /// The most passes it may ask for.
    public static let maxOpsLimit: UInt64 = 64
}

/// Why a key could not be had.
public struct KeyError: Error, Equatable, Sendable, CustomStringConvertible {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// A 256-bit master key and its public id (fingerprint). Streams are not sealed with it
/// directly: each stream uses a subkey derived from it and the stream id.
public struct StreamKey: Sendable, Equatable {
    public let material: [UInt8]
    public let derivation: KeyDerivation
    /// Public fingerprint: keyed BLAKE2b of a fixed label; says which key, reveals nothing of it.
    public let id: Digest128

    public init(material: [UInt8], derivation: KeyDerivation) {
        precondition(material.count == Sodium.keyBytes)
        self.material = material
        self.derivation = derivation
        id = Digest128(bytes: Sodium.blake2b(Array("thin-backup key id v1".utf8), key: material, length: 16))
    }

    /// A new random key (for `key create`).
    public static func generate() -> StreamKey {
        StreamKey(material: Sodium.randomBytes(Sodium.keyBytes), derivation: .keyFile)
    }

    /// Argon2id over `passphrase`. Refuses an empty passphrase and a cost beyond the limits.
    public static func derive(passphrase: [UInt8], salt: [UInt8], opsLimit: UInt64 = Sodium.opsLimitModerate,
                              memLimit: UInt64 = Sodium.memLimitModerate) throws(KeyError) -> StreamKey {
        guard !passphrase.isEmpty else { throw KeyError("the passphrase is empty") }
        guard salt.count == Sodium.saltBytes else { throw KeyError("the passphrase salt is not \(Sodium.saltBytes) bytes") }
        guard opsLimit <= KeyDerivation.maxOpsLimit, memLimit <= KeyDerivation.maxMemLimit else {
            throw KeyError("the passphrase cost (\(opsLimit) passes, \(memLimit >> 20) MiB) is beyond the limit this build accepts")
        }
        guard let k = Sodium.argon2id(passphrase, salt: salt, opsLimit: opsLimit, memLimit: memLimit, length: Sodium.keyBytes) else {
            throw KeyError("Argon2id refused the cost (\(opsLimit) passes, \(memLimit >> 20) MiB) or could not get the memory")
        }
        return StreamKey(material: k, derivation: .argon2id(salt: salt, opsLimit: opsLimit, memLimit: memLimit))
    }

    /// The subkey that seals the records of stream `streamID`: keyed BLAKE2b-256 (a PRF) of a label and the id.
    func streamSubkey(_ streamID: Digest128) -> [UInt8] {
        Sodium.blake2b(Array("thin-backup stream v2".utf8) + streamID.bytes, key: material, length: Sodium.keyBytes)
    }

    // MARK: Key files

    static let filePrefix = "thin-backup-key-v1"

    /// The key file's text: `thin-backup-key-v1 <64 hex digits> <8 hex digits of check>`.
    public var fileText: String {
        precondition(derivation == .keyFile)
        return "\(Self.filePrefix) \(hex(material)) \(hex(Self.check(material)))\n"
    }

    /// Parses a key file's text; a damaged or foreign file is refused with what is wrong.
    public init(fileText: String) throws(KeyError) {
        let parts = fileText.split(whereSeparator: { $0 == " " || $0 == "\n" || $0 == "\t" || $0 == "\r" }).map(String.init)
        guard parts.count == 3, parts[0] == Self.filePrefix else {
            throw KeyError("not a thin-backup key file (expected one line \"\(Self.filePrefix) KEY CHECK\")")
        }
        guard let m = unhex(parts[1]), m.count == Sodium.keyBytes, let c = unhex(parts[2]), c.count == 4 else {
            throw KeyError("the key is not \(Sodium.keyBytes * 2) hex digits followed by an 8-digit check")
        }
        guard Sodium.equal(c, Self.check(m)) else { throw KeyError("the key file is damaged (its check does not match)") }
        self.init(material: m, derivation: .keyFile)
    }

    private static func check(_ m: [UInt8]) -> [UInt8] {
        Array(Sodium.blake2b(Array("thin-backup key check".utf8) + m, length: 16).prefix(4))
    }
}

/// What a reader decrypts with: one key, or a passphrase (keys derived per salt and cost, kept for reuse).
/// Safe to share between threads.
public final class StreamKeyring: @unchecked Sendable {
    private enum Source { case key(StreamKey), passphrase([UInt8]) }
    private let source: Source
    private let lock = NSLock()
    private var derived: [KeyDerivation: StreamKey] = [:]

    public init(key: StreamKey) { source = .key(key) }

    public init(passphrase: [UInt8]) throws(KeyError) {
        guard !passphrase.isEmpty else { throw KeyError("the passphrase is empty") }
        source = .passphrase(passphrase)
    }

    /// For a writer: the key itself, or the passphrase's key for a new salt at the default cost.
    public func keyForWriting(salt: [UInt8]) throws(KeyError) -> StreamKey {
        switch source {
        case .key(let k): return k
        case .passphrase: return try key(for: .argon2id(salt: salt, opsLimit: Sodium.opsLimitModerate, memLimit: Sodium.memLimitModerate))
        }
    }

    /// The key a stream or repository names by its derivation; nil when this keyring cannot make one
    /// (a key file was given and the data was sealed with a passphrase, or the other way round).
    public func key(for derivation: KeyDerivation) throws(KeyError) -> StreamKey {
        switch (source, derivation) {
        case (.key(let k), .keyFile):
            return k
        case (.key, .argon2id):
            throw KeyError("the data was encrypted with a passphrase, not a key file: give --passphrase-file or THIN_BACKUP_PASSPHRASE")
        case (.passphrase, .keyFile):
            throw KeyError("the data was encrypted with a key file, not a passphrase: give --encrypt-key FILE")
        case let (.passphrase(p), .argon2id(salt, ops, mem)):
            lock.lock()
            defer { lock.unlock() }
            if let k = derived[derivation] { return k }
            let k = try StreamKey.derive(passphrase: p, salt: salt, opsLimit: ops, memLimit: mem)
            derived[derivation] = k
            return k
        }
    }
}

extension Digest128 {
    /// The 16 bytes, high half first, each half big-endian (as printed).
    public var bytes: [UInt8] {
        withUnsafeBytes(of: high.bigEndian) { Array($0) } + withUnsafeBytes(of: low.bigEndian) { Array($0) }
    }

    public init(bytes b: [UInt8]) {
        precondition(b.count == 16)
        high = b[0..<8].reduce(0) { $0 << 8 | UInt64($1) }
        low = b[8..<16].reduce(0) { $0 << 8 | UInt64($1) }
    }
}

func hex(_ b: [UInt8]) -> String {
    let d = Array("0123456789abcdef".utf8)
    var out = [UInt8]()
    out.reserveCapacity(b.count * 2)
    for x in b { out.append(d[Int(x >> 4)]); out.append(d[Int(x & 15)]) }
    return String(decoding: out, as: UTF8.self)
}

func unhex(_ s: String) -> [UInt8]? {
    let u = Array(s.utf8)
    guard u.count % 2 == 0 else { return nil }
    func v(_ c: UInt8) -> UInt8? {
        switch c {
        case 48...57: return c - 48
        case 97...102: return c - 87
        case 65...70: return c - 55
        default: return nil
        }
    }
    var out = [UInt8]()
    var i = 0
    while i < u.count {
        guard let h = v(u[i]), let l = v(u[i + 1]) else { return nil }
        out.append(h << 4 | l)
        i += 2
    }
    return out
}
