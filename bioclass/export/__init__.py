"""`bioclass export`: a trained classifier as one ONNX or TorchScript file, front end included,
that runs without bioclass (onnxruntime, libtorch, an edge recorder).

Modules:
    metadata      what the file says about itself (classes, rate, window, scores), and reading it
    probe         the test signal every export is checked on
    module        the traced module: waveform in, logits out
    torchscript   trace, input check, extra file
    onnx_format   dynamo export, metadata_props, the onnxruntime check (optional packages)
    int8          static int8 quantization of an ONNX export, calibrated and checked on audio
    run           the procedure: load, prepare, export, compare, write
"""

from bioclass.export.metadata import read_metadata
from bioclass.export.run import EXPORT_FORMATS, ExportSummary, export_model

__all__ = ["EXPORT_FORMATS", "ExportSummary", "export_model", "read_metadata"]
