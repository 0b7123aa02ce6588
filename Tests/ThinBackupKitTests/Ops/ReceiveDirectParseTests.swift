import ArgumentParser
import Foundation
import Testing
@testable import ThinBackupKit

/// `receive` in its plain forms is parsed by `ReceiveDirectParse` without ArgumentParser. The
/// values it gives must be those of the command ArgumentParser parses, and every other list must
/// be left to ArgumentParser.
@Suite("receive parsed directly, to ArgumentParser's values")
struct ReceiveDirectParseTests {
    static let p = ["receive", "--pool", "/p"]

    /// Built directly (the direct parse must take them).
    static let taken: [[String]] = [
        ["receive", "--pool", "/var/tmp/dst", "--from", "/dev/shm/inc.tbs", "--as", "200", "--quiet"],
        ["receive"],
        p,
        ["receive", "--from", "-", "--pool", "/p", "-q"],
        ["receive", "--metadata", "/m", "--data", "/d", "--from", "help", "--json"],
        ["receive", "--metadata", "/m"],
        ["receive", "--dm-pool", "tp", "--keep", "3", "--resume"],
        ["receive", "--lv", "vg/lv", "--thin-pool", "vg/pool", "--checkpoint", "256M", "--resume-token"],
        ["receive", "--lv", "vg/lv", "--keep", "1"],
        ["receive", "--thin-pool", "vg/pool", "--as", "+7", "--from", "receive"],
        p + ["--from", "s3://b/k", "--endpoint", "http://127.0.0.1:9000", "--part-size", "16M", "--ca-file", "/ca",
             "--retries", "2", "--connect-timeout", "5", "--stall-timeout", "60", "--token-file", "/t"],
        p + ["--retries", "0", "--connect-timeout", "0", "--part-size", "1k"],  // refused at run, not at parse
        p + ["--key", "/k"], p + ["--encrypt-key", "/k"], p + ["--passphrase-file", "/pp"],
        p + ["--origin-file", "/o", "--as", "0", "--checkpoint", "0"],
        ["receive", "--pool", "a=b", "--from", "-"],
        ["receive", "--pool", "-"],
    ]

    /// Left to ArgumentParser: other spellings, repeats, errors, help, version and completion requests.
    static let declined: [[String]] = [
        ["receive", "--pool=/p"], p + ["--pool", "/q"], p + ["--quiet", "-q"], p + ["-q", "-q"], p + ["--json", "--json"],
        p + ["--key", "/k", "--encrypt-key", "/k"], p + ["--as", "x"], p + ["--as", "-1"], p + ["--as", "18446744073709551616"],
        p + ["--keep", "0"], p + ["--keep", "-2"], p + ["--metadata", "/m"], ["receive", "--data", "/d"],
        ["receive", "--dm-pool", "a", "--lv", "vg/lv"], ["receive", "--lv", "a/x", "--thin-pool", "b/pool"],
        p + ["--encrypt-key", "/k", "--passphrase-file", "/f"], p + ["--checkpoint", "lots"], p + ["--part-size", "1Q"],
        p + ["--retries", "many"], p + ["--stall-timeout", "1.5"],
        ["receive", "--help"], ["receive", "-h"], ["receive", "-help"], p + ["--help"], ["receive", "--version"], p + ["--version"],
        ["receive", "--pool"], ["receive", "--from", "--quiet"], ["receive", "--from", ""], ["receive", "--from", "-x"],
        ["receive", "extra"], p + ["--bogus"], p + ["-qx"], p + ["-Q"], ["receive", "--experimental-dump-help"],
        p + ["--generate-completion-script", "bash"], ["receive", "---completion", "--", "--pool"], p + ["--"],
        ["receive", "--", "--pool", "/p"], ["Receive", "--pool", "/p"], ["help", "receive"], ["send", "--pool", "/p"],
        ["--pool", "/p", "receive"], [],
    ]

    /// The values ArgumentParser's parse gives (nil: it gave no `receive` command).
    static func theirs(_ args: [String]) -> ReceiveArguments? {
        (try? RootCommand.parseAsRoot(args) as? ReceiveCommand)?.arguments
    }

    @Test func takenListsGiveArgumentParsersValues() {
        for args in Self.taken {
            let direct = ReceiveDirectParse.parse(args)
            #expect(direct != nil, "\(args)")
            let theirs = Self.theirs(args)
            #expect(theirs != nil, "\(args)")
            #expect(direct == theirs, "\(args)")
        }
    }

    /// Each option and flag is given, with a value other than its default, in some list the
    /// comparison above covers (so a value the direct parse or `ReceiveCommand.arguments` drops
    /// shows there), and the defaults of an empty list are ArgumentParser's.
    @Test func everyOptionIsCompared() {
        for name in ReceiveDirectParse.valueOptions + ReceiveDirectParse.flags {
            #expect(Self.taken.contains { $0.contains(name) }, "\(name)")
        }
        #expect(Self.theirs(["receive"]) == ReceiveArguments())
        let all = Self.taken.compactMap { ReceiveDirectParse.parse($0) }
        let fields: [(String, (ReceiveArguments) -> AnyHashable?)] = [
            ("pool", { $0.pool.pool }), ("metadata", { $0.pool.metadata }), ("data", { $0.pool.data }),
            ("dmPool", { $0.pool.dmPool }), ("thinPool", { $0.pool.thinPool }), ("lv", { $0.pool.lv }),
            ("from", { $0.from }), ("tokenFile", { $0.network.tokenFile }), ("endpoint", { $0.network.endpoint }),
            ("partSize", { $0.network.partSize.bytes }), ("caFile", { $0.network.caFile }), ("retries", { $0.network.retries }),
            ("connectTimeout", { $0.network.connectTimeout }), ("stallTimeout", { $0.network.stallTimeout }),
            ("asDevice", { $0.asDevice }), ("originFile", { $0.originFile }), ("resume", { $0.resume }),
            ("checkpoint", { $0.checkpoint?.bytes }), ("resumeToken", { $0.resumeToken }), ("keep", { $0.keep }),
            ("encryptKey", { $0.key.encryptKey }), ("passphraseFile", { $0.key.passphraseFile }),
            ("json", { $0.output.json }), ("quiet", { $0.output.quiet }),
        ]
        let defaults = ReceiveArguments()
        for (name, field) in fields {
            #expect(all.contains { field($0) != field(defaults) }, "\(name) never differs from its default")
        }
    }

    @Test func everythingElseIsLeftToArgumentParser() {
        for args in Self.declined {
            #expect(ReceiveDirectParse.parse(args) == nil, "\(args)")
        }
    }

    /// The direct parse knows every option `receive --help` lists, and no other: an option added
    /// to `receive` (or one of its groups) fails here until the direct parse sets it too.
    @Test func knowsEveryOptionOfReceive() {
        guard var listed = ReceiveDirectParseTests.optionsListed(by: ReceiveCommand.self) else { return }
        listed.subtract(["-h", "--help", "--version"])  // ArgumentParser's own (the root's version): left to it
        let known = Set(ReceiveDirectParse.valueOptions + ReceiveDirectParse.flags)
        #expect(listed == known, "listed by --help only: \(listed.subtracting(known)); known only: \(known.subtracting(listed))")
    }

    /// The option names `command --help` lists under OPTIONS (nil, recorded as an issue, when it lists none).
    static func optionsListed(by command: any ParsableCommand.Type) -> Set<String>? {
        let help = RootCommand.helpMessage(for: command)
        guard let options = help.range(of: "OPTIONS:") else {
            Issue.record("no OPTIONS in \(help)")
            return nil
        }
        var listed: Set<String> = []
        for line in help[options.upperBound...].split(separator: "\n") {
            let trimmed = line.drop(while: { $0 == " " })
            guard trimmed.hasPrefix("-"), line.count - trimmed.count <= 4 else { continue }  // not a wrapped help line
            // The names column ends where two spaces begin the description.
            let column = trimmed.components(separatedBy: "  ")[0]
            let names = column.split(separator: " ").map { $0.hasSuffix(",") ? String($0.dropLast()) : String($0) }
            listed.formUnion(names.filter { $0.hasPrefix("-") })
        }
        return listed
    }
}
