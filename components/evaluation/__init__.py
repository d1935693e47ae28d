"""Evaluation: forget and retain metrics, the recovery attack, the report, and the gate's decision."""
