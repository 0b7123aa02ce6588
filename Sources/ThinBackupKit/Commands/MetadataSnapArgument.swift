import ArgumentParser

/// `-m|--metadata-snap [BLOCK]`: read through the held metadata snapshot, optionally
/// naming the block it must be at. thin_dump spells the block `-m5` or
/// `--metadata-snap=5`; we also take `-m 5` and `--metadata-snap 5`.
///
/// ArgumentParser has no option with an optional value, so `normalize` rewrites
/// those spellings into a flag plus `--metadata-snap-block N` before parsing.
public struct MetadataSnapOptions: ParsableArguments {
    @Flag(name: [.customShort("m"), .customLong("metadata-snap")],
          help: "Read through the held metadata snapshot (-m BLOCK / --metadata-snap=BLOCK: it must be at BLOCK).")
    public var metadataSnap = false

    @Option(name: .customLong("metadata-snap-block"), help: .hidden)
    public var metadataSnapBlock: UInt64?

    public init() {}

    public func validate() throws {
        if metadataSnapBlock != nil && !metadataSnap {
            throw ValidationError("--metadata-snap-block needs -m/--metadata-snap")
        }
    }

    /// Rewrites `-mN`, `-m N`, `--metadata-snap=N`, `--metadata-snap N` into
    /// `--metadata-snap --metadata-snap-block N`. Arguments after `--` are left alone.
    public static func normalize(_ args: [String]) -> [String] {
        var out: [String] = []
        var i = 0
        func isNumber(_ s: Substring) -> Bool { !s.isEmpty && s.allSatisfy { $0.isASCII && $0.isNumber } }
        while i < args.count {
            let a = args[i]
            if a == "--" { out.append(contentsOf: args[i...]); break }
            if a == "-m" || a == "--metadata-snap" {
                out.append("--metadata-snap")
                if i + 1 < args.count, isNumber(Substring(args[i + 1])) {
                    out.append(contentsOf: ["--metadata-snap-block", args[i + 1]])
                    i += 1
                }
            } else if a.hasPrefix("-m"), !a.hasPrefix("--"), isNumber(a.dropFirst(2)) {
                out.append(contentsOf: ["--metadata-snap", "--metadata-snap-block", String(a.dropFirst(2))])
            } else if a.hasPrefix("--metadata-snap="), isNumber(a.dropFirst("--metadata-snap=".count)) {
                out.append(contentsOf: ["--metadata-snap", "--metadata-snap-block", String(a.dropFirst("--metadata-snap=".count))])
            } else {
                out.append(a)
            }
            i += 1
        }
        return out
    }
}
