import CFuzzDriver
#if canImport(Glibc)
import Glibc
#endif

// libFuzzer target: the receiver's request parsing (NIO's HTTP/1 decoder, then ReceiverRequest).
var argc = CommandLine.argc
var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = CommandLine.unsafeArgv
exit(LLVMFuzzerRunDriver(&argc, &argv) { data, size in
    guard let data else { return 0 }
    return fuzzHTTP(data, size)
})
