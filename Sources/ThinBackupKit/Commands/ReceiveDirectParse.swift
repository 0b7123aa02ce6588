import ArgumentParser

/// `receive` parsed without ArgumentParser, for the argument lists a script runs every night
/// (`receive --pool P --from F --as N --quiet`; docs/BENCHMARKS.md, "Process start, sixth pass").
/// ArgumentParser builds `receive`'s argument set by reflection (`Mirror` over the
/// command and its five option groups), which instantiates its generic types by mangled name and
/// scans the executable's 8,000 conformance records for each new type: about 4 ms of CPU per run,
/// a tenth of an incremental receive. Building `ReceiveCommand()` and setting its options costs
/// another 0.7 ms (its property wrappers' generic types), so the values go into `ReceiveArguments`,
/// plain fields, which `ReceiveCommand.run` also runs.
///
/// Only plain lists are taken: each element is one of `receive`'s own option names followed by a
/// value that does not begin with `-` (a lone `-` is a value: stdin), or one of its flags, each
/// option at most once, the values converted by the same `init?(argument:)` ArgumentParser uses,
/// and every `validate()` passing. Anything else (`--opt=value`, a repeated option, an unknown
/// word, a help or version request, a value that does not convert or a validation error) gives
/// nil, and ArgumentParser parses the list as before, with its own errors and help.
/// `ReceiveDirectParseTests` compare the values built here with those of ArgumentParser's command
/// for each option, and check that this table names every option `receive --help` lists.
enum ReceiveDirectParse {
    /// `receive`'s options that take a value, by every name they are spelt with. (Arrays, not sets
    /// or dictionaries: their first use costs more than these few comparisons.)
    static let valueOptions: [String] = [
        "--pool", "--metadata", "--data", "--dm-pool", "--thin-pool", "--lv",
        "--from", "--as", "--origin-file", "--checkpoint", "--keep",
        "--token-file", "--endpoint", "--part-size", "--ca-file", "--retries", "--connect-timeout", "--stall-timeout",
        "--encrypt-key", "--key", "--passphrase-file",
    ]
    /// Its flags, by every name; `-q` is `--quiet`.
    static let flags: [String] = ["--resume", "--resume-token", "--json", "--quiet", "-q"]

    /// The command `arguments` (the whole list, `receive` first) name, or nil: see above.
    static func parse(_ arguments: [String]) -> ReceiveArguments? {
        guard arguments.first == "receive" else { return nil }
        var given: [(name: String, value: String?)] = []
        var i = 1
        while i < arguments.count {
            var name = arguments[i]
            if name == "-q" { name = "--quiet" }
            if name == "--key" { name = "--encrypt-key" }
            guard !given.contains(where: { $0.name == name }) else { return nil }
            if flags.contains(name) {
                given.append((name, nil))
                i += 1
                continue
            }
            guard valueOptions.contains(name), i + 1 < arguments.count else { return nil }
            let v = arguments[i + 1]
            guard v == "-" || (!v.isEmpty && !v.hasPrefix("-")) else { return nil }
            given.append((name, v))
            i += 2
        }
        func value(_ name: String) -> String? { given.first { $0.name == name }?.value }
        func flag(_ name: String) -> Bool { given.contains { $0.name == name } }

        func int(_ name: String, _ fallback: Int) -> Int? { value(name).map { Int(argument: $0) } ?? fallback }

        var r = ReceiveArguments()
        r.pool = PoolNames(pool: value("--pool"), metadata: value("--metadata"), data: value("--data"),
                           dmPool: value("--dm-pool"), thinPool: value("--thin-pool"), lv: value("--lv"))
        r.from = value("--from") ?? r.from
        r.network.tokenFile = value("--token-file")
        r.network.endpoint = value("--endpoint")
        r.network.caFile = value("--ca-file")
        guard let retries = int("--retries", r.network.retries), let connect = int("--connect-timeout", r.network.connectTimeout),
              let stall = int("--stall-timeout", r.network.stallTimeout) else { return nil }
        r.network.retries = retries
        r.network.connectTimeout = connect
        r.network.stallTimeout = stall
        if let v = value("--part-size") {
            guard let s = ByteSize(argument: v) else { return nil }
            r.network.partSize = s
        }
        if let v = value("--as") {
            guard let d = UInt64(argument: v) else { return nil }
            r.asDevice = d
        }
        r.originFile = value("--origin-file")
        r.resume = flag("--resume")
        if let v = value("--checkpoint") {
            guard let s = ByteSize(argument: v) else { return nil }
            r.checkpoint = s
        }
        r.resumeToken = flag("--resume-token")
        if let v = value("--keep") {
            guard let k = Int(argument: v) else { return nil }
            r.keep = k
        }
        r.key = KeyNames(encryptKey: value("--encrypt-key"), passphraseFile: value("--passphrase-file"))
        r.output = ReportMode(json: flag("--json"), quiet: flag("--quiet"))
        guard (try? r.validate()) != nil else { return nil }
        return r
    }
}
