#include <stdio.h>
#include "CFuzzDriver.h"

/* Plain `swift build` links this stub so the fuzz executables build everywhere; built with
   -sanitize=fuzzer, libFuzzer's own definition wins (see docs/RELIABILITY.md, "Fuzzing"). */
__attribute__((weak)) int LLVMFuzzerRunDriver(int *argc, char ***argv, int (*cb)(const uint8_t *, size_t)) {
    (void)argc; (void)argv; (void)cb;
    fprintf(stderr, "not built with -sanitize=fuzzer: run scripts/fuzz.sh\n");
    return 2;
}
