import CFuzzDriver
#if canImport(Glibc)
import Glibc
#endif

// libFuzzer target: the stream decoder (docs/RELIABILITY.md, "Fuzzing"). SwiftPM's own `main`
// overrides libFuzzer's, so main.swift starts the driver itself.
var argc = CommandLine.argc
var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = CommandLine.unsafeArgv
exit(LLVMFuzzerRunDriver(&argc, &argv) { data, size in
    guard let data else { return 0 }
    return fuzzStream(data, size)
})
