"""``python -m ctrgcn predict INPUT... [--weights W | --ensemble [FAMILY]] [--top-k K] [--json]``: name
the action in skeleton recordings.

INPUT: an NTU RGB+D ``.skeleton``, an NW-UCLA ``.json``, or a ``.npy`` / ``.npz`` array of (T, V, C),
(T, M, V, C) or (C, T, V, M) (a sequences ``.npz`` gives one prediction per sequence). The model's own
preprocessing is applied (``ctrgcn/inputs.py``). Without ``--weights`` the shipped NW-UCLA model
(``nwucla_ctrgcn_joint``) is used where the inputs fit it; ``--ensemble`` fuses every shipped stream of
a family (default ``nwucla_ctrgcn``: joint, bone, motion, bone-motion, equal weights; each stream's
tuned-recipe model where one is shipped)."""
from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
from numpy.typing import NDArray

if TYPE_CHECKING:
    from ctrgcn.ensemble import Ensemble
    from ctrgcn.model import Model

# (label, array) of one recording, as ctrgcn.inputs.read_recordings gives them
Recording = Tuple[str, NDArray[Any]]


def _default_model(recordings: Sequence[Recording]) -> Model:
    """The shipped NW-UCLA model, when it is shipped and every recording fits it."""
    from ctrgcn import InputError, pretrained
    from ctrgcn.inputs import to_tmvc
    from ctrgcn.zoo import DEFAULT_MODEL
    for label, arr in recordings:
        try:
            to_tmvc(arr, 3, 20, repr(label))
        except InputError as exc:
            raise InputError(f"no --weights given: the shipped model {DEFAULT_MODEL} takes NW-UCLA skeletons "
                             f"(20 joints x 3 coordinates), but {exc}; pass --weights with a model for this input "
                             "(e.g. one trained on NTU RGB+D for .skeleton files)") from None
    if DEFAULT_MODEL not in pretrained():
        raise InputError(f"no --weights given and the shipped model {DEFAULT_MODEL} is not in this build "
                         f"(shipped: {', '.join(pretrained()) or 'none'}); pass --weights FILE")
    return pretrained(DEFAULT_MODEL)


def predict_recordings(model: Union[Model, Ensemble], recordings: Sequence[Recording], modality: str = "joint",
                       top_k: int = 5, preprocess: str = "auto") -> List[Dict[str, Any]]:
    """[{"input", "top": [{"class", "index", "probability"}]}] for (label, array) recordings. An
    ensemble takes the joints, prepared as its first model prepares them (each of its models then
    takes its own stream of them), so ``modality`` must be "joint"."""
    from ctrgcn.ensemble import Ensemble
    from ctrgcn.inputs import prepare, to_tmvc
    from ctrgcn import InputError
    prep = model.models[0] if isinstance(model, Ensemble) else model
    if prep is not model and modality != "joint":
        raise InputError(f"an ensemble takes joints (each model its own stream of them), not {modality!r}")
    xs = []
    for label, arr in recordings:
        try:
            x = to_tmvc(arr, prep.in_channels, prep.num_joints, repr(label))
            xs.append(prepare(prep, x, modality, preprocess=preprocess))
        except InputError as exc:
            text = str(exc)
            raise InputError(text if repr(label) in text else f"{label!r}: {text}") from None
    results = []
    k = max(1, min(int(top_k), model.num_classes))
    for (label, _), x in zip(recordings, xs):
        p = model.predict_proba(x[None])[0]
        order = np.argsort(-p, kind="stable")[:k]
        results.append({"input": label, "top": [{"class": model.class_name(i), "index": int(i),
                                                 "probability": float(p[i])} for i in order]})
    return results


def main(argv: Optional[Sequence[str]]) -> int:
    """Predict the inputs the arguments name and print the top classes; the exit status (0)."""
    ap = argparse.ArgumentParser(prog="python -m ctrgcn predict", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("inputs", nargs="+", metavar="INPUT", help=".skeleton, .json, .npy or .npz")
    which = ap.add_mutually_exclusive_group()
    which.add_argument("--weights", help="a weight file (any format ctrgcn.load reads) or a shipped model's name")
    which.add_argument("--ensemble", nargs="?", const="nwucla_ctrgcn", metavar="FAMILY",
                       help="fuse the shipped streams <FAMILY>_joint, _bone, _motion, _bone_motion (those shipped; "
                            "equal weights; a stream's tuned-recipe model where shipped; default family nwucla_ctrgcn)")
    ap.add_argument("--modality", default="joint", choices=("joint", "bone", "motion", "bone_motion"),
                    help="the input stream the model was trained on (default joint)")
    ap.add_argument("--preprocess", default="auto", choices=("auto", "nwucla", "crop"),
                    help="the evaluation transform: the NW-UCLA feeder's, or the 95%% crop resized to 64 frames "
                         "(NTU, Sequences); auto: nwucla for NW-UCLA models (default)")
    ap.add_argument("--top-k", type=int, default=5, help="classes shown per input (default 5)")
    ap.add_argument("--json", action="store_true", help="print one JSON list, one object per input")
    args = ap.parse_args(argv)
    from ctrgcn import load, pretrained_ensemble
    from ctrgcn.inputs import read_recordings
    recordings = [r for path in args.inputs for r in read_recordings(path)]
    model: Union[Model, Ensemble]
    if args.ensemble is not None:
        model = pretrained_ensemble(args.ensemble)
    elif args.weights is None:
        model = _default_model(recordings)
    else:
        model = load(args.weights)  # a file, or a shipped model's name
    results = predict_recordings(model, recordings, args.modality, args.top_k, args.preprocess)
    if args.json:
        print(json.dumps(results, indent=1))
        return 0
    for r in results:
        print(r["input"])
        for t in r["top"]:
            print(f"  {t['probability']:7.2%}  {t['class']}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
