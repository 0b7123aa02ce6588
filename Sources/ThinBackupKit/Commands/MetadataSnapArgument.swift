import ArgumentParser

/// `-m|--metadata-snap [BLOCK]`: read through the held metadata snapshot, optionally
/// naming the block it must be at. Spellings: `-m`, `--metadata-snap`, `-m5`, `-m 5`,
/// `--metadata-snap=5`, `--metadata-snap 5`. The one definition of `-m`: send, dump, delta
/// and `pool ls` take this group.
struct MetadataSnapOptions: ParsableArguments {
    @Option(name: [.customShort("m", allowingJoined: true), .customLong("metadata-snap")], defaultAsFlag: MetadataSnapChoice.held,
            parsing: .next, help: ArgumentHelp("Read through the held metadata snapshot (its block, if given, must match).", valueName: "block"))
    public var choice: MetadataSnapChoice?

    /// The metadata to read: the held snapshot when `-m` was given, else `otherwise`.
    public func mode(otherwise: MetadataSnapMode = .live) -> MetadataSnapMode { choice?.mode ?? otherwise }

    public func validate() throws { try choice?.validate() }
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

    /// The held snapshot this names.
    var mode: MetadataSnapMode {
        switch self {
        case let .block(b): return .held(block: b)
        case .held, .text: return .held(block: nil)
        }
    }

    /// What `MetadataSnapOptions` checks: a block that is not a number is an error.
    func validate() throws {
        if case let .text(t) = self { throw ValidationError("Couldn't parse metadata snapshot block: '\(t)'") }
    }

    public var description: String {
        switch self {
        case .held: return "held"
        case let .block(b): return "\(b)"
        case let .text(t): return t
        }
    }
}
