"""ONNX Runtime as a benchmark contender: the same model exported with ctrgcn's exporter.

    run = make_onnx_runner(model, "/tmp/m.onnx", threads=1)
    logits = run(x)
"""
import numpy as np


def make_onnx_runner(model, path, threads):
    """Export ``model`` to ``path`` and return ``run(x) -> logits`` on an ONNX Runtime CPU session
    with ``threads`` intra-op threads (inter-op 1, sequential execution)."""
    import onnxruntime as ort

    model.export_onnx(path)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = int(threads)
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])

    def run(x):
        return session.run(["logits"], {"x": np.ascontiguousarray(x, dtype=np.float32)})[0]

    return run
