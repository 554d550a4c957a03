

def test_a_one_worker_sweep_runs_here_and_leaves_this_processs_kernels_and_environment_alone(tmp_path):
    from dropkit.sweep import sweep

    store = ResultStore(tmp_path, "smoke")
    spec = RunSpec("gaussian", "linear", "random", 0.5, seed=0)
    sweep([spec], store, workers=1, run_function=record_kernels, progress=False)
    row = store.read(spec.cache_key)
    assert row["kernel_environment"] == kernels.kernel_environment()   # no pin variables set around the run
    assert row["mkl_code_path"] == kernels.mkl_code_path()
    assert row["cpu_capability"] == torch.backends.cpu.get_cpu_capability()
