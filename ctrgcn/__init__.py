"""ctrgcn: the CTR-GCN family of skeleton action recognition networks, on a C core.

    import ctrgcn
    model = ctrgcn.load("weights.npz")          # or ctrgcn.Model("CTRGCN_lightV2")
    logits = model(x)                           # x: float32 (N, C, T, V, M)
"""
from ctrgcn._blas import preload as _preload

_preload()
from ctrgcn._core import Error, FileError, InputError, ResourceError  # noqa: E402
from ctrgcn.model import VARIANTS, Model, Trainer, preset_spec  # noqa: E402
from ctrgcn.weights import load  # noqa: E402
from ctrgcn.preprocess import preprocess  # noqa: E402
from ctrgcn.bench import benchmark  # noqa: E402
from ctrgcn.training import train  # noqa: E402
from ctrgcn.skeletons import GRAPHS as graphs, Graph  # noqa: E402
from ctrgcn.classes import NTU60_CLASSES, NWUCLA_CLASSES  # noqa: E402
from ctrgcn.zoo import pretrained, pretrained_ensemble  # noqa: E402
from ctrgcn.stream import Stream, StreamPrediction  # noqa: E402
from ctrgcn.ensemble import Ensemble  # noqa: E402

from ctrgcn import cuda  # noqa: E402

__all__ = ["Error", "FileError", "InputError", "ResourceError", "VARIANTS", "Model", "Trainer", "preset_spec", "load", "preprocess",
           "benchmark", "train", "graphs", "Graph", "NTU60_CLASSES", "NWUCLA_CLASSES", "pretrained", "pretrained_ensemble",
           "Stream", "StreamPrediction", "Ensemble", "cuda"]
__version__ = "0.1.0"
