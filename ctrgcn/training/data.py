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
    else:
        raise InputError(f"dataset must be 'nwucla' or 'ntu', got {cfg['dataset']!r}")
    return subset(train, cfg["train_subset"], cfg["repeat"] if cfg["dataset"] == "nwucla" else 1), \
        subset(val, cfg["val_subset"], 1)


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
