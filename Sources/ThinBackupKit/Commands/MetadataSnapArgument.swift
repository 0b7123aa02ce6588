import ArgumentParser

/// `-m|--metadata-snap [BLOCK]`: read through the held metadata snapshot, optionally
/// naming the block it must be at. Spellings: `-m`, `--metadata-snap`, `-m5`, `-m 5`,
/// `--metadata-snap=5`, `--metadata-snap 5` (the same option `delta` takes).
public struct MetadataSnapOptions: ParsableArguments {
    @Option(name: [.customShort("m", allowingJoined: true), .customLong("metadata-snap")], defaultAsFlag: MetadataSnapChoice.held,
            parsing: .next, help: ArgumentHelp("Read through the held metadata snapshot (its block, if given, must match).", valueName: "block"))
    public var choice: MetadataSnapChoice?

    public init() {}

    /// Whether to read through the held snapshot.
    public var metadataSnap: Bool { choice != nil }

    /// The block the held snapshot must be at, if one was given.
    public var metadataSnapBlock: UInt64? {
        if case let .block(b)? = choice { return b }
        return nil
    }

    public func validate() throws {
        if case let .text(t)? = choice { throw ValidationError("Couldn't parse metadata snapshot block: '\(t)'") }
    }

    /// Formerly rewrote `-mN` spellings before parsing; ArgumentParser now takes them all
    /// itself, so this returns `args` unchanged (kept for existing callers).
    public static func normalize(_ args: [String]) -> [String] { args }
}

/// The value of `-m|--metadata-snap [BLOCK]`.
public enum MetadataSnapChoice: ExpressibleByArgument, Sendable, Equatable, CustomStringConvertible {
    /// `-m` alone: the held snapshot, wherever it is.
    case held
    /// `-m BLOCK`: the held snapshot, which must be at BLOCK.
    case block(UInt64)
    /// Not a number: reported by `validate()` as thin_dump/thin_delta do.
    case text(String)

    public init?(argument: String) {
        if let b = UInt64(argument) { self = .block(b) } else { self = .text(argument) }
    }

    public var description: String {
        switch self {
        case .held: return "held"
        case let .block(b): return "\(b)"
        case let .text(t): return t
        }
    }
}
