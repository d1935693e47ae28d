"""Per-step timestamps of a method's real code path, and the estimate at a longer step count.

At Stable Diffusion scale a CPU takes tens of seconds per training step, so the benchmarks run a few
steps and extrapolate. The clock timestamps the end of every step without changing the method's code:
training steps by a global optimizer hook (`optimizer.step()` of the optimizer with the most parameters), sampling steps by a
forward hook on the U-Net. With step durations d_1..d_k (d_1 from the start, so it holds the one-time
setup: copies of the text encoder, VAE encoding of the images, ...):

    steady = mean(d_2..d_k)        setup = d_1 - steady        tail = end - last step
    estimate(N) = setup + (d_1 - setup + d_2 + ... + d_k) * N / k + tail

With k == N the estimate is the measured time.
"""
from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch
from torch.optim.optimizer import register_optimizer_step_post_hook


def synchronize(device) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


@dataclass
class StepTimes:
    start: float
    steps: list[float] = field(default_factory=list)  # perf_counter at the end of each step
    end: float = 0.0

    @property
    def total_s(self) -> float:
        return self.end - self.start

    @property
    def durations(self) -> list[float]:
        marks = [self.start, *self.steps]
        return [b - a for a, b in zip(marks, marks[1:])]

    def split(self) -> tuple[float, float, float]:
        """(setup, steady seconds per step, tail). Needs two steps to tell setup from a step."""
        d = self.durations
        if not d:
            return self.total_s, 0.0, 0.0
        steady = sum(d[1:]) / (len(d) - 1) if len(d) > 1 else d[0]
        setup = max(d[0] - steady, 0.0) if len(d) > 1 else 0.0
        return setup, steady, self.end - self.steps[-1]

    def estimate_s(self, steps: int) -> float:
        """Seconds the same run would take with `steps` steps of the same kind."""
        k = len(self.steps)
        if k == 0 or k == steps:
            return self.total_s
        setup, _, tail = self.split()
        return setup + (self.steps[-1] - self.start - setup) * steps / k + tail


@contextmanager
def _marks(device, attach):
    """StepTimes of the block; `attach(mark)` installs `mark` as a hook and returns its handle."""
    synchronize(device)
    times = StepTimes(start=time.perf_counter())

    def mark(*hook_args):
        synchronize(device)
        times.steps.append(time.perf_counter())

    handle = attach(mark)
    try:
        yield times
    finally:
        handle.remove()
        synchronize(device)
        times.end = time.perf_counter()


@contextmanager
def optimizer_steps(device):
    """Times the training steps inside the block: the steps of the optimizer that trains the most parameters.
    A method may step others within a training step (method A's attackers, whose optimizer restarts with
    them); their steps are not training steps."""
    synchronize(device)
    times = StepTimes(start=time.perf_counter())
    marks: dict[int, list[float]] = {}
    sizes: dict[int, int] = {}

    def mark(optimizer, *hook_args):
        synchronize(device)
        marks.setdefault(id(optimizer), []).append(time.perf_counter())
        sizes[id(optimizer)] = sum(p.numel() for group in optimizer.param_groups for p in group["params"])

    handle = register_optimizer_step_post_hook(mark)
    try:
        yield times
    finally:
        handle.remove()
        synchronize(device)
        times.end = time.perf_counter()
        if marks:
            times.steps = marks[max(sizes, key=sizes.get)]


def unet_calls(unet):
    """Times every U-Net forward inside the block (one per sampling step with batched guidance)."""
    return _marks(unet.device, unet.register_forward_hook)
