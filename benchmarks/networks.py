"""Size, FLOPs and CPU latency of every network, beside the nearest segmentation_models_pytorch model.

    python benchmarks/networks.py                 # batch 1, 384x512, 5 timed runs
    python benchmarks/networks.py --size 256 256 --repeats 3

Prints one Markdown table. smp columns read "-" when smp is not installed (``pip install segmentation-models-pytorch``)
or has no equivalent. FLOPs count a multiply-add as two operations (torch.utils.flop_counter).
"""

from __future__ import annotations

import argparse

import torch

from monai_skinattr.networks import (
    EffFormerISCF,
    EffLinkNet,
    EffUNet,
    FCDenseNet,
    MobileNetV2UNet,
    ProbabilityEnsemble,
    ResNet50AttentionUNet,
    SwinUNet,
    UNet,
)
from monai_skinattr.networks.profile import profile_network


def _smp(arch: str, encoder: str):
    try:
        import segmentation_models_pytorch as smp
    except ImportError:
        return None
    return getattr(smp, arch)(encoder_name=encoder, encoder_weights=None, in_channels=3, classes=1)


NETWORKS = [
    ("EffUNet (TATL U)", lambda: EffUNet(), ("Unet", "efficientnet-b0")),
    ("EffLinkNet (TATL Link)", lambda: EffLinkNet(), ("Linknet", "efficientnet-b0")),
    ("ProbabilityEnsemble(U + Link)", lambda: ProbabilityEnsemble([EffUNet(), EffLinkNet()]), None),
    ("UNet (thesis basic)", lambda: UNet(in_channels=3), None),
    ("ResNet50AttentionUNet", lambda: ResNet50AttentionUNet(), ("Unet", "resnet50")),
    ("SwinUNet", lambda: SwinUNet(in_channels=3), None),
    ("MobileNetV2UNet", lambda: MobileNetV2UNet(), ("Unet", "mobilenet_v2")),
    ("EffFormerISCF", lambda: EffFormerISCF(), None),
    ("FCDenseNet103", lambda: FCDenseNet(out_channels=1), None),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", type=int, nargs=2, default=(384, 512), metavar=("H", "W"))
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    size = tuple(args.size)
    print(f"batch 1, {size[0]}x{size[1]}, CPU, {torch.get_num_threads()} threads, torch {torch.__version__}\n")
    columns = ["network", "params (M)", "GFLOPs", "latency (ms)", "smp equivalent", "smp params (M)", "smp GFLOPs"]
    print("| " + " | ".join([*columns, "smp latency (ms)"]) + " |")
    print("|---|---:|---:|---:|---|---:|---:|---:|")
    for name, build, smp_spec in NETWORKS:
        torch.manual_seed(0)
        params, flops, ms = profile_network(build(), size, args.repeats)
        row = f"| {name} | {params / 1e6:.2f} | {flops:.1f} | {ms:.0f} |"
        ref = _smp(*smp_spec) if smp_spec else None
        if ref is None:
            row += " - | - | - | - |"
        else:
            r_params, r_flops, r_ms = profile_network(ref, size, args.repeats)
            row += f" smp.{smp_spec[0]}({smp_spec[1]}) | {r_params / 1e6:.2f} | {r_flops:.1f} | {r_ms:.0f} |"
        print(row, flush=True)


if __name__ == "__main__":
    main()
