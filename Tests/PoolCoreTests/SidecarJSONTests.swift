import Foundation
import Testing
@testable import PoolCore
import TestSupport

/// `pool.json` read through `JSONValue` gives what JSONDecoder gives, for every sidecar `save`
/// writes; what the reader declines is left to JSONDecoder, with the same outcome as before.
@Suite struct SidecarJSONTests {
    static func randomText(_ rng: inout SeededRNG) -> String {
        let pieces = ["a", "Z", "/", "\\", "\"", "\n", "\t", "\u{1}", "é", "日本", "😀", " ", "{\"k\":[1,2]}", "receipt.7", "-"]
        return (0..<Int.random(in: 0...8, using: &rng)).map { _ in pieces.randomElement(using: &rng)! }.joined()
    }

    static func randomSidecar(_ rng: inout SeededRNG) -> PoolSidecar {
        var s = PoolSidecar()
        for _ in 0..<Int.random(in: 0...5, using: &rng) {
            let size = [0, 1, 65536, UInt64.random(in: 0...ThinPool.maxVirtualSize, using: &rng)].randomElement(using: &rng)!
            s.devices[String(UInt64.random(in: 0...(1 << 24), using: &rng))] =
                PoolSidecar.Device(size: size, originFile: Bool.random(using: &rng) ? "/o/" + randomText(&rng) : nil)
        }
        if Bool.random(using: &rng) { s.dataLowWaterMark = UInt64.random(in: 0...UInt64.max, using: &rng) }
        func notes() -> [String: String] {
            var a: [String: String] = [:]
            for _ in 0..<Int.random(in: 0...4, using: &rng) { a[randomText(&rng)] = randomText(&rng) }
            return a
        }
        if Bool.random(using: &rng) { s.annotations = notes() }
        if Bool.random(using: &rng) { s.pending = .init(transaction: UInt64.random(in: 0...UInt64.max, using: &rng), annotations: notes()) }
        return s
    }

    @Test func everySavedSidecarReadsAsJSONDecoderReadsIt() throws {
        var rng = SeededRNG(seed: 4242)
        for i in 0..<400 {
            let s = Self.randomSidecar(&rng)
            let enc = JSONEncoder()
            enc.outputFormatting = i % 2 == 0 ? [.sortedKeys, .prettyPrinted] : []
            let data = try enc.encode(s)
            let fast = data.withUnsafeBytes { JSONValue.parse($0) }.flatMap(PoolSidecar.init(json:))
            #expect(fast != nil, "case \(i): declined \(String(decoding: data, as: UTF8.self))")
            #expect(fast == (try JSONDecoder().decode(PoolSidecar.self, from: data)), "case \(i)")
            #expect(fast == s, "case \(i)")
        }
    }

    @Test func whatTheReaderDeclinesIsLeftToJSONDecoder() throws {
        let tmp = TempDir("sidecar-json")
        let path = tmp.file("pool.json")
        // (text, JSONDecoder decodes it)
        let cases: [(String, Bool)] = [
            (#"{"version":1,"devices":{"1":{"size":5}},"extra":true}"#, true),  // unknown keys: ignored by JSONDecoder
            (#"{"version":1,"devices":{"1":{"size":5,"more":null}}}"#, true),
            (#"{"version":1,"devices":{"1":{"size":-5}}}"#, false),
            (#"{"version":1,"devices":{"1":{"size":5.5}}}"#, false),
            (#"{"version":1,"devices":{"1":{"size":18446744073709551616}}}"#, false),
            (#"{"version":1,"devices":{}} trailing"#, false),
            (#"{"version":1}"#, false),
            (#"{"version":1,"devices":{"1":{"size":"5"}}}"#, false),
            (#"{"version":1,"devices":{},"annotations":{"a":1}}"#, false),
        ]
        for (text, ok) in cases {
            try Data(text.utf8).write(to: URL(fileURLWithPath: path))
            let viaDecoder = try? JSONDecoder().decode(PoolSidecar.self, from: Data(text.utf8))
            #expect((viaDecoder != nil) == ok, "\(text)")
            if let want = viaDecoder {
                #expect(try PoolSidecar.load(path) == want, "\(text)")
            } else {
                #expect(throws: PoolError.self, "\(text)") { try PoolSidecar.load(path) }
            }
        }
    }

    @Test func theReaderIsStrict() {
        #expect(JSONValue.parse(#""\u00e9\ud83d\ude00\/\b\f\n\r\t\"\\""#) == .string("é😀/\u{8}\u{c}\n\r\t\"\\"))
        #expect(JSONValue.parse(#" { "a" : [ 1 , -2 , true , false , null , { } , [ ] ] } "#)
                == .object(["a": .array([.number("1"), .number("-2"), .bool(true), .bool(false), .null, .object([:]), .array([])])]))
        for bad in [#""\ud83d""#, #""\ude00x""#, "\"a\u{1}\"", #""\x""#, #""\u12""#, "01", "1.0", "1e3", "-", "[1,]", "{\"a\":1,}",
                    #"{"a":1,"a":2}"#, "[1] [2]", "tru", "\"open", String(repeating: "[", count: 40) + String(repeating: "]", count: 40)] {
            #expect(JSONValue.parse(bad) == nil, "\(bad)")
        }
        #expect(JSONValue.parse("18446744073709551616")?.uint64 == nil)
        #expect(JSONValue.parse("18446744073709551615")?.uint64 == UInt64.max)
    }

    // MARK: writing

    /// Keys drawn from all of ASCII (controls, punctuation, digits, both cases), some sharing prefixes.
    static func asciiKey(_ rng: inout SeededRNG) -> String {
        let alphabet = (0..<128).map { Character(Unicode.Scalar(UInt8($0))) } + Array("receipt.10")
        return String((0..<Int.random(in: 0...6, using: &rng)).map { _ in alphabet.randomElement(using: &rng)! })
    }

    @Test func savedSidecarsAreJSONEncodersBytes() throws {
        // A field added to the sidecar must be added to `json` too: this count fails first.
        #expect(Mirror(reflecting: PoolSidecar()).children.count == 5)
        #expect(Mirror(reflecting: PoolSidecar.Device(size: 1)).children.count == 2)
        #expect(Mirror(reflecting: PoolSidecar.PendingAnnotations(transaction: 1, annotations: [:])).children.count == 2)
        var rng = SeededRNG(seed: 4343)
        var written = 0
        for i in 0..<400 {
            var s = Self.randomSidecar(&rng)
            if i % 2 == 0, s.annotations != nil {
                // ASCII notes only: the writer takes these (the others are declined and go to JSONEncoder).
                s.annotations = Dictionary((0..<Int.random(in: 0...6, using: &rng)).map { _ in (Self.asciiKey(&rng), Self.asciiKey(&rng)) }) { a, _ in a }
            }
            let enc = JSONEncoder()
            enc.outputFormatting = [.sortedKeys, .prettyPrinted]
            let want = try enc.encode(s)
            #expect(try s.encoded() == want, "case \(i): \(String(decoding: want, as: UTF8.self))")
            if let mine = s.json.encoded(pretty: true) {
                written += 1
                #expect(Data(mine) == want, "case \(i)")
            }
        }
        #expect(written > 150, "the writer took \(written) of 400")
    }

    @Test func theWriterEscapesAndOrdersAsJSONEncoder() throws {
        var rng = SeededRNG(seed: 4444)
        let all = String((0..<128).map { Character(Unicode.Scalar(UInt8($0))) }) + "é日本😀\u{2028}\u{7f}"
        for pretty in [false, true] {
            let enc = JSONEncoder()
            enc.outputFormatting = pretty ? [.sortedKeys, .prettyPrinted] : [.sortedKeys]
            for i in 0..<300 {
                var d: [String: String] = i == 0 ? ["k": all, "": ""] : [:]
                for _ in 0..<Int.random(in: 0...8, using: &rng) { d[Self.asciiKey(&rng)] = Self.randomText(&rng) + Self.asciiKey(&rng) }
                let nested: [String: [String: String]] = ["a": d, "b": [:], "10": ["9": "x"]]
                let got = JSONValue.object(nested.mapValues { .object($0.mapValues { .string($0) }) }).encoded(pretty: pretty)
                #expect(got.map { Data($0) } == (try enc.encode(nested)), "case \(i), pretty \(pretty)")
            }
            // Numbers as written (JSONEncoder's for the same integers); a key outside ASCII or an array is declined.
            struct N: Codable { var m: Int; var n: UInt64; var z: Int }
            #expect(JSONValue.object(["n": .number("18446744073709551615"), "m": .number("-5"), "z": .number("0")]).encoded(pretty: pretty).map { Data($0) }
                    == (try enc.encode(N(m: -5, n: .max, z: 0))))
            #expect(JSONValue.object(["é": .string("x")]).encoded(pretty: pretty) == nil)
            #expect(JSONValue.object(["a": .array([])]).encoded(pretty: pretty) == nil)
        }
    }
}
