"""The recipe: a frozen dataclass tree describing one training run (what the YAML file holds)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class AudioSection:
    """How clips are decoded and turned into log-mels (the front end lives in the model)."""

    sample_rate: int = 16000
    clip_seconds: float = 3.0
    n_fft: int = 1024
    hop_length: int = 320
    n_mels: int = 64
    f_min: float = 50.0
    f_max: float | None = None
    channel: int | None = None  # None: mix channels to mono (mean)


@dataclass(frozen=True)
class DataSection:
    """Where the labelled clips are and how they are split."""

    root: str | None = None  # layout (a): one sub-folder per class
    labels_csv: str | None = None  # layout (b): file,label[,split,group,start_time,end_time]
    audio_root: str | None = None  # folder the CSV's file column is relative to
    classes: list[str] | None = None  # fixes class order; labels outside it are an error
    background_label: str = "background"
    val_fraction: float = 0.2
    balanced: bool = True
    cache: bool = True  # decode every clip once into memory
    max_bad_fraction: float = 0.05  # unreadable files tolerated before training refuses


@dataclass(frozen=True)
class ModelSection:
    """Which architecture from the registry, and its regularisation."""

    name: str = "cnn10"
    dropout: float = 0.5  # before each fully connected layer of the head
    block_dropout: float = 0.2  # after each convolution block


@dataclass(frozen=True)
class AugmentSection:
    """MixUp and SpecAugment as in Pellegrini (2021), section 3.3."""

    mixup_alpha: float = 0.0  # 0 disables MixUp; the paper uses alpha < 1
    specaugment: bool = False
    time_stripes: int = 2  # at most this many time stripes per batch (0..n drawn)
    time_width: int = 16  # frames
    freq_stripes: int = 2
    freq_width: int = 8  # mel bins


@dataclass(frozen=True)
class TrainSection:
    """Optimisation, EMA and validation schedule."""

    batch_size: int = 32
    lr: float = 1e-3
    weight_decay: float = 0.0
    iterations: int | None = None
    epochs: int | None = None
    schedule: str = "constant"  # constant | cosine
    warmup_iterations: int = 0
    ema: bool = True  # keep and validate an exponential moving average of the weights
    ema_decay: float = 0.995
    ema_start: int = 15000
    eval_every: int = 1000
    metric: str = "uar"  # uar | map | accuracy
    num_workers: int = 0
    amp: bool = True  # CUDA only


@dataclass(frozen=True)
class Recipe:
    """A whole training recipe."""

    seed: int = 0
    audio: AudioSection = field(default_factory=AudioSection)
    data: DataSection = field(default_factory=DataSection)
    model: ModelSection = field(default_factory=ModelSection)
    augment: AugmentSection = field(default_factory=AugmentSection)
    train: TrainSection = field(default_factory=TrainSection)


METRICS = ("uar", "map", "accuracy")
SCHEDULES = ("constant", "cosine")
PATH_KEYS = (("data", "root"), ("data", "labels_csv"), ("data", "audio_root"))
