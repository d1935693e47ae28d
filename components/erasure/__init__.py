"""Erasure methods (few-shot LoRA+TI, few-shot text-encoder ascent, closed-form multi-concept) behind one interface."""
