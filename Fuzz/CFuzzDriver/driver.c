#include <stdio.h>
#include <stdlib.h>
#include "CFuzzDriver.h"

/* Plain `swift build` links this stub so the fuzz executables build everywhere; built with
   -sanitize=fuzzer, libFuzzer's own definition wins (see docs/RELIABILITY.md, "Fuzzing"). */
__attribute__((weak)) int LLVMFuzzerRunDriver(int *argc, char ***argv, int (*cb)(const uint8_t *, size_t)) {
    (void)argc; (void)argv; (void)cb;
    fprintf(stderr, "not built with -sanitize=fuzzer: run scripts/fuzz.sh\n");
    return 2;
}

static int (*fuzz_target)(const uint8_t *, size_t);

static int call_target(const uint8_t *data, size_t size) {
    static const uint8_t empty[1];
    return fuzz_target(data ? data : empty, size);
}

void tb_run_fuzzer(int argc, char **argv, int (*target)(const uint8_t *, size_t)) {
    fuzz_target = target;
    exit(LLVMFuzzerRunDriver(&argc, &argv, call_target));
}
