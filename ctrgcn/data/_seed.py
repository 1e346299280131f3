"""One 64-bit seed per (seed, epoch); the C side derives a stream per sample index from it."""

_MASK = (1 << 64) - 1


def mix_seed(seed: int, epoch: int) -> int:
    """A 64-bit seed for (seed, epoch), by splitmix64 finalisation."""
    z = (int(seed) * 0x9E3779B97F4A7C15 + (int(epoch) + 1) * 0xD1B54A32D192ED03) & _MASK
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK
    return z ^ (z >> 31)
