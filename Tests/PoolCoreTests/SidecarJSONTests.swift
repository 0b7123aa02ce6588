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
}
