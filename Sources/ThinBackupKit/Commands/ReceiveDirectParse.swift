import ArgumentParser

/// `receive` parsed without ArgumentParser's parse, for the argument lists a script runs
/// every night (`receive --pool P --from F --as N --quiet`, docs/BENCHMARKS.md "Process start,
/// sixth pass"). ArgumentParser builds `receive`'s argument set by reflection (`Mirror` over the
/// command and its five option groups), which instantiates its generic types by mangled name and
/// scans the executable's 8,000 conformance records for each new type: about 4 ms of CPU per run,
/// a tenth of an incremental receive.
///
/// Only plain lists are taken: each element is one of `receive`'s own option names followed by a
/// value that does not begin with `-` (a lone `-` is a value: stdin), or one of its flags, each
/// option at most once, the values converted by the same `init?(argument:)` ArgumentParser uses,
/// and every `validate()` passing. Anything else (`--opt=value`, a repeated option, an unknown
/// word, a help or version request, a value that does not convert or a validation error) gives
/// nil, and ArgumentParser parses the list as before, with its own errors and help.
/// `ReceiveDirectParseTests` compare the command built here with ArgumentParser's for each option,
/// and check that this table names every option `receive --help` lists.
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
    static func parse(_ arguments: [String]) -> ReceiveCommand? {
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
        func size(_ name: String) -> ByteSize?? { value(name).map { ByteSize(argument: $0) } }

        var pool = PoolOptions()
        pool.pool = value("--pool")
        pool.metadata = value("--metadata")
        pool.data = value("--data")
        pool.dmPool = value("--dm-pool")
        pool.thinPool = value("--thin-pool")
        pool.lv = value("--lv")

        var network = NetworkOptions()
        network.tokenFile = value("--token-file")
        network.endpoint = value("--endpoint")
        switch size("--part-size") {
        case nil: network.partSize = ByteSize(bytes: 8 << 20)
        case let s??: network.partSize = s
        case .some(nil): return nil
        }
        network.caFile = value("--ca-file")
        guard let retries = int("--retries", 6), let connect = int("--connect-timeout", 30),
              let stall = int("--stall-timeout", 300) else { return nil }
        network.retries = retries
        network.connectTimeout = connect
        network.stallTimeout = stall

        var key = KeyOptions()
        key.encryptKey = value("--encrypt-key")
        key.passphraseFile = value("--passphrase-file")

        var output = ReportOptions()
        output.json = flag("--json")
        output.quiet = flag("--quiet")

        var c = ReceiveCommand()
        c.from = value("--from") ?? "-"
        switch value("--as").map({ UInt64(argument: $0) }) {
        case nil: c.asDevice = nil
        case let d??: c.asDevice = d
        case .some(nil): return nil
        }
        c.originFile = value("--origin-file")
        c.resume = flag("--resume")
        switch size("--checkpoint") {
        case nil: c.checkpoint = nil
        case let s??: c.checkpoint = s
        case .some(nil): return nil
        }
        c.resumeToken = flag("--resume-token")
        switch value("--keep").map({ Int(argument: $0) }) {
        case nil: c.keep = nil
        case let k??: c.keep = k
        case .some(nil): return nil
        }
        do {
            // ArgumentParser validates each option group as it decodes it, then the command.
            try pool.validate()
            try network.validate()
            try key.validate()
            try output.validate()
            c.pool = pool
            c.network = network
            c.key = key
            c.output = output
            try c.validate()
        } catch {
            return nil
        }
        return c
    }
}
