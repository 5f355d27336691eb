"""Does TATL help the rare attributes? Stage 3 only vs Stages 1+2+3 on the synthetic ISIC data.

    python benchmarks/tatl_synthetic.py                       # 80 train / 40 validation images, 128x160
    python benchmarks/tatl_synthetic.py --n_train 200 --epochs 10 --workdir /tmp/tatl_bench

Runs the TATL pipeline bundle twice on the same synthetic data and prints one Markdown table of per-attribute
Jaccard on the validation split (ISIC 2018 Task 2 definition), rarest attribute last. Whatever it shows is the result.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import monai.bundle

from monai_skinattr.data.synthetic import ISIC2018_FREQUENCIES

STAGE3 = Path(__file__).resolve().parents[1] / "bundles" / "tatl_attribute_segmenters"
VARIANTS = {"Stage 3 only": [3], "Stages 1+2+3 (TATL)": [1, 2, 3]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workdir", default="tatl_benchmark")
    parser.add_argument("--n_train", type=int, default=80)
    parser.add_argument("--n_val", type=int, default=40)
    parser.add_argument("--size", type=int, nargs=2, default=(128, 160))
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    work = Path(args.workdir)
    data = work / "data" / "isic2018_synthetic"
    synthetic = {"n_train": args.n_train, "n_val": args.n_val, "size": list(args.size), "seed": args.seed}
    scores, minutes = {}, {}
    for name, stages in VARIANTS.items():
        out = work / "_".join(map(str, stages))
        start = time.time()
        monai.bundle.run(
            config_file=str(STAGE3 / "configs" / "pipeline.json"),
            bundle_root=str(STAGE3),
            workdir=str(out),
            dataset_dir=str(data),
            synthetic=synthetic,
            spatial_size=list(args.size),
            stages=stages,
            epochs={"lesion": args.epochs, "union": args.epochs, "attribute": args.epochs},
        )
        minutes[name] = (time.time() - start) / 60
        scores[name] = json.loads((out / "attribute_scores.json").read_text())
    attrs = sorted(ISIC2018_FREQUENCIES, key=ISIC2018_FREQUENCIES.get, reverse=True)
    print(
        f"\nSynthetic ISIC 2018: {args.n_train} training / {args.n_val} validation images, "
        f"{args.size[0]}x{args.size[1]}, {args.epochs} epochs per stage; Jaccard on the validation split\n"
    )
    print("| attribute (presence) | " + " | ".join(VARIANTS) + " |")
    print("|---|" + "---:|" * len(VARIANTS))
    for a in attrs:
        print(
            f"| {a} ({ISIC2018_FREQUENCIES[a]:.1%}) | "
            + " | ".join(f"{scores[v][a]['jaccard']:.4f}" for v in VARIANTS)
            + " |"
        )
    for key, label in (("macro_average", "macro average"), ("micro_average", "micro average (overall)")):
        print(f"| {label} | " + " | ".join(f"{scores[v][key]['jaccard']:.4f}" for v in VARIANTS) + " |")
    print("| wall time (min) | " + " | ".join(f"{minutes[v]:.1f}" for v in VARIANTS) + " |")


if __name__ == "__main__":
    main()
