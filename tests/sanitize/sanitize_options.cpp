// Sanitizer run-time defaults, compiled into ropex and ropex_tests only when ROPEX_SANITIZE=ON
// (CMakeLists.txt). Each runtime reads its __*_default_options() before its environment variable, so
// ASAN_OPTIONS / UBSAN_OPTIONS / LSAN_OPTIONS still override any of these. Being in the binaries
// rather than in ctest's environment, they also reach the ropex processes the tests start (directly,
// through a shell or through Python) and a ropex run by hand from the sanitizer build.
//   protect_shadow_gap=0   the CUDA driver maps memory where ASan's shadow gap is protected and
//                          cudaGetDeviceCount then fails ("CUDA driver version is insufficient"):
//                          the usual setting for CUDA programs under ASan; CPU-only hosts lose nothing.
//   detect_leaks=1         LeakSanitizer at exit, with ROPEX_SANITIZE_DIR/lsan.supp (commented there).
//   halt_on_error / abort_on_error=0: the first report ends the process with a failing status, which
//                          the test (or the test that ran that ropex) sees.
//   UBSan: every check is also -fno-sanitize-recover; print_stacktrace=1 says where.
#ifndef ROPEX_SANITIZE_DIR
#error "ROPEX_SANITIZE_DIR (tests/sanitize) must be defined"
#endif

#define ROPEX_SANITIZE_EXPORT extern "C" __attribute__((visibility("default"), used, no_sanitize("address", "undefined")))

ROPEX_SANITIZE_EXPORT const char* __asan_default_options() {
  return "protect_shadow_gap=0:detect_leaks=1:halt_on_error=1:abort_on_error=0:print_summary=1"
         ":check_initialization_order=1:detect_stack_use_after_return=0:strict_init_order=0";
}

ROPEX_SANITIZE_EXPORT const char* __lsan_default_options() {
  return "suppressions=" ROPEX_SANITIZE_DIR "/lsan.supp:print_suppressions=0";
}

ROPEX_SANITIZE_EXPORT const char* __ubsan_default_options() {
  return "print_stacktrace=1:halt_on_error=1:print_summary=1:suppressions=" ROPEX_SANITIZE_DIR "/ubsan.supp";
}
