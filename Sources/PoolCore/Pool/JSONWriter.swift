/// Writes a `JSONValue` as Foundation's JSONEncoder writes the Codable value it stands for, with
/// `.sortedKeys` (and `.prettyPrinted` when asked), byte for byte: a receive saves `pool.json` and a
/// receipt in every commit, and JSONEncoder's first use per type costs about a millisecond of type
/// metadata and conformance lookups. What this writer does not reproduce exactly is declined (nil)
/// and the caller encodes with JSONEncoder as before: an object key outside ASCII (JSONEncoder's
/// order for those is not byte order), and arrays (no file written this way has one).
/// `SidecarJSONTests` and `ReceiptJSONTests` compare its output with JSONEncoder's.
extension JSONValue {
    public func encoded(pretty: Bool) -> [UInt8]? {
        var w = Writer(pretty: pretty)
        guard w.write(self, indent: 0) else { return nil }
        return w.out
    }

    private struct Writer {
        let pretty: Bool
        var out: [UInt8] = []

        init(pretty: Bool) {
            self.pretty = pretty
            out.reserveCapacity(1024)
        }

        mutating func write(_ v: JSONValue, indent: Int) -> Bool {
            switch v {
            case .object(let o):
                guard o.keys.allSatisfy({ $0.utf8.allSatisfy { $0 < 0x80 } }) else { return false }
                let keys = o.keys.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }
                out.append(UInt8(ascii: "{"))
                if pretty {
                    out.append(0x0A)
                    if keys.isEmpty { out.append(0x0A) }  // "{\n\n}", as JSONEncoder writes an empty object
                }
                for (i, k) in keys.enumerated() {
                    if i > 0 { out.append(UInt8(ascii: ",")); if pretty { out.append(0x0A) } }
                    if pretty { spaces(indent + 2) }
                    string(k)
                    out.append(contentsOf: pretty ? [0x20, UInt8(ascii: ":"), 0x20] : [UInt8(ascii: ":")])
                    guard write(o[k]!, indent: indent + 2) else { return false }
                }
                if pretty {
                    if !keys.isEmpty { out.append(0x0A) }
                    spaces(indent)
                }
                out.append(UInt8(ascii: "}"))
            case .array:
                return false
            case .string(let s): string(s)
            case .number(let n): out.append(contentsOf: n.utf8)
            case .bool(let b): out.append(contentsOf: (b ? "true" : "false").utf8)
            case .null: out.append(contentsOf: "null".utf8)
            }
            return true
        }

        mutating func spaces(_ n: Int) { out.append(contentsOf: repeatElement(0x20, count: n)) }

        /// Quoted, escaped as JSONEncoder escapes: `"`, `\`, `/`, the short escapes for backspace, tab,
        /// newline, form feed and carriage return, `\u00xx` (lowercase hex) for the other control
        /// characters; every other byte of the UTF-8 as it is.
        mutating func string(_ s: String) {
            out.append(UInt8(ascii: "\""))
            for c in s.utf8 {
                switch c {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): out.append(UInt8(ascii: "\\")); out.append(c)
                case 0x08: out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "b")])
                case 0x09: out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "t")])
                case 0x0A: out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "n")])
                case 0x0C: out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "f")])
                case 0x0D: out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "r")])
                case 0..<0x20:
                    // The high digit is 0 or 1; the low one 0-9 or a-f.
                    let low = c & 15
                    out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "u"), UInt8(ascii: "0"), UInt8(ascii: "0"), UInt8(ascii: "0") + (c >> 4),
                                            low < 10 ? UInt8(ascii: "0") + low : UInt8(ascii: "a") + low - 10])
                default: out.append(c)
                }
            }
            out.append(UInt8(ascii: "\""))
        }
    }
}
