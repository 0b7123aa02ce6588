internal import CSodium

/// The libsodium calls ThinBackup uses, and nothing else: the only file that imports CSodium.
///
/// XChaCha20-Poly1305 (IETF construction) seals records, keyed BLAKE2b derives subkeys and key ids,
/// Argon2id (crypto_pwhash) turns passphrases into keys, randombytes makes keys, salts and nonces.
public enum Sodium {
    public static let keyBytes = Int(crypto_aead_xchacha20poly1305_ietf_KEYBYTES)      // 32
    public static let nonceBytes = Int(crypto_aead_xchacha20poly1305_ietf_NPUBBYTES)   // 24
    public static let tagBytes = Int(crypto_aead_xchacha20poly1305_ietf_ABYTES)        // 16
    public static let saltBytes = Int(crypto_pwhash_SALTBYTES)                         // 16

    /// libsodium's "moderate" Argon2id cost (the default for passphrases) and its bounds.
    public static let opsLimitModerate = UInt64(crypto_pwhash_OPSLIMIT_MODERATE)
    public static let memLimitModerate = UInt64(crypto_pwhash_MEMLIMIT_MODERATE)
    public static let opsLimitMin = UInt64(crypto_pwhash_OPSLIMIT_MIN)
    public static let memLimitMin = UInt64(crypto_pwhash_MEMLIMIT_MIN)

    private static let ready: Bool = sodium_init() >= 0

    private static func initialize() {
        precondition(ready, "libsodium failed to initialize")
    }

    /// `count` bytes from the system's random source.
    public static func randomBytes(_ count: Int) -> [UInt8] {
        initialize()
        var out = [UInt8](repeating: 0, count: count)
        if count > 0 { out.withUnsafeMutableBytes { randombytes_buf($0.baseAddress!, $0.count) } }
        return out
    }

    /// Appends the ciphertext of `message` and its 16-byte tag to `out`.
    public static func seal(_ message: UnsafeRawBufferPointer, ad: [UInt8], nonce: [UInt8], key: [UInt8], appendingTo out: inout [UInt8]) {
        initialize()
        precondition(nonce.count == nonceBytes && key.count == keyBytes)
        let start = out.count
        out.append(contentsOf: repeatElement(0, count: message.count + tagBytes))
        var written: UInt64 = 0
        let rc = out.withUnsafeMutableBytes { o in
            ad.withUnsafeBytes { a in
                crypto_aead_xchacha20poly1305_ietf_encrypt(
                    o.baseAddress!.advanced(by: start).assumingMemoryBound(to: UInt8.self), &written,
                    message.baseAddress?.assumingMemoryBound(to: UInt8.self), UInt64(message.count),
                    a.baseAddress?.assumingMemoryBound(to: UInt8.self), UInt64(a.count), nil, nonce, key)
            }
        }
        precondition(rc == 0 && written == UInt64(message.count + tagBytes))
    }

    /// The message `sealed` (ciphertext and tag) holds, or nil when it does not authenticate.
    public static func open(_ sealed: UnsafeRawBufferPointer, ad: [UInt8], nonce: [UInt8], key: [UInt8]) -> [UInt8]? {
        initialize()
        precondition(nonce.count == nonceBytes && key.count == keyBytes)
        guard sealed.count >= tagBytes else { return nil }
        var out = [UInt8](repeating: 0, count: sealed.count - tagBytes)
        var got: UInt64 = 0
        let rc = out.withUnsafeMutableBytes { o in
            ad.withUnsafeBytes { a in
                crypto_aead_xchacha20poly1305_ietf_decrypt(
                    o.baseAddress?.assumingMemoryBound(to: UInt8.self), &got, nil,
                    sealed.baseAddress!.assumingMemoryBound(to: UInt8.self), UInt64(sealed.count),
                    a.baseAddress?.assumingMemoryBound(to: UInt8.self), UInt64(a.count), nonce, key)
            }
        }
        return rc == 0 ? out : nil
    }

    /// BLAKE2b (crypto_generichash) of `message`, `length` bytes (16…64), keyed when `key` is not empty.
    public static func blake2b(_ message: [UInt8], key: [UInt8] = [], length: Int) -> [UInt8] {
        initialize()
        precondition(length >= Int(crypto_generichash_BYTES_MIN) && length <= Int(crypto_generichash_BYTES_MAX))
        precondition(key.count <= Int(crypto_generichash_KEYBYTES_MAX))
        var out = [UInt8](repeating: 0, count: length)
        let rc = message.withUnsafeBytes { m in
            key.withUnsafeBytes { k in
                crypto_generichash(&out, length, m.baseAddress?.assumingMemoryBound(to: UInt8.self), UInt64(m.count),
                                   k.baseAddress?.assumingMemoryBound(to: UInt8.self), k.count)
            }
        }
        precondition(rc == 0)
        return out
    }

    /// Argon2id v1.3 (crypto_pwhash) of `passphrase`: a `length`-byte key, or nil when libsodium
    /// refuses the parameters or cannot get the memory.
    public static func argon2id(_ passphrase: [UInt8], salt: [UInt8], opsLimit: UInt64, memLimit: UInt64, length: Int) -> [UInt8]? {
        initialize()
        guard !passphrase.isEmpty, salt.count == saltBytes, opsLimit >= opsLimitMin, opsLimit <= UInt64(crypto_pwhash_OPSLIMIT_MAX),
              memLimit >= memLimitMin, memLimit <= UInt64(Int.max) else { return nil }
        var out = [UInt8](repeating: 0, count: length)
        let rc = passphrase.withUnsafeBytes { p in
            crypto_pwhash(&out, UInt64(length), p.baseAddress!.assumingMemoryBound(to: CChar.self), UInt64(p.count),
                          salt, opsLimit, Int(memLimit), crypto_pwhash_ALG_ARGON2ID13)
        }
        return rc == 0 ? out : nil
    }

    /// Compares in constant time.
    public static func equal(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        initialize()
        guard a.count == b.count else { return false }
        return sodium_memcmp(a, b, a.count) == 0
    }
}
