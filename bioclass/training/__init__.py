"""Supervised training: augmentations, EMA, learning-rate schedule and the training loop."""
