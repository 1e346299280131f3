"""Skeleton data: the NTU RGB+D raw pipeline (C), NW-UCLA, your own recordings (``Sequences``),
modalities, augmentations and a loader.

    from ctrgcn.data import NWUCLA, Loader
    ds = NWUCLA("../shared/data/nw-ucla", split="train", modality="bone")
    for x, y in Loader(ds, batch_size=16):   # x float32 (16, 3, 52, 20, 1)
        ...
"""
from ctrgcn.data.loader import Loader
from ctrgcn.data.modalities import (MODALITIES, NTU_BONE_PAIRS, UCLA_BONE_PAIRS, bone, bone_motion, modality,
                                    motion)
from ctrgcn.data.ntu import (NTUDataset, PreparedSample, Skeleton, parse_name, prepare_ntu, prepare_sample,
                             read_skeleton, to_paddle)
from ctrgcn.data.ucla import NWUCLA
from ctrgcn.data.sequences import Sequences, write_npz
from ctrgcn.data._pickle import load_labels

__all__ = ["Loader", "MODALITIES", "NTU_BONE_PAIRS", "UCLA_BONE_PAIRS", "bone", "bone_motion", "modality", "motion",
           "NTUDataset", "PreparedSample", "Skeleton", "parse_name", "prepare_ntu", "prepare_sample",
           "read_skeleton", "to_paddle", "NWUCLA", "load_labels", "Sequences", "write_npz"]
