/// A small strict JSON reader for the pool's own files (`pool.json`, receipts): objects, arrays,
/// strings, whole numbers, true/false/null. Foundation's JSONDecoder costs a millisecond or two the
/// first time each Codable type is decoded in a process (type metadata and protocol conformance
/// lookups over the whole binary): every receive paid it to read a 1 KiB file. Anything this reader
/// does not take (fractions, exponents, duplicate keys, a bad escape, bytes after the value) gives
/// nil, and the caller decodes with JSONDecoder as before, which then names what is wrong.
public enum JSONValue: Equatable, Sendable {
    case object([String: JSONValue])
    case array([JSONValue])
    case string(String)
    /// A whole number as written (digits, maybe a leading minus).
    case number(String)
    case bool(Bool)
    case null

    /// The value `bytes` hold, or nil when this reader does not take them.
    public static func parse(_ bytes: UnsafeRawBufferPointer) -> JSONValue? {
        var r = Reader(bytes: bytes)
        guard let v = r.value(depth: 0) else { return nil }
        r.skipSpace()
        return r.at == bytes.count ? v : nil
    }

    public static func parse(_ text: String) -> JSONValue? {
        var t = text
        return t.withUTF8 { parse(UnsafeRawBufferPointer($0)) }
    }

    public subscript(key: String) -> JSONValue? {
        if case .object(let o) = self { return o[key] }
        return nil
    }

    public var uint64: UInt64? {
        if case .number(let n) = self { return UInt64(n) }
        return nil
    }

    public var int: Int? {
        if case .number(let n) = self { return Int(n) }
        return nil
    }

    public var string: String? {
        if case .string(let s) = self { return s }
        return nil
    }

    /// The object's keys, when it is one.
    public var keys: Set<String>? {
        if case .object(let o) = self { return Set(o.keys) }
        return nil
    }

    private struct Reader {
        let bytes: UnsafeRawBufferPointer
        var at = 0

        mutating func skipSpace() {
            while at < bytes.count, [0x20, 0x09, 0x0A, 0x0D].contains(bytes[at]) { at += 1 }
        }

        mutating func take(_ c: UInt8) -> Bool {
            skipSpace()
            guard at < bytes.count, bytes[at] == c else { return false }
            at += 1
            return true
        }

        mutating func literal(_ word: StaticString) -> Bool {
            let n = word.utf8CodeUnitCount
            guard at + n <= bytes.count else { return false }
            for i in 0..<n where bytes[at + i] != word.utf8Start[i] { return false }
            at += n
            return true
        }

        mutating func value(depth: Int) -> JSONValue? {
            guard depth < 32 else { return nil }
            skipSpace()
            guard at < bytes.count else { return nil }
            switch bytes[at] {
            case UInt8(ascii: "{"):
                at += 1
                var o: [String: JSONValue] = [:]
                if take(UInt8(ascii: "}")) { return .object(o) }
                repeat {
                    skipSpace()
                    guard let k = string(), take(UInt8(ascii: ":")), let v = value(depth: depth + 1), o[k] == nil else { return nil }
                    o[k] = v
                } while take(UInt8(ascii: ","))
                return take(UInt8(ascii: "}")) ? .object(o) : nil
            case UInt8(ascii: "["):
                at += 1
                var a: [JSONValue] = []
                if take(UInt8(ascii: "]")) { return .array(a) }
                repeat {
                    guard let v = value(depth: depth + 1) else { return nil }
                    a.append(v)
                } while take(UInt8(ascii: ","))
                return take(UInt8(ascii: "]")) ? .array(a) : nil
            case UInt8(ascii: "\""):
                return string().map { .string($0) }
            case UInt8(ascii: "t"): return literal("true") ? .bool(true) : nil
            case UInt8(ascii: "f"): return literal("false") ? .bool(false) : nil
            case UInt8(ascii: "n"): return literal("null") ? .null : nil
            default:
                let start = at
                if bytes[at] == UInt8(ascii: "-") { at += 1 }
                let digits = at
                while at < bytes.count, bytes[at] >= 0x30, bytes[at] <= 0x39 { at += 1 }
                // Whole numbers only, without leading zeros; a fraction or exponent is declined.
                guard at > digits, at - digits == 1 || bytes[digits] != 0x30 else { return nil }
                if at < bytes.count, [UInt8(ascii: "."), UInt8(ascii: "e"), UInt8(ascii: "E")].contains(bytes[at]) { return nil }
                return .number(String(decoding: UnsafeRawBufferPointer(rebasing: bytes[start..<at]), as: UTF8.self))
            }
        }

        /// A string at `at` (its opening quote), unescaped.
        mutating func string() -> String? {
            guard at < bytes.count, bytes[at] == UInt8(ascii: "\"") else { return nil }
            at += 1
            var out: [UInt8] = []
            while at < bytes.count {
                let c = bytes[at]
                at += 1
                switch c {
                case UInt8(ascii: "\""):
                    // Valid UTF-8 only (JSONDecoder refuses the rest).
                    return String(validating: out, as: UTF8.self)
                case UInt8(ascii: "\\"):
                    guard at < bytes.count else { return nil }
                    let e = bytes[at]
                    at += 1
                    switch e {
                    case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): out.append(e)
                    case UInt8(ascii: "b"): out.append(0x08)
                    case UInt8(ascii: "f"): out.append(0x0C)
                    case UInt8(ascii: "n"): out.append(0x0A)
                    case UInt8(ascii: "r"): out.append(0x0D)
                    case UInt8(ascii: "t"): out.append(0x09)
                    case UInt8(ascii: "u"):
                        guard var u = hex4() else { return nil }
                        if (0xD800..<0xDC00).contains(u) {
                            // A high surrogate must be followed by its low one.
                            guard literal("\\u"), let low = hex4(), (0xDC00..<0xE000).contains(low) else { return nil }
                            u = 0x10000 + ((u - 0xD800) << 10) + (low - 0xDC00)
                        } else if (0xDC00..<0xE000).contains(u) {
                            return nil
                        }
                        guard let scalar = Unicode.Scalar(u) else { return nil }
                        out.append(contentsOf: Array(String(Character(scalar)).utf8))
                    default: return nil
                    }
                default:
                    guard c >= 0x20 else { return nil }  // control characters must be escaped
                    out.append(c)
                }
            }
            return nil
        }

        mutating func hex4() -> UInt32? {
            guard at + 4 <= bytes.count else { return nil }
            var v: UInt32 = 0
            for _ in 0..<4 {
                let c = bytes[at]
                at += 1
                let d: UInt8
                switch c {
                case 0x30...0x39: d = c - 0x30
                case 0x41...0x46: d = c - 0x41 + 10
                case 0x61...0x66: d = c - 0x61 + 10
                default: return nil
                }
                v = v << 4 | UInt32(d)
            }
            return v
        }
    }
}
