import ArgumentParser

/// A subcommand's argument list in its plain form, for the parses that skip ArgumentParser's
/// reflection (`ReceiveDirectParse`, `SendDirectParse`): after the subcommand's name, each element
/// is one of the command's option names followed by a value that does not begin with `-` (a lone
/// `-` is a value: stdin or stdout), or one of its flags, each option at most once under any of
/// its names. Anything else (`--opt=value`, a repeated option, an unknown word, a help or version
/// request) gives nil, and ArgumentParser parses the list as before.
struct PlainArgumentList {
    /// The options given, by their first name (`-q` is `--quiet`, `--key` is `--encrypt-key`);
    /// a flag's value is nil.
    private var given: [(name: String, value: String?)] = []

    // The names of the option groups the direct parses share, every spelling. (Arrays, not sets
    // or dictionaries: their first use costs more than these few comparisons.)
    static let poolOptions = ["--pool", "--metadata", "--data", "--dm-pool", "--thin-pool", "--lv"]
    static let networkOptions = ["--token-file", "--endpoint", "--part-size", "--ca-file", "--retries", "--connect-timeout", "--stall-timeout"]
    static let keyOptions = ["--encrypt-key", "--key", "--passphrase-file"]
    static let reportFlags = ["--json", "--quiet", "-q"]

    /// Why a value was not taken: it did not convert, or a `validate()` failed.
    struct Declined: Error {}

    /// `arguments` (the whole list, `command` first) taken apart, or nil: see above.
    init?(_ arguments: [String], command: String, valueOptions: [String], flags: [String]) {
        guard arguments.first == command else { return nil }
        var i = 1
        while i < arguments.count {
            let spelt = arguments[i]
            let isFlag = flags.contains(spelt)
            guard isFlag || valueOptions.contains(spelt) else { return nil }
            let name = spelt == "-q" ? "--quiet" : spelt == "--key" ? "--encrypt-key" : spelt
            guard !given.contains(where: { $0.name == name }) else { return nil }
            if isFlag {
                given.append((name, nil))
                i += 1
                continue
            }
            guard i + 1 < arguments.count else { return nil }
            let v = arguments[i + 1]
            guard v == "-" || (!v.isEmpty && !v.hasPrefix("-")) else { return nil }
            given.append((name, v))
            i += 2
        }
    }

    /// The value of the option first named `name`, nil when not given.
    func value(_ name: String) -> String? { given.first { $0.name == name }?.value }

    /// Whether the flag first named `name` was given.
    func flag(_ name: String) -> Bool { given.contains { $0.name == name } }

    /// The value of `name` converted by the `init?(argument:)` ArgumentParser uses; nil when not
    /// given; `Declined` when it does not convert (ArgumentParser then reports it).
    func converted<T: ExpressibleByArgument>(_ name: String) throws(Declined) -> T? {
        guard let v = value(name) else { return nil }
        guard let t = T(argument: v) else { throw Declined() }
        return t
    }
}

extension PoolNames {
    /// `PoolOptions`' values from a plain list.
    init(_ list: PlainArgumentList) {
        self.init(pool: list.value("--pool"), metadata: list.value("--metadata"), data: list.value("--data"),
                  dmPool: list.value("--dm-pool"), thinPool: list.value("--thin-pool"), lv: list.value("--lv"))
    }
}

extension NetworkValues {
    /// `NetworkOptions`' values from a plain list (the defaults for those not given).
    init(_ list: PlainArgumentList) throws(PlainArgumentList.Declined) {
        tokenFile = list.value("--token-file")
        endpoint = list.value("--endpoint")
        caFile = list.value("--ca-file")
        partSize = try list.converted("--part-size") ?? partSize
        retries = try list.converted("--retries") ?? retries
        connectTimeout = try list.converted("--connect-timeout") ?? connectTimeout
        stallTimeout = try list.converted("--stall-timeout") ?? stallTimeout
    }
}

extension KeyNames {
    /// `KeyOptions`' values from a plain list.
    init(_ list: PlainArgumentList) {
        self.init(encryptKey: list.value("--encrypt-key"), passphraseFile: list.value("--passphrase-file"))
    }
}

extension ReportMode {
    /// `ReportOptions`' values from a plain list.
    init(_ list: PlainArgumentList) {
        self.init(json: list.flag("--json"), quiet: list.flag("--quiet"))
    }
}
