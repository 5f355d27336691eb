"""Throughput of the TATL cascade (``TATLCascadeNet``, 13 networks) on a batch of photos, per inference option.

    python benchmarks/cascade.py                      # 8 photos at 384x512, TATL's default cascade
    python benchmarks/cascade.py --quick              # 2 photos at 64x96, 1 attribute: a smoke test

The baseline is the path of a per-photo loop: each photo alone through the eager network. Every other row runs the
whole batch at once with the options named (``optimize_cascade`` / ``optimize_for_inference``), its timed passes
alternating with passes of the baseline: its speed-up is against those (shown beside it), so a shared machine whose
speed drifts slows both alike. Its masks (every output channel at 0.5) are compared pixel by pixel with the
baseline's. Random weights (no trained cascade is needed to time it); "FE" rows give every stage-3 network its union
network's encoder, as a cascade whose stage 3 was trained with the encoder frozen has. Prints one Markdown table;
the GPU rows (AMP) appear when CUDA is there. ``torch.compile`` is not a row: compiling the 13-network cascade did
not finish within 8 minutes on a 2-core CPU.
"""

from __future__ import annotations

import argparse
import copy
from collections.abc import Callable

import torch
from common import header, seconds
from torch.func import functional_call, stack_module_state, vmap

from monai_skinattr.apps.tatl import TATLCascadeNet, optimize_cascade
from monai_skinattr.data.isic import ATTRIBUTES


def cascade(attributes: list[str], size: list[int], frozen_encoders: bool) -> TATLCascadeNet:
    """TATL's cascade with random weights; with ``frozen_encoders`` every stage-3 member has the union's encoder."""
    torch.manual_seed(0)
    net = TATLCascadeNet(attributes=attributes, lesion_size=size, crop_size=size, offset=40 * size[0] // 384).eval()
    if frozen_encoders:
        for ensemble in net.attribute_nets.values():
            for union, member in zip(net.union_net.nets, ensemble.nets, strict=True):
                member.net.encoder.load_state_dict(union.net.encoder.state_dict())
    return net


def stacked_forward(net: TATLCascadeNet) -> Callable[[torch.Tensor], torch.Tensor]:
    """The cascade with the same-shape stage-2/3 members stacked (``torch.func.stack_module_state``) and run as one
    vmapped network: one wide convolution per layer instead of one per member."""
    ensembles = [net.union_net, *net.attribute_nets.values()]
    stacks = []
    for i in range(len(net.archs)):
        members = [e.nets[i] for e in ensembles]
        params, buffers = stack_module_state(members)
        skeleton = copy.deepcopy(members[0]).to("meta")
        run = vmap(lambda p, b, x, s=skeleton: functional_call(s, (p, b), (x,)), in_dims=(0, 0, None))
        stacks.append((run, params, buffers))

    def forward(x: torch.Tensor) -> torch.Tensor:
        lesion, boxes = net.image_boxes(x)
        crops = net.crop_images(x, boxes)
        probs = sum(torch.sigmoid(run(p, b, crops)) for run, p, b in stacks) / len(stacks)  # (members, B, 1, h, w)
        maps = probs[:, :, 0].transpose(0, 1)
        pasted = net.paste(maps, boxes, [x.shape[-2], x.shape[-1]])
        return torch.cat([1 - lesion, lesion, pasted], dim=1)

    return forward


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--size", type=int, nargs=2, default=(384, 512), metavar=("H", "W"))
    parser.add_argument("--chunks", type=int, nargs="+", default=(1, 2, 4), help="chunk sizes to try")
    parser.add_argument("--repeats", type=int, default=1, help="timed passes per row (after one warm-up pass)")
    parser.add_argument("--quick", action="store_true", help="2 photos at 64x96 with 1 attribute")
    args = parser.parse_args()
    batch, size, attributes = args.batch, list(args.size), list(ATTRIBUTES)
    if args.quick:
        batch, size, attributes, args.chunks = 2, [64, 96], attributes[:1], [1]
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    torch.manual_seed(1)
    photos = torch.rand(batch, 3, *size, device=device)

    def options(frozen: bool, **kwargs) -> TATLCascadeNet:
        return optimize_cascade(cascade(attributes, size, frozen).to(device), **kwargs)

    no_opt = {"fold_bn": False, "channels_last": False, "silu": False, "share_encoders": False}
    rows: list[tuple[str, Callable[[], Callable]]] = [
        (f"batch {batch}, eager", lambda: options(False, **no_opt)),
        (f"batch {batch}, channels-last", lambda: options(False, **{**no_opt, "channels_last": True})),
        (f"batch {batch}, BN folded", lambda: options(False, **{**no_opt, "fold_bn": True})),
        (f"batch {batch}, BN folded + channels-last", lambda: options(False, silu=False, share_encoders=False)),
        (f"batch {batch}, same-shape nets stacked (vmap)", lambda: stacked_forward(options(False, **no_opt))),
    ]
    for c in args.chunks:
        name = f"batch {batch} in chunks of {c}, BN folded + channels-last"
        rows.append((name, lambda c=c: options(False, silu=False, chunk=c)))
    chunk = min(args.chunks)
    rows += [
        (f"batch {batch} in chunks of {chunk}, BN folded + channels-last + SiLU", lambda: options(False, chunk=chunk)),
        (f"FE cascade: + one encoder pass per shape (chunks of {chunk})", lambda: options(True, chunk=chunk)),
    ]
    if device.type == "cuda":
        rows += [
            (f"batch {batch}, AMP (fp16) + channels-last", lambda: options(False, **{**no_opt, "channels_last": True})),
            ("FE cascade, AMP (fp16), BN folded + channels-last + SiLU", lambda: options(True)),
        ]

    baseline_net = cascade(attributes, size, False).to(device)

    def per_photo(net: TATLCascadeNet = baseline_net) -> torch.Tensor:
        return torch.cat([net(photos[i : i + 1]) for i in range(batch)])

    with torch.inference_mode():
        reference = per_photo() >= 0.5
        # FE rows have other stage-3 weights: their masks are compared with the FE cascade's own per-photo masks
        reference_fe = per_photo(cascade(attributes, size, True).to(device)) >= 0.5
        base = seconds(per_photo, args.repeats)
        print(f"TATL cascade: {len(attributes)} attributes x U + Link, {batch} photos at {size[0]}x{size[1]}\n")
        print(header())
        print("| path | s per batch | photos/s | baseline beside it (s) | speed-up | mask pixels differing |")
        print("|---|---:|---:|---:|---:|---:|")
        print(f"| per photo, eager (baseline) | {base:.2f} | {batch / base:.2f} | {base:.2f} | 1.00 | 0 |", flush=True)
        for name, build in rows:
            run = build()
            amp = torch.autocast("cuda", dtype=torch.float16, enabled="AMP" in name)

            def timed(run=run, amp=amp) -> torch.Tensor:
                with amp:
                    return run(photos)

            expected = reference_fe if name.startswith("FE") else reference
            differ = ((timed().float() >= 0.5) != expected).float().mean().item()
            t, b = alternating(timed, per_photo, args.repeats)
            print(f"| {name} | {t:.2f} | {batch / t:.2f} | {b:.2f} | {b / t:.2f} | {differ:.4%} |", flush=True)


def alternating(run: Callable[[], object], baseline: Callable[[], object], repeats: int) -> tuple[float, float]:
    """Median seconds of ``repeats`` passes of ``run`` and of ``baseline`` taken in turn, so a machine whose speed
    drifts (a shared host) slows both alike and their ratio holds."""
    times = [(seconds(run, 1, warmup=0), seconds(baseline, 1, warmup=0)) for _ in range(repeats)]
    run_times, base_times = zip(*times, strict=True)
    return sorted(run_times)[repeats // 2], sorted(base_times)[repeats // 2]


if __name__ == "__main__":
    main()
