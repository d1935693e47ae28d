"""Lethe's core: plain Python + torch, importable and testable without ZenML."""
