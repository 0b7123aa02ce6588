import CFuzzDriver

// Starts libFuzzer's driver on this target (docs/RELIABILITY.md, "Fuzzing").
tb_run_fuzzer(CommandLine.argc, CommandLine.unsafeArgv, fuzzMetadata)
