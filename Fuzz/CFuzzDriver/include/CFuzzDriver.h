#ifndef CFUZZDRIVER_H
#define CFUZZDRIVER_H
#include <stddef.h>
#include <stdint.h>
/* libFuzzer's driver (strong definition under -sanitize=fuzzer; a weak stub otherwise). */
int LLVMFuzzerRunDriver(int *_Nonnull argc, char *_Nullable *_Nonnull *_Nonnull argv,
                        int (*_Nonnull cb)(const uint8_t *_Nullable data, size_t size));
/* What each fuzz executable's main.swift calls: SwiftPM's own entry point replaces libFuzzer's
   main, so the executable starts the driver itself; runs `target` on every input (never a NULL
   pointer) and exits with the driver's status. */
_Noreturn void tb_run_fuzzer(int argc, char *_Nullable *_Nonnull argv,
                             int (*_Nonnull target)(const uint8_t *_Nonnull data, size_t size));
#endif
