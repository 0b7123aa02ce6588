import CFuzzDriver
#if canImport(Glibc)
import Glibc
#endif

// Starts libFuzzer's driver (docs/RELIABILITY.md, "Fuzzing"): SwiftPM's own entry point replaces
// libFuzzer's main, so the executable calls LLVMFuzzerRunDriver itself.
var argc = CommandLine.argc
var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = CommandLine.unsafeArgv
exit(LLVMFuzzerRunDriver(&argc, &argv) { data, size in
    guard let data else { return 0 }
    return fuzzStream(data, size)
})
