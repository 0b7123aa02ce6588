/// `receive` parsed without ArgumentParser, for the argument lists a script runs every night
/// (`receive --pool P --from F --as N --quiet`; docs/BENCHMARKS.md, "Process start, sixth pass").
/// ArgumentParser builds `receive`'s argument set by reflection (`Mirror` over the
/// command and its five option groups), which instantiates its generic types by mangled name and
/// scans the executable's 8,000 conformance records for each new type: about 4 ms of CPU per run,
/// a tenth of an incremental receive. Building `ReceiveCommand()` and setting its options costs
/// another 0.7 ms (its property wrappers' generic types), so the values go into `ReceiveArguments`,
/// plain fields, which `ReceiveCommand.run` also runs.
///
/// Only plain lists are taken (`PlainArgumentList`): each element is one of `receive`'s own option
/// names followed by a value that does not begin with `-` (a lone `-` is a value: stdin), or one of
/// its flags, each option at most once, the values converted by the same `init?(argument:)`
/// ArgumentParser uses, and every `validate()` passing. Anything else (`--opt=value`, a repeated option, an unknown
/// word, a help or version request, a value that does not convert or a validation error) gives
/// nil, and ArgumentParser parses the list as before, with its own errors and help.
/// `ReceiveDirectParseTests` compare the values built here with those of ArgumentParser's command
/// for each option, and check that this table names every option `receive --help` lists.
enum ReceiveDirectParse {
    /// `receive`'s options that take a value, by every name they are spelt with.
    static let valueOptions: [String] = PlainArgumentList.poolOptions
        + ["--from", "--as", "--origin-file", "--checkpoint", "--keep"]
        + PlainArgumentList.networkOptions + PlainArgumentList.keyOptions
    /// Its flags, by every name; `-q` is `--quiet`.
    static let flags: [String] = ["--resume", "--resume-token"] + PlainArgumentList.reportFlags

    /// The command `arguments` (the whole list, `receive` first) name, or nil: see above.
    static func parse(_ arguments: [String]) -> ReceiveArguments? {
        guard let list = PlainArgumentList(arguments, command: "receive", valueOptions: valueOptions, flags: flags) else { return nil }
        var r = ReceiveArguments()
        do {
            r.pool = PoolNames(list)
            r.from = list.value("--from") ?? r.from
            r.network = try NetworkValues(list)
            r.asDevice = try list.converted("--as")
            r.originFile = list.value("--origin-file")
            r.resume = list.flag("--resume")
            r.checkpoint = try list.converted("--checkpoint")
            r.resumeToken = list.flag("--resume-token")
            r.keep = try list.converted("--keep")
            r.key = KeyNames(list)
            r.output = ReportMode(list)
            try r.validate()
        } catch {
            return nil
        }
        return r
    }
}
