// libFuzzer's driver (compiler-rt, linked by -sanitize=fuzzer): a harness's main calls it, because SwiftPM gives
// every executable a `main` of its own, so libFuzzer's `main` is never linked.
#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerRunDriver(int *argc, char ***argv, int (*UserCb)(const uint8_t *Data, size_t Size));
