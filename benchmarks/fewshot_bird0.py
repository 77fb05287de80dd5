"""Few labels on a real set: does contrastive pretraining or a hybrid loss make them go further?

1. Pretrain an encoder (`bioclass pretrain`, NT-Xent with patch sampling and mix-back) on
   unlabelled audio: the Jura field archive (96 x 10 s, SM4) plus the train/devel songs of
   Bengalese finch Bird0 (their labels unused; the test songs are left out).
2. Train Bird0 syllable classifiers (9 syllables + background, 0.2 s clips, split by song) with
   1, 5 or 20 labelled clips per class, in seven ways: random init with ce / supcon_hybrid /
   clar (the other training clips as unlabelled data), and from the pretrained encoder with a
   linear probe (frozen encoder) or fine-tuning with ce / supcon_hybrid / clar.
3. Report test UAR / mAP and the wall time of every run.

No model selection on labels the few-label learner would not have: each run validates once, at
its end, and that final model is tested.

    python benchmarks/fewshot_bird0.py [--model cnn6] [--pretrain-iterations 400]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import pandas as pd
from bird0 import CLIP_SECONDS, DATA, cut_clips

from bioclass.evaluation.evaluate import evaluate_model
from bioclass.pretrain.loop import pretrain
from bioclass.recipe import recipe_from_dict
from bioclass.training.loop import train

FIELD = Path(__file__).resolve().parents[1] / "../shared/data/field_unlabeled"
AUDIO = {
    "sample_rate": 16000,
    "clip_seconds": CLIP_SECONDS,
    "n_fft": 512,
    "hop_length": 160,
    "n_mels": 64,
    "f_min": 50.0,
    "f_max": 8000.0,
}
# CLAR needs two different views of each clip: mild waveform augmentations for 0.2 s syllables.
CLAR_AUGMENT = {
    "fade": {"prob": 0.5, "max_fraction": 0.3},
    "time_mask": {"prob": 0.5, "max_fraction": 0.1},
    "noise": {"prob": 0.8, "min_snr_db": 10.0, "max_snr_db": 30.0},
}
SETTINGS = [  # (name, from pretrained encoder, loss, frozen encoder)
    ("random init, ce", False, "ce", False),
    ("random init, supcon_hybrid", False, "supcon_hybrid", False),
    ("random init, clar", False, "clar", False),
    ("pretrained, linear probe", True, "ce", True),
    ("pretrained, fine-tune ce", True, "ce", False),
    ("pretrained, fine-tune supcon_hybrid", True, "supcon_hybrid", False),
    ("pretrained, fine-tune clar", True, "clar", False),
]


def pretrain_encoder(args: argparse.Namespace, clips: pd.DataFrame, out: Path) -> Path:
    encoder = out / "encoder.pt"
    if encoder.is_file():
        return encoder
    songs = sorted(clips.loc[clips["split"] != "test", "file"].unique())
    recipe = recipe_from_dict(
        {
            "seed": args.seed,
            "audio": AUDIO,
            "data": {"labels_csv": str(out.parent / "clips_devel.csv"), "val_fraction": 0.3},
            "model": {"name": args.model, "dropout": 0.0, "block_dropout": 0.0},
            "train": {
                "batch_size": args.pretrain_batch,
                "lr": 1e-3,
                "iterations": args.pretrain_iterations,
                "schedule": "cosine",
                "warmup_iterations": 20,
                "eval_every": max(1, args.pretrain_iterations // 4),
                "num_workers": 1,
            },
            "pretrain": {
                "patch_seconds": CLIP_SECONDS,
                "sampling": args.sampling,
                "mixback_alpha": 0.05,
                "temperature": 0.2,
                "projection_dim": 128,
                "knn_k": 50,
                "probe_epochs": 200,
            },
        }
    )
    started = time.perf_counter()
    pretrain(recipe, [str(FIELD), *songs], out, device="cpu")
    print(f"pretraining: {time.perf_counter() - started:.0f} s", flush=True)
    return encoder


def run(
    args: argparse.Namespace,
    csv: Path,
    name: str,
    loss: str,
    init: Path | None,
    frozen: bool,
    per_class: int,
    out: Path,
) -> dict:
    recipe = recipe_from_dict(
        {
            "seed": args.seed,
            "audio": AUDIO,
            "data": {"labels_csv": str(csv), "balanced": True, "labelled_per_class": per_class},
            "model": {
                "name": args.model,
                "init_from": str(init) if init else None,
                "freeze_encoder": frozen,
            },
            "augment": {"specaugment": True, "time_width": 4, "freq_width": 8},
            "loss": {"name": loss, "alpha": 0.5, "temperature": 0.1 if loss != "clar" else 0.2},
            "wave_augment": CLAR_AUGMENT if loss == "clar" else {},
            "train": {
                "batch_size": 32,
                "lr": 1e-3,
                "iterations": args.iterations,
                "eval_every": args.iterations,
                "ema": False,
                "metric": "uar",
            },
        }
    )
    started = time.perf_counter()
    train(recipe, out, device="cpu", resume=(out / "last.pt").exists())
    wall = time.perf_counter() - started
    metrics, _, _ = evaluate_model(out / "model.pt", csv, split="test", device="cpu")
    return {
        "labels/class": per_class,
        "setting": name,
        "test_uar": metrics["uar"],
        "test_map": metrics["map"],
        "wall_s": round(wall),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("runs/fewshot_bird0"))
    parser.add_argument("--model", default="cnn6")
    parser.add_argument("--labels", type=int, nargs="+", default=[1, 5, 20])
    parser.add_argument("--iterations", type=int, default=300)
    parser.add_argument("--pretrain-iterations", type=int, default=400)
    parser.add_argument("--pretrain-batch", type=int, default=64)
    parser.add_argument("--sampling", default="random")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    args.out.mkdir(parents=True, exist_ok=True)
    clips = cut_clips(DATA.resolve(), args.seed)
    csv = args.out / "clips.csv"
    clips.to_csv(csv, index=False)
    # The pretraining monitor sees only devel clips (a grouped split of them), never test.
    clips[clips["split"] == "devel"].drop(columns="split").to_csv(
        args.out / "clips_devel.csv", index=False
    )
    encoder = pretrain_encoder(args, clips, args.out / f"pretrain_{args.sampling}")
    # Finished runs are kept in results.csv, so an interrupted benchmark goes on where it stopped.
    done = args.out / "results.csv"
    earlier = pd.read_csv(done).to_dict("records") if done.is_file() else []
    results = []
    for per_class in args.labels:
        for name, pretrained, loss, frozen in SETTINGS:
            tag = f"{per_class}_{name.replace(', ', '_').replace(' ', '-')}"
            kept = [r for r in earlier if (r["labels/class"], r["setting"]) == (per_class, name)]
            results.append(
                kept[0]
                if kept
                else run(
                    args,
                    csv,
                    name,
                    loss,
                    encoder if pretrained else None,
                    frozen,
                    per_class,
                    args.out / tag,
                )
            )
            print(results[-1], flush=True)
            pd.DataFrame(results).to_csv(args.out / "results.csv", index=False)
    table = pd.DataFrame(results)
    print(table.to_markdown(index=False, floatfmt=".3f"))
    wide = table.pivot(index="setting", columns="labels/class", values="test_uar")
    print(
        "\ntest UAR by labels per class\n"
        + wide.loc[[s[0] for s in SETTINGS]].to_markdown(floatfmt=".3f")
    )


if __name__ == "__main__":
    main()
