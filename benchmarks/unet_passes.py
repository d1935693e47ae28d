"""Count U-Net passes: samples (batch rows) through its forward, and samples whose gradient flowed back.

The U-Net is nearly all of a takedown's compute at SD scale, so a stage's cost is its passes times the
seconds per pass measured on the device; counting by hooks sees what the real code path does (classifier-
free guidance's doubled batch, method A's several calls per step) without changing it.
"""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass


@dataclass
class UnetPasses:
    forward: int = 0
    backward: int = 0

    def scaled(self, factor: float) -> "UnetPasses":
        return UnetPasses(round(self.forward * factor), round(self.backward * factor))


@contextmanager
def counting_unet_passes(unet):
    passes = UnetPasses()

    def count_backward(rows: int):
        def hook(grad):
            passes.backward += rows
        return hook

    def on_forward(module, args, output):
        sample = output[0] if isinstance(output, tuple) else output.sample
        passes.forward += sample.shape[0]
        if sample.requires_grad:
            sample.register_hook(count_backward(sample.shape[0]))

    handle = unet.register_forward_hook(on_forward)
    try:
        yield passes
    finally:
        handle.remove()
