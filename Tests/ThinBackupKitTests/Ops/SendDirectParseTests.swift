import ArgumentParser
import Foundation
import Testing
@testable import ThinBackupKit

/// `send` in its plain forms is parsed by `SendDirectParse` without ArgumentParser. The values it
/// gives must be those of the command ArgumentParser parses, and every other list must be left to
/// ArgumentParser.
@Suite("send parsed directly, to ArgumentParser's values")
struct SendDirectParseTests {
    static let p = ["send", "--pool", "/p", "--snap", "2", "--to", "/s.tbs"]
    static let digest = "0123456789abcdef0123456789ABCDEF"

    /// Built directly (the direct parse must take them).
    static let taken: [[String]] = [
        // Benchmarks/run-all.sh, send_receive.sh, network.sh
        ["send", "--pool", "/w/pool", "--snap", "1", "--to", "/w/full.tbs", "--force", "--quiet", "--json"],
        ["send", "--pool", "/w/pool", "--from", "1", "--snap", "2", "--base-digest", digest, "--to", "/w/inc.tbs", "--force", "--quiet", "--json"],
        ["send", "--pool", "/w/scratch", "--snap", "1", "--to", "/w/old.tbs", "--threads", "1", "--quiet"],
        ["send", "--pool", "/w/src", "--snap", "2", "--to", "s3://bench/full.tbs", "--endpoint", "http://127.0.0.1:9000", "--quiet"],
        // README
        ["send", "--pool", "/srv/pool", "--snap", "10", "--to", "snap10.tbs"],
        ["send", "--pool", "/srv/pool", "--from", "10", "--snap", "11", "--to", "snap11.tbs", "--base-digest", digest],
        ["send", "--pool", "/srv/pool", "--snap", "10", "--to", "-"],
        ["send", "--lv", "vg/data-snap", "--to", "data.tbs"],
        ["send", "--dm-pool", "pool", "--from", "2", "--snap", "3", "--size", "128M", "--to", "snap3.tbs"],
        ["send", "--pool", "/srv/poolA", "--from", "10", "--snap", "11", "--to", "tb://hostB:8740", "--token-file", "token"],
        ["send", "--pool", "/srv/poolA", "--snap", "10", "--to", "tbs://hostB:8740", "--ca-file", "cert.pem", "--token-file", "token"],
        // each option, the rest
        ["send", "--metadata", "/m", "--data", "/d", "--snap", "+7", "--to", "help", "-q"],
        ["send", "--thin-pool", "vg/pool", "--snap", "0", "--to", "send", "--as", "77"],
        ["send", "--lv", "vg/lv", "--thin-pool", "vg/pool", "--to", "x", "--from", "3"],
        p + ["--level", "19", "--threads", "0", "--live-metadata"],
        p + ["--level", "+1"], p + ["--level", "0"],
        p + ["--resume-from", "tok=en", "--size", "1000"],  // an odd size is refused at run, not at parse
        p + ["--part-size", "16M", "--retries", "2", "--connect-timeout", "5", "--stall-timeout", "60"],
        p + ["--retries", "0", "--connect-timeout", "0", "--part-size", "1k"],  // refused at run, not at parse
        p + ["--key", "/k"], p + ["--encrypt-key", "/k"], p + ["--passphrase-file", "/pp"],
        ["send", "--to", "-", "--snap", "1", "--pool", "-"],
    ]

    /// Left to ArgumentParser: other spellings, `-m`, repeats, errors, help, version and completion requests.
    static let declined: [[String]] = [
        ["send", "--pool=/p", "--snap", "2", "--to", "x"], ["send", "--pool", "/p", "--snap=2", "--to", "x"],
        p + ["--pool", "/q"], p + ["--snap", "3"], p + ["--quiet", "-q"], p + ["-q", "-q"], p + ["--force", "--force"],
        p + ["--key", "/k", "--encrypt-key", "/k"],
        p + ["-m"], p + ["-m", "5"], p + ["-m5"], p + ["--metadata-snap"], p + ["--metadata-snap", "5"], p + ["--metadata-snap=5"],
        p + ["-qm"], p + ["-mq"],
        p + ["--level", "-1"], p + ["--level", "x"], p + ["--level", "2147483648"], p + ["--level", "1.5"],
        p + ["--threads", "many"], p + ["--threads", "-2"], p + ["--as", "x"], p + ["--as", "-1"],
        ["send", "--pool", "/p", "--snap", "x", "--to", "x"], ["send", "--pool", "/p", "--snap", "18446744073709551616", "--to", "x"],
        p + ["--from", "1.0"], p + ["--size", "lots"], p + ["--size", "-1"], p + ["--part-size", "1Q"], p + ["--retries", "many"],
        p + ["--stall-timeout", "1.5"],
        // validations: the command's, then its groups'
        p + ["--from", "2"], p + ["--base-digest", digest], p + ["--from", "1", "--base-digest", "xyz"],
        p + ["--from", "1", "--base-digest", String(digest.dropLast())],
        ["send", "--pool", "/p", "--to", "x"], ["send", "--snap", "1", "--to", "x"], ["send", "--pool", "/p", "--snap", "1"],
        ["send", "--metadata", "/m", "--snap", "1", "--to", "x"], ["send", "--data", "/d", "--snap", "1", "--to", "x"],
        p + ["--metadata", "/m", "--data", "/d"], ["send", "--dm-pool", "a", "--lv", "vg/lv", "--to", "x"],
        ["send", "--lv", "a/x", "--thin-pool", "b/pool", "--to", "x"],
        p + ["--encrypt-key", "/k", "--passphrase-file", "/f"],
        // help, version, completion, other words
        ["send", "--help"], ["send", "-h"], ["send", "-help"], p + ["--help"], p + ["-h"], ["send", "--version"], p + ["--version"],
        ["send"], ["send", "--to"], ["send", "--pool", "/p", "--snap", "1", "--to", ""],
        ["send", "--pool", "/p", "--snap", "1", "--to", "--quiet"], ["send", "--pool", "/p", "--snap", "1", "--to", "-x"],
        p + ["extra"], p + ["--bogus"], p + ["-Q"], p + ["--"], ["send", "--", "--pool", "/p", "--snap", "2", "--to", "x"],
        ["send", "--experimental-dump-help"], p + ["--generate-completion-script", "bash"], ["send", "---completion", "--", "--pool"],
        ["Send", "--pool", "/p", "--snap", "2", "--to", "x"], ["help", "send"], ["receive", "--pool", "/p"],
        ["--pool", "/p", "send", "--snap", "2", "--to", "x"], p + ["--resume"], p + ["--from-file", "x"], [],
    ]

    /// The values ArgumentParser's parse gives (nil: it gave no `send` command).
    static func theirs(_ args: [String]) -> SendArguments? {
        (try? RootCommand.parseAsRoot(args) as? SendCommand)?.arguments
    }

    @Test func takenListsGiveArgumentParsersValues() {
        for args in Self.taken {
            let direct = SendDirectParse.parse(args)
            #expect(direct != nil, "\(args)")
            let theirs = Self.theirs(args)
            #expect(theirs != nil, "\(args)")
            #expect(direct == theirs, "\(args)")
        }
    }

    /// Each option and flag is given, with a value other than its default, in some list the
    /// comparison above covers (so a value the direct parse or `SendCommand.arguments` drops
    /// shows there), and the defaults are ArgumentParser's.
    @Test func everyOptionIsCompared() {
        for name in SendDirectParse.valueOptions + SendDirectParse.flags {
            #expect(Self.taken.contains { $0.contains(name) }, "\(name)")
        }
        let defaults = SendArguments(pool: PoolNames(pool: "/p"), target: 2, to: "/s.tbs")
        #expect(Self.theirs(Self.p) == defaults)
        let all = Self.taken.compactMap { SendDirectParse.parse($0) }
        let fields: [(String, (SendArguments) -> AnyHashable?)] = [
            ("pool", { $0.pool.pool }), ("metadata", { $0.pool.metadata }), ("data", { $0.pool.data }),
            ("dmPool", { $0.pool.dmPool }), ("thinPool", { $0.pool.thinPool }), ("lv", { $0.pool.lv }),
            ("from", { $0.from }), ("target", { $0.target }), ("to", { $0.to }), ("asDevice", { $0.asDevice }),
            ("tokenFile", { $0.network.tokenFile }), ("endpoint", { $0.network.endpoint }),
            ("partSize", { $0.network.partSize.bytes }), ("caFile", { $0.network.caFile }), ("retries", { $0.network.retries }),
            ("connectTimeout", { $0.network.connectTimeout }), ("stallTimeout", { $0.network.stallTimeout }),
            ("level", { $0.level }), ("threads", { $0.threads }), ("liveMetadata", { $0.liveMetadata }),
            ("baseDigest", { $0.baseDigest }), ("resumeFrom", { $0.resumeFrom }), ("size", { $0.size?.bytes }),
            ("force", { $0.force }), ("encryptKey", { $0.key.encryptKey }), ("passphraseFile", { $0.key.passphraseFile }),
            ("json", { $0.output.json }), ("quiet", { $0.output.quiet }),
        ]
        for (name, field) in fields {
            #expect(all.contains { field($0) != field(defaults) }, "\(name) never differs from its default")
        }
    }

    /// `-m` is ArgumentParser's alone, and `SendCommand.arguments` hands its value on (what
    /// `SendArguments.run` reads the metadata through).
    @Test func metadataSnapComesFromArgumentParser() {
        #expect(Self.theirs(Self.p)?.metadataSnap == nil)
        #expect(Self.theirs(Self.p + ["-m"])?.metadataSnap == .held)
        #expect(Self.theirs(Self.p + ["--metadata-snap", "5"])?.metadataSnap == .block(5))
        #expect(Self.theirs(Self.p + ["-m", "x"]) == nil)  // MetadataSnapOptions.validate
        #expect(Self.theirs(Self.p + ["-m", "--live-metadata"]) == nil)  // SendCommand.validate
        #expect(MetadataSnapChoice.block(5).mode == .held(block: 5))
        #expect(MetadataSnapChoice.held.mode == .held(block: nil))
    }

    /// The validations the direct parse runs are ArgumentParser's: a list ArgumentParser refuses
    /// with a message, set into `SendArguments` without checks, fails `validate()` with the same one.
    @Test func validationMessagesAreArgumentParsers() {
        let refused: [[String]] = [
            Self.p + ["--from", "2"], Self.p + ["--base-digest", Self.digest], Self.p + ["--from", "1", "--base-digest", "xyz"],
            ["send", "--pool", "/p", "--to", "x"], ["send", "--snap", "1", "--to", "x"], ["send", "--metadata", "/m", "--snap", "1", "--to", "x"],
            Self.p + ["--metadata", "/m", "--data", "/d"], Self.p + ["--encrypt-key", "/k", "--passphrase-file", "/f"],
            Self.p + ["-m", "x"], Self.p + ["--live-metadata", "-m", "5"],
        ]
        for args in refused {
            let message: String
            do {
                _ = try RootCommand.parseAsRoot(args)
                Issue.record("ArgumentParser took \(args)")
                continue
            } catch {
                message = RootCommand.message(for: error)
            }
            // The same list with the checks skipped: the one the direct parse validates.
            var unchecked = SendArguments(to: "x")
            var i = 1
            while i < args.count {
                if args[i] == "--live-metadata" {
                    unchecked.liveMetadata = true
                    i += 1
                    continue
                }
                let v = args[i + 1]
                switch args[i] {
                case "-m": unchecked.metadataSnap = MetadataSnapChoice(argument: v)
                case "--pool": unchecked.pool.pool = v
                case "--metadata": unchecked.pool.metadata = v
                case "--data": unchecked.pool.data = v
                case "--snap": unchecked.target = UInt64(v)
                case "--from": unchecked.from = UInt64(v)
                case "--to": unchecked.to = v
                case "--base-digest": unchecked.baseDigest = v
                case "--encrypt-key": unchecked.key.encryptKey = v
                case "--passphrase-file": unchecked.key.passphraseFile = v
                default: Issue.record("\(args[i])")
                }
                i += 2
            }
            #expect(throws: (any Error).self, "\(args)") { try unchecked.validate() }
            do { try unchecked.validate() } catch {
                #expect(message.contains(RootCommand.message(for: error)), "\(args): \(message)")
            }
        }
    }

    @Test func everythingElseIsLeftToArgumentParser() {
        for args in Self.declined {
            #expect(SendDirectParse.parse(args) == nil, "\(args)")
        }
    }

    /// The direct parse knows every option `send --help` lists but `-m`, and no other: an option
    /// added to `send` (or one of its groups) fails here until the direct parse sets it too.
    @Test func knowsEveryOptionOfSend() {
        guard var listed = ReceiveDirectParseTests.optionsListed(by: SendCommand.self) else { return }
        #expect(listed.isSuperset(of: ["-m", "--metadata-snap"]), "\(listed)")
        // ArgumentParser's own (the root's version), and -m with its optional value: left to it.
        listed.subtract(["-h", "--help", "--version", "-m", "--metadata-snap"])
        let known = Set(SendDirectParse.valueOptions + SendDirectParse.flags)
        #expect(listed == known, "listed by --help only: \(listed.subtracting(known)); known only: \(known.subtracting(listed))")
    }
}
