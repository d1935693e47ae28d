"""The toy world: a tiny, self-trained Stable-Diffusion-format world of coloured shapes.

It lets every code path that serves real checkpoints run and be tested offline on CPU.
"""
