"""``python -m ctrgcn convert IN OUT [--dtype float16|int8] [--onnx]``: any weight file ctrgcn reads
(own file, PyTorch checkpoint, .pdparams, Paddle inference model, .npz) -> the project's file in a
storage dtype, or an ONNX model."""
from __future__ import annotations

import argparse
import os
from typing import List, Optional, Sequence

import ctrgcn


def class_names(spec: str) -> List[str]:
    """'nwucla' / 'ntu60' / a text file of one name per line -> list of names."""
    known = {"nwucla": ctrgcn.NWUCLA_CLASSES, "ntu60": ctrgcn.NTU60_CLASSES}
    if spec in known:
        return list(known[spec])
    try:
        with open(spec, encoding="utf-8") as f:
            return [line.strip() for line in f if line.strip()]
    except OSError as exc:
        raise ctrgcn.FileError(f"--classes: cannot read {spec!r} ({exc.strerror}); or use nwucla / ntu60") from None


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Convert as the arguments say; the exit status (0, or 1 when ONNX export lacks onnx)."""
    parser = argparse.ArgumentParser(prog="python -m ctrgcn convert", description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("input", help="weight file (or a Paddle inference model's prefix)")
    parser.add_argument("output", help="output path")
    parser.add_argument("--dtype", choices=("float32", "float16", "int8"), default="float32",
                        help="storage dtype of the written ctrgcn file (default float32)")
    parser.add_argument("--keep-bn", action="store_true",
                        help="float16 / int8: store the BatchNorms as trained instead of folded into the convolutions, "
                             "so that training can start from the file (fine-tuning)")
    parser.add_argument("--onnx", action="store_true", help="write an ONNX model instead (float32)")
    parser.add_argument("--opset", type=int, default=17, help="ONNX opset (default 17)")
    parser.add_argument("--graph", default=None, help="'ntu' or 'ucla' when the joint count does not tell")
    parser.add_argument("--classes", default=None, metavar="nwucla|ntu60|FILE",
                        help="class names to store: NW-UCLA's ten, NTU-60's, or a text file with one name per line")
    args = parser.parse_args(argv)
    if args.onnx and args.dtype != "float32":
        parser.error("--onnx writes float32 weights; drop --dtype")
    if os.path.abspath(args.input) == os.path.abspath(args.output):
        parser.error("the output would overwrite the input")
    model = ctrgcn.load(args.input, graph=args.graph)
    if args.classes:
        model.classes = class_names(args.classes)
    if args.onnx:
        try:
            model.export_onnx(args.output, opset=args.opset)
        except ImportError as exc:
            print(f"error: {exc}")
            return 1
    else:
        model.save(args.output, dtype=args.dtype, fold_bn=not args.keep_bn)
    kind = "onnx" if args.onnx else args.dtype + (", BatchNorms kept" if args.keep_bn and args.dtype != "float32" else "")
    print(f"{model.variant}: {args.input} -> {args.output} ({kind}, {os.path.getsize(args.output):,} bytes)")
    return 0
