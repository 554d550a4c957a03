/* dropkit's MKL code-path pin (see dropkit/kernels.py): preloaded into a process
 * (LD_PRELOAD), these definitions take the place of the CPU-vendor checks of the MKL that
 * PyTorch links statically, so that MKL runs the code path it runs on AMD Zen processors on
 * every x86-64 processor with AVX2. On an AMD Zen processor they return what MKL's own checks
 * return (nothing changes there). MKL's CBWR and MKL_ENABLE_INSTRUCTIONS settings cannot select
 * this path on an Intel processor. */
int mkl_serv_intel_cpu_true(void) { return 0; }
int mkl_serv_intel_cpu(void) { return 0; }
int mkl_serv_cpuiszen(void) { return 1; }
