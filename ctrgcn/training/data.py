"""The datasets a training config names, and batches over them."""
import os

from ctrgcn._core import InputError


def make_datasets(cfg):
    """Train and val datasets. Their augmentation is a function of (seed, epoch, index) and the
    loader's order of (seed, epoch), so a resumed run draws exactly what an uninterrupted one would."""
    from ctrgcn import data
    seed = int(cfg["seed"])
    if cfg["dataset"] == "nwucla":
        root = cfg["data_root"] or default_ucla_root()
        train = data.NWUCLA(root, split="train", modality=cfg["modality"], repeat=int(cfg["repeat"]), seed=seed)
        val = data.NWUCLA(root, split="val", modality=cfg["modality"], seed=0)
    elif cfg["dataset"] == "ntu":
        train = data.NTUDataset(cfg["data_root"], split="train", modality=cfg["modality"], augment=True,
                                window=int(cfg["window"]), seed=seed)
        val = data.NTUDataset(cfg["data_root"], split="val", modality=cfg["modality"], augment=False,
                              window=int(cfg["window"]), seed=0)
    elif cfg["dataset"] == "sequences":
        if not cfg["data_root"]:
            raise InputError("dataset 'sequences' needs data_root: a sequences .npz file")
        args = dict(window=int(cfg["window"]), modality=cfg["modality"], graph=cfg["graph"])
        train = data.Sequences.from_npz(cfg["data_root"], split="train", seed=seed, **args)
        val = data.Sequences.from_npz(cfg["data_root"], split="val", **args)
    else:
        raise InputError(f"dataset must be 'nwucla', 'ntu' or 'sequences', got {cfg['dataset']!r}")
    return subset(train, cfg["train_subset"], cfg["repeat"] if cfg["dataset"] == "nwucla" else 1), \
        subset(val, cfg["val_subset"], 1)


def sequences_defaults(cfg):
    """What a sequences file decides unless the config sets it: graph, persons, channels, classes
    (and a 64-frame window)."""
    from ctrgcn.data.sequences import graph_of, read_sequences_npz
    if not cfg.get("data_root"):
        raise InputError("dataset 'sequences' needs data_root: a sequences .npz file")
    f = read_sequences_npz(cfg["data_root"])
    first = f["sequences"][0]
    graph, _ = graph_of(cfg.get("graph", f["edges"]), first.shape[2])
    K = len(f["classes"]) if f["classes"] is not None else int(f["labels"].max()) + 1
    found = dict(graph=graph, num_person=int(first.shape[1]), in_channels=int(first.shape[3]), num_classes=K,
                 window=64)
    return {k: v for k, v in found.items() if k not in cfg}


def default_ucla_root():
    here = os.path.dirname(os.path.abspath(__file__))
    # ctrgcn/training -> the checkout -> its parent, where ../shared lives beside the checkout
    return os.path.normpath(os.path.join(here, "..", "..", "..", "shared", "data", "nw-ucla", "all_sqe"))


class subset:
    """The first k distinct samples of a dataset (each of its repeats kept), for quick runs."""

    def __new__(cls, ds, k, repeat):
        if not k:
            return ds
        self = object.__new__(cls)
        base = len(ds) // max(int(repeat), 1)
        step = max(base // int(k), 1)
        picks = list(range(0, base, step))[:int(k)]
        self.index = [r * base + i for r in range(max(int(repeat), 1)) for i in picks]
        self.ds = ds
        self.classes = getattr(ds, "classes", None)
        return self

    def __len__(self):
        return len(self.index)

    def __getitem__(self, i):
        return self.ds[self.index[i]]

    def batch(self, indices, epoch=None):
        return self.ds.batch([self.index[int(i)] for i in indices], epoch)


def batches(ds, batch_size, shuffle, seed, drop_last):
    from ctrgcn import data
    return data.Loader(ds, batch_size, shuffle=shuffle, seed=seed, drop_last=drop_last)
