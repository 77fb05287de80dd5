"""Evaluation: classification metrics and batched inference over labelled clips."""
