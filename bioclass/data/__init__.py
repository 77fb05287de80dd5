"""Labelled data: label tables, splits, duplicate detection, clip datasets and samplers."""
