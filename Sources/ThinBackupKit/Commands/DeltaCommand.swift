import ArgumentParser
import Delta
import PoolCore

/// `thin-backup delta`: the difference between two thin devices of one pool,
/// printed as Debian's thin_delta 0.9.0 prints it (plain or --verbose), or as
/// JSON; `--changes-only` is the sharing-aware diff that `send` uses.
public struct DeltaCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "delta",
        abstract: "Show how two thin devices' mappings differ (thin_delta's format).",
        discussion: """
            Output is byte-identical to thin_delta 0.9.0 for the same arguments. \
            --changes-only omits the <same …/> lines and skips, unread, every metadata block \
            the two devices share, so its cost follows what changed, not the device size.
            """
    )

    @Option(name: .long, help: ArgumentHelp("Metadata device or file of the pool.", valueName: "file"))
    public var metadata: String?

    @Option(name: .long, help: ArgumentHelp("Pool folder (holds a file named `metadata`).", valueName: "dir"))
    public var pool: String?

    @Option(name: [.customLong("thin1"), .customLong("snap1")], help: ArgumentHelp("Left (older) thin device id.", valueName: "id"))
    public var thin1: UInt64

    @Option(name: [.customLong("thin2"), .customLong("snap2")], help: ArgumentHelp("Right (newer) thin device id.", valueName: "id"))
    public var thin2: UInt64

    @Option(name: [.customShort("m", allowingJoined: true), .customLong("metadata-snap")], defaultAsFlag: MetadataSnapChoice.held,
            parsing: .next, help: ArgumentHelp("Read through the held metadata snapshot (its block, if given, must match).", valueName: "block"))
    public var metadataSnap: MetadataSnapChoice?

    @Flag(name: .long, help: "One range per comparison step, with data blocks (thin_delta --verbose).")
    public var verbose = false

    @Flag(name: .long, help: "Only the differences: no <same …/> lines; shared subtrees are not read.")
    public var changesOnly = false

    @Option(name: .long, help: "xml (thin_delta's format) or json (one object per run and line).")
    public var format: DeltaFormat = .xml

    public init() {}

    public func validate() throws {
        switch (metadata, pool) {
        case (nil, nil): throw ValidationError("give the pool as --metadata FILE or --pool DIR")
        case (_?, _?): throw ValidationError("give either --metadata or --pool, not both")
        default: break
        }
        if case let .text(t)? = metadataSnap { throw ValidationError("Couldn't parse metadata snapshot block: '\(t)'") }
        if verbose && format == .json { throw ValidationError("--verbose applies to the xml format only") }
    }

    public func run() throws {
        let out = TextOutput.standardOutput()
        try execute(to: out)
        try out.flush()
    }

    /// The path of the metadata device or file.
    var metadataPath: String { metadata ?? "\(pool!)/metadata" }

    /// Runs the diff and prints it to `out` (tests call this directly).
    public func execute(to out: TextOutput, source: (any BlockReading)? = nil) throws {
        let reader = try source.map { s throws(MetadataError) in try MetadataReader(source: s) }
            ?? MetadataReader(path: metadataPath)
        let view: MetadataView
        switch metadataSnap {
        case nil: view = reader.live
        case .held?: view = try reader.metadataSnapshot()
        case let .block(b)?: view = try reader.metadataSnapshot(block: b)
        case .text?: preconditionFailure("rejected by validate()")
        }
        let diff: MappingDiff
        do {
            diff = try MappingDiff(view: view, left: thin1, right: thin2)
        } catch {
            throw CommandFailure(message(for: error))
        }
        let sb = view.superblock
        let header = DeltaHeader(
            time: sb.time, transaction: sb.transactionID, dataBlockSize: sb.dataBlockSize,
            dataBlockCount: view.dataBlockCount, metadataSnap: sb.heldRoot == 0 ? nil : sb.heldRoot,
            left: thin1, right: thin2)
        let style: DeltaPrinter.Style = format == .json ? .json : (verbose ? .verbose : .plain)
        let printer = DeltaPrinter(style: style, header: header, to: out)
        try printer.begin()
        do {
            if changesOnly {
                try diff.changes { try printer.add($0) }
            } else {
                try diff.all { try printer.add($0) }
            }
        } catch let error as MappingDiffError {
            throw CommandFailure(message(for: error))
        }
        try printer.end()
    }

    private func message(for error: MappingDiffError) -> String {
        func name(_ side: MappingDiffError.Side) -> String {
            side == .left ? "thin1 (\(thin1))" : "thin2 (\(thin2))"
        }
        switch error {
        case let .unknownDevice(side, _):
            return "unable to find mapping tree for \(name(side)) in \(metadataPath)"
        case let .damaged(side, underlying):
            let which = side == .both ? "the mapping tree shared by thin1 (\(thin1)) and thin2 (\(thin2))"
                : "the mapping tree of \(name(side))"
            return "damage in \(which), please run thin_check: \(underlying)"
        }
    }
}

/// `-m` alone (the held snapshot), or `-m BLOCK` (must be the held one).
public enum MetadataSnapChoice: ExpressibleByArgument, Sendable, Equatable, CustomStringConvertible {
    case held
    case block(UInt64)
    /// Not a number: reported by `validate()` as thin_delta does.
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

/// Output format of `delta`.
public enum DeltaFormat: String, ExpressibleByArgument, Sendable {
    case xml, json
}
