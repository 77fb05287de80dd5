"""Turning audio into model outputs, shared by `scan`, `embed` and `evaluate`.

Modules, in the order data flows through them:
    models   load checkpoints (alone or as an ensemble) and prepare them for inference
    stream   decode + resample a recording in bounded blocks; the sliding-window plan
    score    per-window class scores or embeddings of a recording (exact or fast mode)
    drift    how far bf16 or AMP moves a recording's first window scores from float32
    clips    class scores of labelled clips (validation, thresholds, `evaluate`)
"""
