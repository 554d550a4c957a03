"""Runner on CUDA with CUDA graphs vs the same specs on the CPU (real Fashion-MNIST subset)."""
import dataclasses, sys, time
sys.path.insert(0, ".")
import torch
from dropkit.runner import run
from dropkit.spec import RunSpec

torch.set_num_threads(8)
for method, protocol in (("forgetting", "strategy+drop"), ("el2n", "strategy"), ("el2n", "random+drop")):
    spec = RunSpec(dataset="fashion-mnist", model="cnn", protocol=protocol, density=0.5, method=method,
                   train_subset=6000, epochs=4, drop_epochs=(2, 3), query_epochs=1, query_seeds=2,
                   device="cuda")
    rows = {}
    for device in ("cuda", "cpu"):
        started = time.perf_counter()
        rows[device] = run(dataclasses.replace(spec, device=device))
        rows[device]["wall"] = time.perf_counter() - started
    for device, row in rows.items():
        print(f"{method:10s} {protocol:14s} {device:4s}: test acc {row['test_accuracy']:.4f} "
              f"worst {row['test_worst_class']:.4f} kept {row['num_kept']} counts {row['class_counts']} "
              f"{row['wall']:.1f} s", flush=True)
