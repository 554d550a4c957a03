"""Every benchmark script runs at its --quick size and ends with its target lines.

The numbers of a quick run are not meaningful (tiny sizes on a shared CPU); what is checked is
that the script works end to end and reports every target in the agreed form
``<name>: <value>x (target <t>x)``.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TARGET_LINE = re.compile(r"^(?P<name>[A-Za-z0-9_.-]+): (?P<value>[0-9]+(\.[0-9]+)?)x \(target (?P<target>[0-9]+(\.[0-9]+)?)x\)$")

EXPECTED = {
    "train_throughput.py": {"mlp_speedup_vs_dataloader", "mlp_speedup_vs_tensor_loop",
                            "cnn_speedup_vs_dataloader", "cnn_speedup_vs_tensor_loop"},
    "scores.py": {"grand_mlp_speedup", "grand_cnn_speedup"},
    "gpu.py": {"vgg16_dropkit_vs_dataloader", "fast_cifar10_sweep_within_1_gpu_hour"},
    "sweep.py": {"sweep_floor_over_wall", "sweep_cpu_utilisation"},
    "batch_gather.py": {"mlp_batch_gather_speedup", "cnn_batch_gather_speedup"},
    "sgd_update.py": {"mlp_foreach_sgd_speedup", "mlp_fused_sgd_speedup",
                      "cnn_foreach_sgd_speedup", "cnn_fused_sgd_speedup"},
    "step_anatomy.py": {f"{model}_{ratio}" for model in ("mlp", "cnn")
                        for ratio in ("step_over_flop_kernels", "all_kernels_over_flop_kernels",
                                      "step_over_all_kernels")},
}


@pytest.mark.parametrize("script", sorted(EXPECTED))
def test_benchmark_quick_run_reports_its_targets(script):
    completed = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / script), "--quick"],
        capture_output=True, text=True, timeout=600, cwd=ROOT,
        env={"OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin", "PYTHONUNBUFFERED": "1", "MPLBACKEND": "Agg"},
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    lines = completed.stdout.strip().splitlines()
    targets = {}
    for line in reversed(lines):
        match = TARGET_LINE.match(line.strip())
        if not match:
            break
        targets[match["name"]] = (float(match["value"]), float(match["target"]))
    assert targets, f"{script} printed no target lines at its end:\n{completed.stdout[-2000:]}"
    missing = EXPECTED[script] - set(targets)
    assert not missing, f"{script} did not report {missing}; reported {sorted(targets)}"
    for name, (value, target) in targets.items():
        assert value >= 0 and target > 0, f"{script}: {name} = {value}x (target {target}x)"
