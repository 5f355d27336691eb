"""The cascade network's path (photo resized to a size, crop by ``roi_align`` inside the network)
against TATL's own (crop taken from the original photo with ``LesionBBoxCrop``, resized, segmented, pasted back), on
the scored fold of a trained run or on every photo of another dataset (``--all``). Prints one table: ISIC Task 2
Jaccard of each path and their agreement.

    python benchmarks/tatl_cascade_paths.py --run bundles/tatl/experiments/tatl/TATL_wo_ImageNet/fold0 \
        --dataset_dir bundles/tatl/data/isic2018_synthetic
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from monai.data import MetaTensor
from tqdm import tqdm

from monai_skinattr.apps.tatl import TATLCascadeNet, cascade_settings, network_settings, split_datalists
from monai_skinattr.data import isic_datalist
from monai_skinattr.data.checks import read_2d
from monai_skinattr.metrics import isic_task2_score
from monai_skinattr.transforms import LesionBBoxCrop


def _resize(x: torch.Tensor, size) -> torch.Tensor:
    return F.interpolate(x[None], size=list(size), mode="bilinear", align_corners=False)[0]


@torch.no_grad()
def from_original(net: TATLCascadeNet, photo: torch.Tensor) -> dict[str, np.ndarray]:
    """TATL's path: lesion at the lesion grid, box scaled to the photo, crop taken from the photo itself."""
    lesion = net.lesion_net(_resize(photo, net.lesion_size)[None])[0] >= net.threshold
    cropper = LesionBBoxCrop(offset=net.offset)
    crop = cropper(MetaTensor(photo), lesion.float()) if net.crop else MetaTensor(photo)
    x = _resize(crop.as_tensor(), net.crop_size)[None]
    out = {}
    for name, sub in [("union", net.union_net), *net.attribute_nets.items()]:
        prob = _resize(sub(x)[0], crop.shape[1:])
        pred = MetaTensor((prob >= 0.5).float(), applied_operations=list(crop.applied_operations))
        out[name] = (cropper.inverse(pred) if net.crop else pred)[0].numpy() > 0.5
    return out


@torch.no_grad()
def through_network(net: TATLCascadeNet, photo: torch.Tensor, size) -> dict[str, np.ndarray]:
    """The bundle's path: photo resized to ``size``, the cascade network, probabilities resized back."""
    h, w = photo.shape[1:]
    maps = net(_resize(photo, size)[None])[0]
    maps = F.interpolate(maps[None], size=[h, w], mode="bilinear", align_corners=False)[0]
    return {name: maps[c].numpy() >= 0.5 for c, name in enumerate(net.channels) if c >= 2}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--run", required=True, help="a fold folder of a TATL run (holding models/ and eval/)")
    parser.add_argument("--dataset_dir", required=True)
    parser.add_argument("--fold", type=int, default=0)
    parser.add_argument("--num_folds", type=int, default=5)
    parser.add_argument("--all", action="store_true", help="score every training image (photos the run never saw)")
    args = parser.parse_args()
    settings = cascade_settings(Path(args.run) / "models")
    net = TATLCascadeNet(**network_settings(settings))
    net.load_state_dict(torch.load(Path(args.run) / "models" / "model.pt", map_location="cpu", weights_only=True))
    net.eval()
    if args.all:
        test = isic_datalist(args.dataset_dir, task=2, split="training")
    else:
        test = split_datalists(args.dataset_dir, args.fold, args.num_folds)["test"]
    attributes = net.attributes
    lesion = settings["lesion_size"]
    sizes = {"original photo": None, f"lesion grid {lesion}": lesion}
    photo_size = settings["photo_size"]
    sizes[f"photo_size {photo_size} (bilinear, not the bundle's antialiased sampling)"] = photo_size
    truths = {a: [read_2d(e[a]) for e in test] for a in attributes}
    preds: dict[str, dict[str, list]] = {"TATL (crop from the photo)": {a: [] for a in attributes}}
    preds.update({f"network @ {k}": {a: [] for a in attributes} for k in sizes})
    for entry in tqdm(test, desc="cascade paths"):
        photo = torch.from_numpy(read_2d(entry["image"]).astype(np.float32) / 255).permute(2, 0, 1)
        ref = from_original(net, photo)
        for a in attributes:
            preds["TATL (crop from the photo)"][a].append(ref[a])
        for key, size in sizes.items():
            maps = through_network(net, photo, size or photo.shape[1:])
            for a in attributes:
                preds[f"network @ {key}"][a].append(maps[a])
    reference = preds["TATL (crop from the photo)"]
    where = f"all of {args.dataset_dir}" if args.all else f"fold {args.fold} of {args.dataset_dir}"
    print(f"\n{len(test)} photos ({where}), networks of {args.run}\n")
    print("| path | macro Jaccard vs truth | micro Jaccard vs truth | Jaccard with TATL's path (micro) |")
    print("|---|---:|---:|---:|")
    for label, masks in preds.items():
        s = isic_task2_score(truths, masks)
        agree = isic_task2_score(reference, masks)["micro_average"]["jaccard"]
        print(f"| {label} | {s['macro_average']['jaccard']:.4f} | {s['micro_average']['jaccard']:.4f} | {agree:.4f} |")


if __name__ == "__main__":
    main()
