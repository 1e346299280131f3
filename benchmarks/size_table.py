"""File size and logit error of the project's file per variant and storage dtype.

For each of the four golden weight sets: save as float32 / float16 / int8, load back, and compare
logits with the float32 model on the golden eval inputs and on the real NTU sample
(``example_preprocess.npz`` ``cropped``). Errors: max |logit - float32 logit|, absolute and relative
to max |float32 logit|. Needs ../shared/golden.

    python benchmarks/size_table.py
"""
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

import ctrgcn

GOLDEN = Path(__file__).resolve().parents[2] / "shared" / "golden"
SETS = [("CTRGCN", "official/ntu_weights.npz", "official/ntu_eval.npz")] + [
    (v, f"paddlevideo/{v}_weights.npz", f"paddlevideo/{v}_eval.npz")
    for v in ("CTRGCN_light", "CTRGCN_lightV1", "CTRGCN_lightV2")]


def main():
    if not GOLDEN.is_dir():
        print(f"golden files not found at {GOLDEN}", file=sys.stderr)
        return 1
    sample = np.load(GOLDEN / "official" / "example_preprocess.npz")["cropped"][None]
    print(f"{'variant':<16}{'dtype':<9}{'bytes':>11}{'MB':>7}  {'golden err (rel)':>22}  {'NTU sample err (rel)':>24}"
          "  top-1 same")
    with tempfile.TemporaryDirectory() as tmp:
        for variant, weights, evalfile in SETS:
            model = ctrgcn.load(GOLDEN / weights)
            x = np.load(GOLDEN / evalfile)["x"]
            ref_g, ref_s = model(x), model(sample)
            for dtype in ("float32", "float16", "int8"):
                path = os.path.join(tmp, f"{variant}.{dtype}.ctrgcn")
                model.save(path, dtype=dtype)
                back = ctrgcn.load(path)
                out_g, out_s = back(x), back(sample)
                eg, es = np.abs(out_g - ref_g).max(), np.abs(out_s - ref_s).max()
                same = np.array_equal(out_g.argmax(1), ref_g.argmax(1)) and np.array_equal(out_s.argmax(1),
                                                                                           ref_s.argmax(1))
                size = os.path.getsize(path)
                print(f"{variant:<16}{dtype:<9}{size:>11,}{size / 1e6:>7.2f}  {eg:>9.3g} ({eg / np.abs(ref_g).max():8.2e})"
                      f"  {es:>11.3g} ({es / np.abs(ref_s).max():8.2e})  {'yes' if same else 'no'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
