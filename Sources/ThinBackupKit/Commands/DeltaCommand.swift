import ArgumentParser
import Delta
import PoolCore

/// `thin-backup delta`: the difference between two thin devices of one pool,
/// printed as Debian's thin_delta 0.9.0 prints it (plain or --verbose), or as
/// JSON; `--changes-only` is the sharing-aware diff that `send` uses.
struct DeltaCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "delta",
        abstract: "Show how two thin devices' mappings differ (thin_delta's format).",
        discussion: """
            Output is byte-identical to thin_delta 0.9.0 for the same arguments. \
            --changes-only omits the <same …/> lines and skips, unread, every metadata block \
            the two devices share, so its cost follows what changed, not the device size.
            """
    ).underRoot()

    @OptionGroup public var pool: PoolOptions

    @Option(name: [.customLong("thin1"), .customLong("snap1")], help: ArgumentHelp("Left (older) thin device id.", valueName: "id"))
    public var thin1: UInt64

    @Option(name: [.customLong("thin2"), .customLong("snap2")], help: ArgumentHelp("Right (newer) thin device id.", valueName: "id"))
    public var thin2: UInt64

    @OptionGroup public var snap: MetadataSnapOptions

    @Flag(name: .long, help: "One range per comparison step, with data blocks (thin_delta --verbose).")
    public var verbose = false

    @Flag(name: .long, help: "Only the differences: no <same …/> lines; shared subtrees are not read.")
    public var changesOnly = false

    @Option(name: .long, help: "xml (thin_delta's format) or json (one object per run and line).")
    public var format: DeltaFormat = .xml

    public func validate() throws {
        if !pool.isGiven { throw ValidationError("give the pool as --metadata FILE or --pool DIR") }
        if verbose && format == .json { throw ValidationError("--verbose applies to the xml format only") }
    }

    public func run() throws { try run(to: .standardOutput()) }

    /// Runs the command with its output going to `out` (tests pass a memory output).
    /// On failure the unwritten part of the output is dropped.
    public func run(to out: TextOutput) throws {
        let access = try pool.open()
        defer { access.close() }
        do {
            try execute(access, to: out)
            try out.flush()
        } catch {
            out.discard()
            throw error
        }
    }

    private func execute(_ access: any PoolAccess, to out: TextOutput) throws {
        let view = try snap.mode().view(try access.readMetadata())
        let diff: MappingDiff
        do {
            diff = try MappingDiff(view: view, left: thin1, right: thin2)
        } catch {
            throw JobError(message(for: error, in: access.name))
        }
        let sb = view.superblock
        let header = DeltaHeader(
            time: sb.time, transaction: sb.transactionID, dataBlockSize: sb.dataBlockSize,
            dataBlockCount: view.dataBlockCount, metadataSnap: sb.heldRoot == 0 ? nil : sb.heldRoot,
            left: thin1, right: thin2)
        let style: DeltaPrinter.Style = format == .json ? .json : (verbose ? .verbose : .plain)
        let printer = DeltaPrinter(style: style, header: header, to: out)
        printer.begin()
        do {
            if changesOnly {
                try diff.changes { try printer.add($0) }
            } else {
                try diff.all { try printer.add($0) }
            }
        } catch let error as MappingDiffError {
            throw JobError(message(for: error, in: access.name))
        }
        printer.end()
    }

    private func message(for error: MappingDiffError, in metadataPath: String) -> String {
        func name(_ side: MappingDiffError.Side) -> String {
            side == .left ? "thin1 (\(thin1))" : "thin2 (\(thin2))"
        }
        func which(_ side: MappingDiffError.Side) -> String {
            side == .both ? "the mapping tree shared by thin1 (\(thin1)) and thin2 (\(thin2))" : "the mapping tree of \(name(side))"
        }
        switch error {
        case let .unknownDevice(side, _):
            return "unable to find mapping tree for \(name(side)) in \(metadataPath)"
        case let .damaged(side, underlying):
            return "damage in \(which(side)), please run thin_check: \(underlying)"
        case let .outOfOrder(side, v):
            return "damage in \(which(side)), please run thin_check: virtual block \(v) comes out of order"
        }
    }
}

/// Output format of `delta`.
public enum DeltaFormat: String, ExpressibleByArgument, Sendable {
    case xml, json
}
