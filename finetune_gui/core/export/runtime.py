"""How every ONNX Runtime session of the app is made: verification, `predict`, the Export page and the benchmark.

The choices, measured with benchmarks/export_latency.py on a 2-core CPU shared with other work:
  graph optimisation  ORT_ENABLE_ALL: LayerNorm/Gelu/GEMM fusions (SkipLayerNormalization, BiasGelu, FusedMatMul)
  intra-op threads    the cores this process may use (os.sched_getaffinity), or the number asked for
  inter-op threads    1, sequential execution: these graphs are one chain of ops; a second pool only competes
  spinning off        session.intra_op.allow_spinning = 0. ORT's worker threads otherwise busy-wait for work
                      after each op and between calls; with as many threads as cores, any other busy process
                      (the GUI, a training run, PyTorch's own threads) then preempts them mid-op and a call
                      waits for the slowest thread. Off, BERT-family batch 32 ran in 433-464 ms against
                      562-857 ms with spinning, and batch 1 in 11-13 ms against 16-23 ms.
"""

from __future__ import annotations

import os
from pathlib import Path

SPINNING_KEY = "session.intra_op.allow_spinning"


def cpu_threads() -> int:
    """The CPU cores this process may run on (its affinity mask, else os.cpu_count())."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # not on Linux
        return max(1, os.cpu_count() or 1)


def session_options(threads: int | None = None):
    """onnxruntime.SessionOptions as described above; `threads` intra-op threads (default: cpu_threads())."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.intra_op_num_threads = int(threads) if threads else cpu_threads()
    options.inter_op_num_threads = 1
    options.add_session_config_entry(SPINNING_KEY, "0")
    options.log_severity_level = 3  # errors only: ORT's warnings are about its internals, not the user's model
    return options


def cpu_session(path: str | Path, threads: int | None = None):
    """An ONNX Runtime CPU InferenceSession for `path` with session_options(threads)."""
    import onnxruntime as ort

    return ort.InferenceSession(str(path), session_options(threads), providers=["CPUExecutionProvider"])
