import Delta
import Testing

/// The libsodium calls against published test vectors: a wrong binding (argument order, lengths,
/// algorithm constant) gives other bytes.
@Suite struct SodiumKnownAnswerTests {
    static func bytes(_ hex: String) -> [UInt8] {
        var out: [UInt8] = []
        var it = hex.makeIterator()
        while let a = it.next(), let b = it.next() { out.append(UInt8(String([a, b]), radix: 16)!) }
        return out
    }

    /// draft-irtf-cfrg-xchacha-03, appendix A.3.1 (AEAD_XChaCha20_Poly1305).
    @Test func xchacha20Poly1305DraftVector() throws {
        let key = Self.bytes("808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f")
        let nonce = Self.bytes("404142434445464748494a4b4c4d4e4f5051525354555657")
        let ad = Self.bytes("50515253c0c1c2c3c4c5c6c7")
        let message = Array("Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the future, sunscreen would be it.".utf8)
        let expected = Self.bytes("bd6d179d3e83d43b9576579493c0e939572a1700252bfaccbed2902c21396cbb"
            + "731c7f1b0b4aa6440bf3a82f4eda7e39ae64c6708c54c216cb96b72e1213b452"
            + "2f8c9ba40db5d945b11b69b982c1bb9e3f3fac2bc369488f76b2383565d3fff9"
            + "21f9664c97637da9768812f615c68b13b52e" + "c0875924c1c7987947deafd8780acf49")
        var sealed: [UInt8] = []
        message.withUnsafeBytes { Sodium.seal($0, ad: ad, nonce: nonce, key: key, appendingTo: &sealed) }
        #expect(sealed == expected)
        #expect(expected.withUnsafeBytes { Sodium.open($0, ad: ad, nonce: nonce, key: key) } == message)
        // Every flipped byte, and other associated data, fail to open.
        for i in stride(from: 0, to: expected.count, by: 7) {
            var bad = expected
            bad[i] ^= 0x01
            #expect(bad.withUnsafeBytes { Sodium.open($0, ad: ad, nonce: nonce, key: key) } == nil, "byte \(i)")
        }
        #expect(expected.withUnsafeBytes { Sodium.open($0, ad: ad + [0], nonce: nonce, key: key) } == nil)
    }

    /// RFC 7693 appendix A (BLAKE2b-512 of "abc") and the BLAKE2 reference KAT's first keyed entry.
    @Test func blake2bVectors() {
        #expect(Sodium.blake2b(Array("abc".utf8), length: 64) == Self.bytes(
            "ba80a53f981c4d0d6a2797b69f12f6e94c212f14685ac4b74b12bb6fdbffa2d1"
            + "7d87c5392aab792dc252d5de4533cc9518d38aa8dbf1925ab92386edd4009923"))
        #expect(Sodium.blake2b([], key: (0..<64).map { UInt8($0) }, length: 64) == Self.bytes(
            "10ebb67700b1868efb4417987acf4690ae9d972fb7a590c2f02871799aaa4786"
            + "b5e996e8f0f4eb981fc214b005f42d2ff4233499391653df7aefcbc13fc51568"))
    }

    /// Argon2id v1.3, as the reference `argon2` tool computes it: `echo -n 123 | argon2 ABCDEFGHIJKLMNOP -id -v 13 -k 1024 -t 5`.
    @Test func argon2idVector() {
        let got = Sodium.argon2id(Array("123".utf8), salt: Array("ABCDEFGHIJKLMNOP".utf8), opsLimit: 5, memLimit: 1 << 20, length: 32)
        #expect(got == Self.bytes("3c5d010180ba0cf5b6b858cba23b318e42d33088983c404598599c3b029ecac6"))
        #expect(Sodium.argon2id([], salt: Array("ABCDEFGHIJKLMNOP".utf8), opsLimit: 5, memLimit: 1 << 20, length: 32) == nil)
    }

    @Test func randomBytesDiffer() {
        let a = Sodium.randomBytes(32), b = Sodium.randomBytes(32)
        #expect(a.count == 32 && a != b)
    }

    @Test func moderateCostIsTheDefault() {
        // libsodium's documented "moderate" level: 3 passes, 256 MiB.
        #expect(Sodium.opsLimitModerate == 3 && Sodium.memLimitModerate == 256 << 20)
    }
}

/// Key files and passphrase keys.
@Suite struct StreamKeyTests {
    @Test func keyFileRoundTripsAndRefusesDamage() throws {
        let k = StreamKey.generate()
        let text = k.fileText
        let back = try StreamKey(fileText: text)
        #expect(back == k && back.id == k.id)
        #expect(StreamKey.generate().id != k.id)
        // One changed hex digit of the key, a truncated key, another format: each refused.
        var chars = Array(text)
        let at = "thin-backup-key-v1 ".count + 5
        chars[at] = chars[at] == "0" ? "1" : "0"
        #expect(throws: KeyError.self) { try StreamKey(fileText: String(chars)) }
        #expect(throws: KeyError.self) { try StreamKey(fileText: String(text.prefix(40))) }
        #expect(throws: KeyError.self) { try StreamKey(fileText: "") }
        #expect(throws: KeyError.self) { try StreamKey(fileText: "-----BEGIN PRIVATE KEY-----\n") }
    }

    @Test func passphraseKeysDependOnPassphraseAndSalt() throws {
        let salt = [UInt8](repeating: 7, count: 16)
        let a = try StreamKey.derive(passphrase: Array("correct horse".utf8), salt: salt, opsLimit: 1, memLimit: 8 << 20)
        let b = try StreamKey.derive(passphrase: Array("correct horse".utf8), salt: salt, opsLimit: 1, memLimit: 8 << 20)
        let c = try StreamKey.derive(passphrase: Array("correct horsf".utf8), salt: salt, opsLimit: 1, memLimit: 8 << 20)
        let d = try StreamKey.derive(passphrase: Array("correct horse".utf8), salt: [UInt8](repeating: 8, count: 16), opsLimit: 1, memLimit: 8 << 20)
        #expect(a == b && a.id != c.id && a.id != d.id)
        #expect(throws: KeyError.self) { try StreamKey.derive(passphrase: [], salt: salt) }
        #expect(throws: KeyError.self) { try StreamKeyring(passphrase: []) }
        // A stream asking for more memory than the limit is refused before Argon2id runs.
        #expect(throws: KeyError.self) {
            try StreamKey.derive(passphrase: [1], salt: salt, opsLimit: 3, memLimit: KeyDerivation.maxMemLimit + 1)
        }
    }
}
