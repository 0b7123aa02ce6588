/// `send` parsed without ArgumentParser, as `receive` is (`ReceiveDirectParse`, which says why):
/// for the lists scripts run (`send --pool P --from 1 --snap 2 --base-digest D --to F --quiet`),
/// where ArgumentParser's reflection over `send` and its five option groups costs about 4 ms of CPU
/// before the send starts, of an incremental send's 70–90 ms.
///
/// Only plain lists are taken (`PlainArgumentList`), each option at most once, the values
/// converted by the same `init?(argument:)` ArgumentParser uses, `--to` given, and every
/// `validate()` passing. `-m`/`--metadata-snap` (a value or none) is not in the table, nor is a
/// negative `--level` (it begins with `-`): such lists, and anything else (`--opt=value`, a
/// repeated option, an unknown word, help, a value that does not convert, a validation error),
/// give nil, and ArgumentParser parses them as before, with its own errors and help.
/// `SendDirectParseTests` compare the values built here with those of ArgumentParser's command,
/// and check that this table names every option `send --help` lists but `-m`.
enum SendDirectParse {
    /// `send`'s options that take a value, by every name they are spelt with.
    static let valueOptions: [String] = PlainArgumentList.poolOptions
        + ["--from", "--snap", "--to", "--as", "--level", "--threads", "--base-digest", "--resume-from", "--size"]
        + PlainArgumentList.networkOptions + PlainArgumentList.keyOptions
    /// Its flags, by every name; `-q` is `--quiet`.
    static let flags: [String] = ["--live-metadata", "--force"] + PlainArgumentList.reportFlags

    /// The command `arguments` (the whole list, `send` first) name, or nil: see above.
    static func parse(_ arguments: [String]) -> SendArguments? {
        guard let list = PlainArgumentList(arguments, command: "send", valueOptions: valueOptions, flags: flags),
              let to = list.value("--to")
        else { return nil }
        var s = SendArguments(to: to)
        do {
            s.pool = PoolNames(list)
            s.from = try list.converted("--from")
            s.target = try list.converted("--snap")
            s.asDevice = try list.converted("--as")
            s.network = try NetworkValues(list)
            s.level = try list.converted("--level") ?? s.level
            s.threads = try list.converted("--threads")
            s.liveMetadata = list.flag("--live-metadata")
            s.baseDigest = list.value("--base-digest")
            s.resumeFrom = list.value("--resume-from")
            s.size = try list.converted("--size")
            s.force = list.flag("--force")
            s.key = KeyNames(list)
            s.output = ReportMode(list)
            try s.validate()
        } catch {
            return nil
        }
        return s
    }
}
