"""The TATL cascade bundle's inference on real-size photos: time, peak memory and mask agreement of the full-resolution
path (each photo decoded in full and fed at its own size, TATL's crop from the original) against the default one (the
sampling training used: JPEGs decoded at a reduced scale and resized with antialiasing to ``photo_size``, predictions
resized back once per photo, overlays drawn at most 1024 px long). Prints one Markdown table.

    python benchmarks/data.py                       # ten photos at the sizes of the real ISIC masks, default networks
    python benchmarks/data.py --quick               # smoke test: two smaller photos, U-shape 96 x 128 networks
    python benchmarks/data.py --baseline_ref HEAD~1 # also run an earlier commit's code (git archive) as the baseline
    python benchmarks/data.py --repeats 2           # each configuration twice, the faster run shown

The photos are synthetic JPEGs (quality 90) at the sizes of the ten masks in
``../shared/realdata/isic_task1_masks/groundtruth`` (up to 6642 x 4420), each mask drawn as a textured dark lesion on
noisy skin; without that folder, an ellipse at the same sizes. The cascade has the bundle's default settings and random
weights, each network's output layer rescaled so its logits on the largest photo have median 0 and standard deviation
2: the masks then follow the lesion and its texture (untouched random networks give constant maps, and nothing to
compare). Such textured masks have far more boundary pixels than trained ones, so the mask differences are an upper
bound; the "yardstick" row shows how far the same masks move when the photos are merely re-saved at JPEG quality 95.
Each configuration runs the bundle's ``inference.json`` (``ConfigWorkflow``, the overrides shown) in a fresh
process; its time is that of ``evaluator.run()`` (networks built and loaded before), its memory the process's peak
resident size (``ru_maxrss``, model loading included), "photos" the peak while the photos ran (``VmHWM``, reset before
the first) above the resident size before it.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from common import header
from PIL import Image

from monai_skinattr.bundles import bundle_dir

REPO = Path(__file__).resolve().parents[1]
MASKS = REPO.parent / "shared" / "realdata" / "isic_task1_masks" / "groundtruth"
#: (height, width) of the ten real ISIC masks, for when their folder is absent
SIZES = [(704, 1057), (802, 919), (2016, 3024), (768, 1024), (768, 1024), (2000, 3008), (2848, 4288),
         (2848, 4288), (2848, 4288), (4420, 6642)]  # fmt: skip
QUICK_SIZES = [(768, 1024), (1000, 1500)]
#: inference.json fed each photo decoded in full at its own size, overlays at full size
FULL = {"preprocessing#transforms": "$monai_skinattr.apps.tatl.load_transforms(@load_keys)", "overlay_size": 0}
#: the default path but every JPEG decoded in full before the antialiased resize (no draft): the draft's own effect
FULL_DECODE = {
    "preprocessing#transforms": "$[monai_skinattr.transforms.LoadPhotod('image', size=@photo_size),"
    " monai.transforms.EnsureChannelFirstd('image'),"
    " monai.transforms.ScaleIntensityRanged('image', 0, 255, 0.0, 1.0, clip=True)]"
}
#: (name, overrides of inference.json, photo folder); the first is the baseline unless --baseline_ref is given
CONFIGS = [
    ("full resolution (decode, network input at the photo's size, overlay)", FULL, "photos"),
    ("yardstick: full resolution, photos re-saved at JPEG quality 95", FULL, "photos_q95"),
    ("photos decoded in full, then the antialiased resize to photo_size", FULL_DECODE, "photos"),
    (
        "default (training's sampling: draft decode, antialiased resize to photo_size; 1024 px overlay)",
        {},
        "photos",
    ),
]


def lesion_masks(quick: bool) -> list[tuple[str, np.ndarray]]:
    """``(id, boolean lesion mask)`` per photo: the real ISIC masks, else (or with ``quick``) ellipses."""
    if MASKS.is_dir() and not quick:
        files = sorted(MASKS.glob("*_segmentation.png"))
        return [(p.name.removesuffix("_segmentation.png"), np.asarray(Image.open(p)) > 0) for p in files]
    out = []
    for i, (h, w) in enumerate(QUICK_SIZES if quick else SIZES):
        y, x = np.ogrid[:h, :w]
        out.append((f"ISIC_{i:07d}", ((y - h / 2) / (0.35 * h)) ** 2 + ((x - w / 2) / (0.3 * w)) ** 2 < 1))
    return out


def write_photo(mask: np.ndarray, path: Path, seed: int) -> None:
    """A dermoscopy-like JPEG (quality 90): a dark textured lesion where ``mask`` is set, on noisy skin."""
    h, w = mask.shape
    rng = np.random.default_rng(seed)
    low = torch.from_numpy(rng.normal(0, 1, (1, 3, h // 64 + 2, w // 64 + 2)).astype(np.float32))
    texture = F.interpolate(low, size=(h, w), mode="bicubic", align_corners=False)[0].numpy()
    skin = np.array([205, 160, 140], np.float32)[:, None, None] + 10 * texture
    lesion = np.array([110, 70, 55], np.float32)[:, None, None] + 25 * texture
    photo = np.where(mask[None], lesion, skin) + rng.normal(0, 4, (1, h, w)).astype(np.float32)
    Image.fromarray(np.clip(photo, 0, 255).astype(np.uint8).transpose(1, 2, 0)).save(path, quality=90)


@torch.no_grad()
def calibrated_cascade(models_dir: Path, photo: Path, settings: dict) -> None:
    """A random-weights cascade with ``settings`` in ``models_dir`` (``model.pt``, ``cascade.json``), each network's
    output layer rescaled so its logits on ``photo`` have median 0 and standard deviation 2."""
    from monai_skinattr.apps.tatl import TATLCascadeNet, TATLSegmenter, network_settings
    from monai_skinattr.data.checks import draft

    torch.manual_seed(0)
    net = TATLCascadeNet(**network_settings(settings)).eval()
    with Image.open(photo) as im:
        rgb = np.array(draft(im, 1024).convert("RGB"), np.float32) / 255
    rgb = torch.from_numpy(rgb).permute(2, 0, 1)[None]
    for module in net.modules():
        if isinstance(module, TATLSegmenter):
            size = net.lesion_size if module in net.lesion_net.nets else net.crop_size
            logits = module(F.interpolate(rgb, size=size, mode="bilinear", align_corners=False))
            scale = 2 / logits.std().clamp(min=1e-12)
            module.net.head.weight.mul_(scale)
            module.net.head.bias.mul_(scale).sub_(logits.median() * scale)
    models_dir.mkdir(parents=True, exist_ok=True)
    torch.save(net.state_dict(), models_dir / "model.pt")
    (models_dir / "cascade.json").write_text(json.dumps(settings))


def _status_mb(field: str) -> float:
    """A memory field of ``/proc/self/status`` (``VmRSS``, ``VmHWM``), in MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def worker(job: dict) -> None:
    """In a fresh process: the bundle's inference with ``job``'s overrides, timed per photo; results to a JSON file."""
    sys.path.insert(0, job["root"])
    from ignite.engine import Events
    from monai.bundle import ConfigWorkflow

    wf = ConfigWorkflow(
        config_file=str(bundle_dir("tatl") / "configs" / "inference.json"),
        workflow_type="infer",
        logging_file=False,
        bundle_root=str(bundle_dir("tatl")),
        **job["overrides"],
    )
    wf.initialize()
    ids = [e["id"] for e in wf.parser.get_parsed_content("datalist")]
    starts: list[float] = []
    evaluator = wf.parser.get_parsed_content("evaluator")
    evaluator.add_event_handler(Events.GET_BATCH_STARTED, lambda _: starts.append(time.perf_counter()))
    rss_before = _status_mb("VmRSS")
    with contextlib.suppress(OSError):  # reset the peak resident size (VmHWM) to now: the photos' own peak
        Path("/proc/self/clear_refs").write_text("5")
    wf.run()
    starts.append(time.perf_counter())
    result = {
        "per_photo": dict(zip(ids, np.diff(starts).tolist(), strict=True)),
        "total": starts[-1] - starts[0],
        "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "run_peak_mb": _status_mb("VmHWM"),
        "before_mb": rss_before,
    }
    Path(job["result"]).write_text(json.dumps(result))


def run_config(root: Path, overrides: dict, work: Path, name: str, repeats: int = 1) -> dict:
    """One configuration, ``repeats`` times, each in a fresh process; the fastest run's results and output folder."""
    out = work / name
    job = {"root": str(root), "overrides": {**overrides, "output_dir": str(out), "resume": False}}
    job["result"] = str(work / f"{name}.json")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")])}
    runs = []
    for _ in range(repeats):
        subprocess.run([sys.executable, __file__, "--worker", json.dumps(job)], check=True, env=env, cwd=root)
        runs.append(json.loads(Path(job["result"]).read_text()))
    return {**min(runs, key=lambda r: r["total"]), "out": out}


def mask_difference(out: Path, baseline: Path) -> tuple[float, float]:
    """Fraction of pixels of all masks (lesion, union, attributes) that differ from the baseline's, and the largest
    fraction of one mask."""
    differ = total = 0
    worst = 0.0
    for path in sorted(baseline.glob("*/*.png")):
        if path.parent.name == "overlays":
            continue
        a, b = np.asarray(Image.open(path)) > 0, np.asarray(Image.open(out / path.parent.name / path.name)) > 0
        n = int((a != b).sum())
        differ, total, worst = differ + n, total + a.size, max(worst, n / a.size)
    return differ / total, worst


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--quick", action="store_true", help="two small photos, U-shape 96 x 128 networks only (a smoke test)"
    )
    parser.add_argument("--baseline_ref", default="", help="a git commit whose code runs first, as the baseline")
    parser.add_argument("--repeats", type=int, default=1, help="runs per configuration; the fastest is shown")
    parser.add_argument("--workdir", default="", help="keep photos, model and outputs here (default: a temp folder)")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(json.loads(args.worker))
    from monai_skinattr.apps.tatl import DEFAULT_SETTINGS

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(args.workdir or tmp)
        photos, models = work / "photos", work / "models"
        for folder in (photos, work / "photos_q95"):
            folder.mkdir(parents=True, exist_ok=True)
        sizes = {}
        for i, (image_id, mask) in enumerate(lesion_masks(args.quick)):
            write_photo(mask, photos / f"{image_id}.jpg", seed=i)
            with Image.open(photos / f"{image_id}.jpg") as im:
                im.save(work / "photos_q95" / f"{image_id}.jpg", quality=95)
            sizes[image_id] = mask.shape
        largest = max(sizes, key=lambda k: sizes[k][0] * sizes[k][1])
        settings = dict(DEFAULT_SETTINGS)
        if args.quick:
            settings.update(
                archs=["unet"], lesion_size=[96, 128], crop_size=[96, 128], offset=10, photo_size=[192, 256]
            )
        calibrated_cascade(models, photos / f"{largest}.jpg", settings)
        # batch 1 in every row, so each photo is timed (on a CPU the cascade runs one photo per pass anyway)
        common = {"dataset_dir": str(photos), "models_dir": str(models), "dataloader#batch_size": 1}
        rows = []  # (name, overrides shown, results)
        if args.baseline_ref:
            old = work / "baseline_code"
            old.mkdir(exist_ok=True)
            archive = subprocess.run(["git", "archive", args.baseline_ref], cwd=REPO, check=True, capture_output=True)
            subprocess.run(["tar", "-x", "-C", str(old)], input=archive.stdout, check=True)
            rows.append((f"commit {args.baseline_ref}", "none", run_config(old, common, work, "ref", args.repeats)))
        for i, (name, overrides, folder) in enumerate(CONFIGS):
            shown = " ".join(f"`--{k} {v}`" for k, v in overrides.items()) or "none"
            job = {**common, "dataset_dir": str(work / folder), **overrides}
            rows.append((name, shown, run_config(REPO, job, work, f"config{i}", args.repeats)))
        print(f"\n{header(('torch', 'monai', 'pillow'))}", end="")
        bundle = (
            "python -m monai.bundle run --bundle_root bundles/tatl --config_file bundles/tatl/configs/inference.json"
        )
        print(f"- each row: `{bundle} --dataset_dir PHOTOS --models_dir MODELS` + its overrides")
        h, w = sizes[largest]
        print(f"- {len(sizes)} synthetic JPEG photos, largest {largest} {w} x {h}; settings {json.dumps(settings)}\n")
        print(
            "| configuration | overrides | total (s) | largest photo (s) | peak memory (MB) | of which photos (MB) "
            "| speed-up total / largest | mask pixels differing from the first row | worst mask |"
        )
        print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
        base = rows[0][2]
        for name, shown, run in rows:
            differ, worst = mask_difference(run["out"], base["out"])
            print(
                f"| {name} | {shown} | {run['total']:.1f} | {run['per_photo'][largest]:.1f} | {run['peak_mb']:.0f} "
                f"| {run['run_peak_mb'] - run['before_mb']:.0f} | {base['total'] / run['total']:.2f}x / "
                f"{base['per_photo'][largest] / run['per_photo'][largest]:.2f}x "
                f"| {100 * differ:.3f}% | {100 * worst:.3f}% |"
            )


if __name__ == "__main__":
    main()
