"""Thin ZenML steps over `components/` (validate, learn token, train, evaluate, register, gate)."""
