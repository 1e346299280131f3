"""What every dataset of ctrgcn.data shares: items are batches of one."""


class BatchedDataset:
    """A dataset whose C code builds whole batches (``batch(indices, epoch)``); ``ds[i]`` is the
    batch of sample i alone, so single items and batches always agree."""

    def __getitem__(self, i):
        i = int(i)
        if not -len(self) <= i < len(self):
            raise IndexError(f"index {i} out of range for {len(self)} samples")
        x, y = self.batch([i % len(self)])
        return x[0], int(y[0])
