"""The recipe: a frozen dataclass tree describing one training run (what the YAML file holds)."""

from __future__ import annotations

from dataclasses import dataclass, field

from bioclass.recipe.vocab import FADE_SHAPES, NOISE_COLOURS


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
    unlabelled: list[str] = field(default_factory=list)  # folders/files of unlabelled audio
    labelled_per_class: int | None = None  # keep labels of at most N training clips per class
    labelled_fraction: float = 1.0  # keep labels of this share of training clips per class
    # Multi-label training on annotated recordings (windows at random offsets, multi-hot targets)
    annotations: list[str] = field(default_factory=list)  # tables or folders of tables
    reviewed: list[str] = field(default_factory=list)  # filled review.csv files (bioclass review)
    extent: str | None = None  # CSV file,start_time,end_time: the annotated stretches
    label_column: str | None = None  # Raven tables' label column (default: the usual names)
    label_map: dict[str, str | None] = field(default_factory=dict)  # old -> new label, or null
    min_overlap_seconds: float = 0.1  # a box this much inside a window makes it positive
    min_overlap_fraction: float = 0.5  # ... or this share of the box
    random_windows: float = 0.25  # share of a batch drawn anywhere in the annotated stretches


@dataclass(frozen=True)
class ModelSection:
    """Which architecture from the registry, and its regularisation."""

    name: str = "cnn10"
    dropout: float = 0.5  # before each fully connected layer of the head
    block_dropout: float = 0.2  # after each convolution block
    init_from: str | None = None  # checkpoint (e.g. pretrain's encoder.pt) to start from
    freeze_encoder: bool = False  # train only the last layer (linear evaluation)


@dataclass(frozen=True)
class AugmentSection:
    """MixUp and SpecAugment as in Pellegrini (2021), section 3.3."""

    mixup_alpha: float = 0.0  # 0 disables MixUp; the paper uses alpha < 1
    mixup_targets: str = "convex"  # convex (lambda-weighted) | union (max: both sounds are there)
    specaugment: bool = False
    time_stripes: int = 2  # at most this many time stripes per batch (0..n drawn)
    time_width: int = 16  # frames
    freq_stripes: int = 2
    freq_width: int = 8  # mel bins


@dataclass(frozen=True)
class FadeAugment:
    """CLAR fade in/out: each end fades over up to `max_fraction` of the clip."""

    prob: float = 0.0
    max_fraction: float = 0.5
    shapes: list[str] = field(default_factory=lambda: list(FADE_SHAPES))  # default: every shape


@dataclass(frozen=True)
class TimeMaskAugment:
    """CLAR time masking: one segment of up to `max_fraction` of the clip set to noise or 0."""

    prob: float = 0.0
    max_fraction: float = 0.125
    fill: str = "noise"  # noise (Gaussian at the clip's RMS) | zero


@dataclass(frozen=True)
class TimeShiftAugment:
    """CLAR time shift: roll the samples by up to `max_fraction` of the clip, either way."""

    prob: float = 0.0
    max_fraction: float = 0.5


@dataclass(frozen=True)
class NoiseAugment:
    """CLAR noise injection: white, pink or brown noise at an SNR drawn in [min, max] dB."""

    prob: float = 0.0
    colours: list[str] = field(default_factory=lambda: list(NOISE_COLOURS))  # default: every one
    min_snr_db: float = 3.0
    max_snr_db: float = 30.0


@dataclass(frozen=True)
class ScaleAugment:
    """SoundCLR random scaling: resample by a factor in [1/max_factor, max_factor]."""

    prob: float = 0.0
    max_factor: float = 1.25


@dataclass(frozen=True)
class TrimSilenceAugment:
    """SoundCLR: cut leading and trailing stretches quieter than `threshold_db` below the peak."""

    prob: float = 0.0
    threshold_db: float = 40.0
    frame_seconds: float = 0.02


@dataclass(frozen=True)
class PitchShiftAugment:
    """CLAR pitch shift by up to `max_semitones` either way, duration kept."""

    prob: float = 0.0
    max_semitones: float = 2.0


@dataclass(frozen=True)
class TimeStretchAugment:
    """CLAR time stretch (phase vocoder, pitch kept) by a rate in [min_rate, max_rate]."""

    prob: float = 0.0
    min_rate: float = 0.8
    max_rate: float = 1.25


@dataclass(frozen=True)
class WaveAugmentSection:
    """Waveform augmentations (CLAR, SoundCLR), drawn per clip in training; all off by default.

    Applied in the order: trim_silence, scale, pitch_shift, time_stretch, then the clip is
    fitted to its length (at a random offset when `random_pad_crop`), then fade, time_mask,
    time_shift, noise.
    """

    trim_silence: TrimSilenceAugment = field(default_factory=TrimSilenceAugment)
    scale: ScaleAugment = field(default_factory=ScaleAugment)
    pitch_shift: PitchShiftAugment = field(default_factory=PitchShiftAugment)
    time_stretch: TimeStretchAugment = field(default_factory=TimeStretchAugment)
    random_pad_crop: bool = False  # pad/crop at a random offset instead of at the end/centre
    fade: FadeAugment = field(default_factory=FadeAugment)
    time_mask: TimeMaskAugment = field(default_factory=TimeMaskAugment)
    time_shift: TimeShiftAugment = field(default_factory=TimeShiftAugment)
    noise: NoiseAugment = field(default_factory=NoiseAugment)


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
    unlabelled_ratio: float = 1.0  # unlabelled clips per labelled clip in a batch (clar)
    # Clips longer than audio.clip_seconds are scored window by window (validation, thresholds,
    # evaluate) and the windows pooled into one clip score.
    pooling: str = "mean_prob"  # mean_prob | max_prob | mean_logit | centre
    pooling_hop: float = 0.5  # windows start this fraction of a window apart
    # Model selection: the best model is the one whose metric, averaged over its last
    # `smoothing` validations, is highest (1: the single best validation).
    smoothing: int = 1
    # Grouped, stratified K-fold cross-validation picks the iteration count (and raw or EMA
    # weights), then the final model trains on all train+val clips (null: one split).
    cv_folds: int | None = None
    # Calibration fitted on the validation clips after model selection (see README):
    # shared (one temperature or one Platt map for all classes: decisions unchanged),
    # per_class (sigmoid models: a Platt map per class) or none.
    calibration: str = "shared"


@dataclass(frozen=True)
class LossSection:
    """The training objective (`bioclass train`).

    `auto` is the Pellegrini recipe: categorical cross-entropy, or binary cross-entropy when MixUp
    is on. The hybrids add an auxiliary term weighted by `alpha`:
    loss = alpha * auxiliary + (1 - alpha) * cross-entropy.
    """

    name: str = "auto"  # auto | ce | bce | supcon_hybrid | supcon_two_stage | ce_angular | clar
    alpha: float = 0.5  # weight of the contrastive / angular term (SoundCLR and ACL: 0.5)
    temperature: float = 0.1  # SupCon / NT-Xent temperature
    projection_dim: int = 64  # SoundCLR: linear projection to 64-d for SupCon
    margin: float = 0.5  # angular margin (radians) for ce_angular
    supcon_fraction: float = 0.5  # supcon_two_stage: share of iterations spent on SupCon


@dataclass(frozen=True)
class ResizedCropView:
    """Random resized crop of a log-mel patch: crop [min_scale, 1] of each axis, resize back."""

    prob: float = 1.0
    min_scale: float = 0.8


@dataclass(frozen=True)
class CompressionView:
    """Shrink the patch's dynamic range: x -> mean + r * (x - mean), r in [min_ratio, 1]."""

    prob: float = 0.5
    min_ratio: float = 0.6


@dataclass(frozen=True)
class GaussianNoiseView:
    """Add Gaussian noise with a standard deviation in [0, max_std] (normalised log-mel units)."""

    prob: float = 0.5
    max_std: float = 0.3


@dataclass(frozen=True)
class MaskView:
    """SpecAugment on one patch: 0..n stripes in time and frequency, widths up to the maxima."""

    prob: float = 0.0
    time_stripes: int = 2
    time_width: int = 10
    freq_stripes: int = 2
    freq_width: int = 8


@dataclass(frozen=True)
class ShiftView:
    """Shift the patch by up to `max_time_frames` / `max_freq_bins` (vacated cells = 0)."""

    prob: float = 0.0
    max_time_frames: int = 10
    max_freq_bins: int = 4


@dataclass(frozen=True)
class BlurView:
    """Gaussian blur of the patch with sigma in [min_sigma, max_sigma] cells."""

    prob: float = 0.0
    min_sigma: float = 0.1
    max_sigma: float = 1.5


@dataclass(frozen=True)
class ViewAugmentSection:
    """Per-patch augmentations of Fonseca et al. (2021), applied in this order.

    The paper's best policy is RRC + compression + Gaussian noise (on by default).
    """

    resized_crop: ResizedCropView = field(default_factory=ResizedCropView)
    compression: CompressionView = field(default_factory=CompressionView)
    noise: GaussianNoiseView = field(default_factory=GaussianNoiseView)
    mask: MaskView = field(default_factory=MaskView)
    shift: ShiftView = field(default_factory=ShiftView)
    blur: BlurView = field(default_factory=BlurView)


@dataclass(frozen=True)
class PretrainSection:
    """Self-supervised contrastive pretraining (`bioclass pretrain`).

    Optimisation settings (batch size, lr, iterations/epochs, schedule, eval_every) come from the
    train section; an epoch is as many pairs as the archive holds non-overlapping patch pairs.
    """

    archives: list[str] = field(default_factory=list)  # folders/files of unlabelled audio
    patch_seconds: float = 1.0  # Fonseca et al.: 101 frames of 10 ms
    sampling: str = "random"  # random | non_overlapping | same
    mixback_alpha: float = 0.05  # background energy <= alpha x foreground's; 0 = off
    loss: str = "ntxent"  # ntxent | acl
    temperature: float = 0.2
    acl_alpha: float = 0.3  # ACL = a * NT-Xent(z) + (1 - a) * angular margin(h)
    margin: float = 0.5  # angular margin (radians)
    projection_dim: int = 128
    projection_hidden: int | None = None  # None: the encoder's embedding width
    knn_k: int = 200
    probe_epochs: int = 100  # linear probe training epochs at each monitoring
    views: ViewAugmentSection = field(default_factory=ViewAugmentSection)


@dataclass(frozen=True)
class DistillSection:
    """Knowledge distillation (`bioclass distill`): the model learns the scores of trained
    teachers on every training window (labelled clips, and `data.unlabelled` audio) beside the
    labels' own loss."""

    teachers: list[str] = field(default_factory=list)  # classifier checkpoints (an ensemble)
    weight: float = 0.5  # share of the loss on the teachers' scores; the rest on the labels
    temperature: float = 1.0  # teacher and student logits are divided by it before comparing


@dataclass(frozen=True)
class Recipe:
    """A whole training recipe."""

    seed: int = 0
    audio: AudioSection = field(default_factory=AudioSection)
    data: DataSection = field(default_factory=DataSection)
    model: ModelSection = field(default_factory=ModelSection)
    augment: AugmentSection = field(default_factory=AugmentSection)
    train: TrainSection = field(default_factory=TrainSection)
    loss: LossSection = field(default_factory=LossSection)
    wave_augment: WaveAugmentSection = field(default_factory=WaveAugmentSection)
    pretrain: PretrainSection = field(default_factory=PretrainSection)
    distill: DistillSection = field(default_factory=DistillSection)


# Keys holding paths (or lists of paths), resolved against the recipe file's folder.
PATH_KEYS = (
    ("data", "root"),
    ("data", "labels_csv"),
    ("data", "audio_root"),
    ("data", "unlabelled"),
    ("data", "annotations"),
    ("data", "reviewed"),
    ("data", "extent"),
    ("model", "init_from"),
    ("pretrain", "archives"),
    ("distill", "teachers"),
)
LIST_PATH_KEYS = (
    ("data", "unlabelled"),
    ("data", "annotations"),
    ("data", "reviewed"),
    ("pretrain", "archives"),
    ("distill", "teachers"),
)
