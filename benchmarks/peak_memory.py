"""Peak memory of a block of code: CUDA's max allocated bytes, or the process's resident set on a CPU.

The CPU figure is the whole process (model weights included), sampled every 20 ms by a thread,
because the kernel's own high-water mark (ru_maxrss) cannot be reset between measurements.
"""
from __future__ import annotations

import os
import threading
from contextlib import contextmanager
from dataclasses import dataclass

import torch

_PAGE = os.sysconf("SC_PAGE_SIZE")


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * _PAGE


@dataclass
class Peak:
    kind: str  # "cuda_max_allocated" or "cpu_rss"
    bytes: int = 0


@contextmanager
def peak_memory(device, interval_s: float = 0.02):
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        peak = Peak("cuda_max_allocated")
        try:
            yield peak
        finally:
            torch.cuda.synchronize()
            peak.bytes = torch.cuda.max_memory_allocated()
        return
    peak = Peak("cpu_rss", rss_bytes())
    stop = threading.Event()

    def sample():
        while not stop.wait(interval_s):
            peak.bytes = max(peak.bytes, rss_bytes())

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        yield peak
    finally:
        stop.set()
        sampler.join()
        peak.bytes = max(peak.bytes, rss_bytes())
