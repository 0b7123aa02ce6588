import CFuzzDriver
#if canImport(Glibc)
import Glibc
#endif

// libFuzzer target: the metadata reader and checker (docs/RELIABILITY.md, "Fuzzing").
var argc = CommandLine.argc
var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = CommandLine.unsafeArgv
exit(LLVMFuzzerRunDriver(&argc, &argv) { data, size in
    guard let data else { return 0 }
    return fuzzMetadata(data, size)
})
