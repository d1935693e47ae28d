"""Releases: the served model is the base plus every approved, non-withdrawn takedown, composed and verified together."""
