"""Stage-3 TATL training speed: the bundle's ``SupervisedTrainer`` against a minimal hand-written PyTorch loop on the
same network, data and batch; the data pipelines the bundle could use; smp's Unet / Linknet beside ours.

    python benchmarks/training.py              # CPU: 25 synthetic photos at 128x160; GPU: 100 at 384x512 with AMP
    python benchmarks/training.py --quick      # smoke run in about a minute (15 photos at 64x64, batch 2, 2 repeats)
    python benchmarks/training.py --n 40 --size 384 512 --batch 4 --repeats 5 --threads 16 --before

Everything runs in this one process, one configuration after the other, on a synthetic ISIC 2018 training split
(``make_isic``, photos written at ``--size``) in a temporary folder. Stage 3 is the attribute stage
(``common.json`` + ``train_attribute.json``, attribute ``pigment_network``) built by ``monai.bundle.ConfigWorkflow``
as ``monai.bundle run`` builds it, with ``from_union false`` (random initialisation instead of the union checkpoint:
other weights, the same work) and ``lesion_source ground_truth`` (the ground-truth lesion mask drives the crop, so
stage 1 need not run first). Its log and progress bar go to a file in the temporary folder. Rows:

- (a) baseline: forward, loss (``TverskyJaccardLoss`` as in ``common.json``), backward, SGD step (on CUDA with AMP
  and deterministic cuDNN, as the bundle) over the stage's training images, preprocessed once and held as plain
  tensors on the device;
- (b) the bundle's ``SupervisedTrainer``: the training iterations of an epoch (data loading, transfer, the step and
  what the bundle hangs on an iteration: decollation, loss logging, TensorBoard, progress bar), then
  apart what it adds at the end of each epoch (PreciseBN, validation, checkpoints, logging) and the whole epoch;
- (c) the stage-3 preprocessing alone (load, ``LesionBBoxCropd``, resize), first epoch (dataset construction
  included) and later epochs, through ``Dataset``, ``CacheDataset`` (the bundle's), ``PersistentDataset`` (cache
  in the temporary folder) and ``CacheDataset`` + ``ThreadDataLoader``;
- (d) smp's ``Unet`` / ``Linknet`` (``efficientnet-b0``, ``encoder_weights=None``) in the loop of (a); skipped with a
  note when segmentation-models-pytorch (the ``bench`` extra) is not installed.

Per-step rows are compared with row (a) of the same network, per-epoch rows with the baseline epoch (row (a) times
the steps of an epoch). The baseline runs one pass after each bundle epoch and after each smp pass, alternating
with them, so that a machine that speeds up or slows down meanwhile (another job) moves both alike. Every time is a
median: of all the baseline's passes; of the bundle's epochs after the first (the warm-up); of ``--repeats`` passes
for smp; of ``--repeats`` later epochs for the data rows. ``--clock cpu`` times with the process's CPU time instead
of the wall clock (steadier on a shared CPU machine with ``--threads 1``; meaningless on a GPU). ``--before``
adds a bundle run with the trainer as it was before this benchmark's findings (MONAI's default ``prepare_batch``,
so MetaTensors into the network; gradients zero-filled, not set to None; the validation postprocessing run on
every training iteration); ``--profile`` prints Ignite's ``HandlersTimeProfiler`` results of the bundle runs (the
warm-up epoch included).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import shlex
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import ignite
import monai
import torch
from ignite.engine import Engine, Events
from ignite.handlers import HandlersTimeProfiler
from monai.bundle import ConfigWorkflow
from monai.data import CacheDataset, DataLoader, Dataset, PersistentDataset, ThreadDataLoader

from monai_skinattr.apps.tatl import TATLSegmenter, grid_offset
from monai_skinattr.apps.tatl.experiments import PAPER_OFFSET
from monai_skinattr.bundles import bundle_dir
from monai_skinattr.data import synthetic
from monai_skinattr.losses import TverskyJaccardLoss

CONFIGS = bundle_dir("tatl") / "configs"
ATTRIBUTE = "pigment_network"
SMP_ARCHS = {"unet": "Unet", "linknet": "Linknet"}
CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}
clock: Callable[[], float] = time.perf_counter  # set by main from --clock

Batches = Sequence[tuple[torch.Tensor, torch.Tensor]]
# the stage-3 trainer before this benchmark's findings went into common.json
BEFORE = {
    "prepare_batch": "$monai.engines.PrepareBatchDefault()",
    "train#trainer#optim_set_to_none": False,
    "train#trainer#postprocessing": "@validate#postprocessing",
}


@dataclass
class Row:
    row: str
    configuration: str
    network: str
    seconds: float | None
    unit: str
    ratio: float | None


@dataclass
class BundleRun:
    steps: int
    n_train: int
    n_val: int
    step: list[float] = field(default_factory=list)  # per timed epoch: training iterations, seconds per step
    epoch: list[float] = field(default_factory=list)  # per timed epoch: seconds of the whole epoch
    extras: dict[str, list[float]] = field(default_factory=dict)  # per timed epoch: seconds of each epoch-end handler
    profile: list = field(default_factory=list)  # HandlersTimeProfiler.get_results()
    baseline: list[float] = field(default_factory=list)  # seconds per step of the baseline pass after each epoch


def _machine(device: torch.device) -> str:
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as info:
        names = [line.split(":", 1)[1].strip() for line in info if line.startswith("model name")]
        cpu = names[0] if names else cpu
    gpu = torch.cuda.get_device_name(device) if device.type == "cuda" else "none"
    return f"{cpu}, {os.cpu_count()} cores (torch threads {torch.get_num_threads()}), GPU: {gpu}"


def _versions() -> str:
    try:
        import segmentation_models_pytorch as smp

        smp_version = smp.__version__
    except ImportError:
        smp_version = "not installed"
    return (
        f"python {platform.python_version()}, torch {torch.__version__}, monai {monai.__version__}, "
        f"ignite {ignite.__version__}, smp {smp_version}"
    )


def _sync(device: torch.device) -> Callable[[], None]:
    return torch.cuda.synchronize if device.type == "cuda" else lambda: None


def _median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


def _workflow(data_root: Path, work: Path, arch: str, args: argparse.Namespace, device: torch.device, **overrides):
    """The stage-3 bundle as ``monai.bundle run`` builds it, with the benchmark's overrides."""
    settings = {
        "bundle_root": str(CONFIGS.parent),
        "dataset_dir": str(data_root),
        "models_dir": str(work / "models"),
        "output_dir": str(work / "eval"),
        "attribute": ATTRIBUTE,
        "arch": arch,
        "from_union": False,
        "lesion_source": "ground_truth",
        "spatial_size": list(args.size),
        "lesion_size": list(args.size),
        "offset": grid_offset(PAPER_OFFSET, args.size[0]),  # the paper's 40 pixels of 384 rows, on this grid
        "batch_size": args.batch,
        "max_epochs": 1 + args.repeats,
        "resume": False,
        "device": f"$torch.device('{device}')",
        "amp": device.type == "cuda",
        **overrides,
    }
    config = [str(CONFIGS / "common.json"), str(CONFIGS / "train_attribute.json")]
    return ConfigWorkflow(config, meta_file=str(CONFIGS / "metadata.json"), workflow_type="train", **settings)


class _EpochTimer:
    """Marks of each epoch: its start, the end of its last iteration, its end. Attached after the bundle's handlers,
    so each mark comes after theirs. After each epoch (its end marked) it runs one pass of ``baseline``: the two
    alternate, so that a machine that slows down or speeds up meanwhile slows or speeds both."""

    def __init__(self, sync: Callable[[], None], baseline: HandLoop) -> None:
        self.sync = sync
        self.baseline = baseline
        self.baseline_times: list[float] = []
        self.marks: list[list[float]] = []

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.EPOCH_STARTED, self._mark, 0)
        engine.add_event_handler(Events.ITERATION_COMPLETED, self._mark, 1)
        engine.add_event_handler(Events.EPOCH_COMPLETED, self._mark, 2)

    def _mark(self, engine: Engine, which: int) -> None:
        if which == 1 and engine.state.iteration % engine.state.epoch_length:
            return  # only the epoch's last iteration matters: no extra synchronisation in the others
        self.sync()
        if which == 0:
            self.marks.append([clock(), 0.0, 0.0])
        else:
            self.marks[-1][which] = clock()
        if which == 2:
            self.baseline_times.append(self.baseline())


def run_bundle(
    data_root: Path, work: Path, args: argparse.Namespace, baseline: HandLoop, device: torch.device, **overrides
) -> BundleRun:
    """One stage-3 training run of ``1 + repeats`` epochs (the first is the warm-up) of ``baseline``'s network
    architecture, a pass of ``baseline`` after each epoch; ``overrides``: config ids."""
    cudnn = (torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark)
    workflow = _workflow(data_root, work, baseline.net.arch, args, device, **overrides)
    workflow.initialize()
    trainer = workflow.parser.get_parsed_content("train#trainer")
    timer = _EpochTimer(_sync(device), baseline)
    timer.attach(trainer)
    profiler = HandlersTimeProfiler()
    profiler.attach(trainer)
    try:
        workflow.run()
        workflow.finalize()
    finally:
        # the bundle's set_determinism switches cuDNN to deterministic kernels: give the next rows the defaults back
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = cudnn
    result = BundleRun(
        steps=len(workflow.parser.get_parsed_content("train#dataloader")),
        n_train=len(workflow.parser.get_parsed_content("train#dataset")),
        n_val=len(workflow.parser.get_parsed_content("validate#dataset")),
        profile=profiler.get_results(),
    )
    result.baseline = timer.baseline_times
    timed = timer.marks[1:]
    result.step = [(loop_end - start) / result.steps for start, loop_end, _ in timed]
    result.epoch = [end - start for start, _, end in timed]
    for name, times in profiler.event_handlers_times[Events.EPOCH_COMPLETED].items():
        if not name.startswith("_EpochTimer") and len(times) == len(timer.marks):
            result.extras[name] = times[1:]
    return result


def plain_batches(data_root: Path, work: Path, args: argparse.Namespace, device: torch.device) -> Batches:
    """The stage's training images after the bundle's own preprocessing, as plain tensor batches on ``device``."""
    items = list(_workflow(data_root, work, args.archs[0], args, device).parser.get_parsed_content("train#dataset"))
    images, labels = (
        torch.stack([torch.as_tensor(i[k]).as_subclass(torch.Tensor) for i in items]) for k in ("image", "label")
    )
    return list(zip(images.to(device).split(args.batch), labels.to(device).split(args.batch), strict=True))


@contextlib.contextmanager
def _bundle_cudnn() -> Iterator[None]:
    """cuDNN as the bundle's ``set_determinism`` sets it (deterministic kernels, no autotuning), then as it was."""
    saved = torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark
    torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = True, False
    try:
        yield
    finally:
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = saved


class HandLoop:
    """The minimal loop: forward, loss (as ``common.json``), backward, SGD step; AMP on CUDA as the bundle, and its
    cuDNN settings, so that the loops are compared and not kernels. Built with a two-step warm-up; each call is one
    pass over ``batches`` and returns its seconds per step."""

    def __init__(self, net: torch.nn.Module, batches: Batches, device: torch.device) -> None:
        self.net = net.to(device).train()
        self.batches = batches
        self.loss = TverskyJaccardLoss(lambda_tversky=0.5, lambda_jaccard=0.5, smooth=1.0, beta=0.6)
        self.optimizer = torch.optim.SGD(self.net.parameters(), lr=0.01, momentum=0.9)
        self.amp = device.type == "cuda"
        self.device_type = device.type
        self.scaler = torch.amp.GradScaler(device.type, enabled=self.amp)
        self.sync = _sync(device)
        with _bundle_cudnn():
            for x, y in batches[:2]:
                self.step(x, y)

    def step(self, x: torch.Tensor, y: torch.Tensor) -> None:
        self.optimizer.zero_grad()
        with torch.autocast(self.device_type, enabled=self.amp):
            loss = self.loss(self.net(x), y)
        self.scaler.scale(loss).backward()
        self.scaler.step(self.optimizer)
        self.scaler.update()

    def __call__(self) -> float:
        with _bundle_cudnn():
            self.sync()
            start = clock()
            for x, y in self.batches:
                self.step(x, y)
            self.sync()
            return (clock() - start) / len(self.batches)


def time_data(kind: str, data: list[dict], transform, args: argparse.Namespace, device, cache_dir: Path) -> list[float]:
    """Seconds of the first epoch (dataset construction included), then of ``repeats`` later epochs."""
    sync = _sync(device)

    def epoch() -> None:
        for batch in loader:
            batch["image"].to(device, non_blocking=True), batch["label"].to(device, non_blocking=True)
        sync()

    start = clock()
    if kind == "Dataset":
        dataset = Dataset(data, transform)
    elif kind == "PersistentDataset":
        dataset = PersistentDataset(data, transform, cache_dir=cache_dir)
    else:
        dataset = CacheDataset(data, transform, cache_rate=1.0, num_workers=0, progress=False)
    loader_class = ThreadDataLoader if kind.endswith("ThreadDataLoader") else DataLoader
    loader = loader_class(dataset, batch_size=args.batch, shuffle=True, num_workers=0)
    epoch()
    times = [clock() - start]
    for _ in range(args.repeats):
        start = clock()
        epoch()
        times.append(clock() - start)
    return times


def _smp(arch: str) -> torch.nn.Module | None:
    try:
        import segmentation_models_pytorch as smp
    except ImportError:
        return None
    return getattr(smp, SMP_ARCHS[arch])(encoder_name="efficientnet-b0", encoder_weights=None, classes=1)


def bundle_rows(arch: str, base: float, bundle: BundleRun, before: BundleRun | None) -> list[Row]:
    """Rows (b) of one network against its baseline ``base`` (seconds per step)."""
    net, epoch = f"TATL {arch}", base * bundle.steps
    loop = _median(bundle.step)
    rows = [Row("b", "bundle SupervisedTrainer, training iterations", net, loop, "s/step", loop / base)]
    if before is not None:
        loop = _median(before.step)
        label = "bundle, training iterations, trainer as before (MetaTensor input, zeroed grads, postprocessing)"
        rows.append(Row("b", label, net, loop, "s/step", loop / base))
    extras = {name: _median(times) for name, times in bundle.extras.items()}
    labels = {
        "PreciseBN": f"+ PreciseBN ({bundle.steps} forward batches)",
        "ValidationHandler": f"+ validation ({bundle.n_val} images, best-model save)",
        "ResumableCheckpointSaver.save_last": "+ last-state checkpoint",
    }
    for name, label in labels.items():
        seconds = extras.pop(name, None)
        rows.append(Row("b", label, net, seconds, "s/epoch", None if seconds is None else seconds / epoch))
    other = sum(extras.values())
    rows.append(Row("b", "+ epoch-end logging, TensorBoard, progress bar", net, other, "s/epoch", other / epoch))
    whole = _median(bundle.epoch)
    rows.append(Row("b", "bundle, whole epoch", net, whole, "s/epoch", whole / epoch))
    return rows


def benchmark(args: argparse.Namespace, device: torch.device, tmp: Path) -> tuple[list[Row], list[str]]:
    data_root = synthetic.make_isic(tmp / "data", n=args.n, size=tuple(args.size), seed=0, progress=False)
    batches = plain_batches(data_root, tmp / "plain", args, device)
    rows: list[Row] = []
    smp_rows: list[Row] = []
    notes: list[str] = []
    baseline_epoch: float | None = None
    for arch in args.archs:
        torch.manual_seed(0)
        baseline = HandLoop(TATLSegmenter(arch), batches, device)
        bundle = run_bundle(data_root, tmp / arch / "bundle", args, baseline, device)
        base_times = list(bundle.baseline)
        before = None
        if args.before:
            before = run_bundle(data_root, tmp / arch / "before", args, baseline, device, **BEFORE)
            base_times += before.baseline
        reference = _smp(arch)
        smp_times = []
        if reference is not None:
            reference = HandLoop(reference, batches, device)
            for _ in range(args.repeats):  # alternating with the baseline, as the bundle's epochs
                smp_times.append(reference())
                base_times.append(baseline())
        base = _median(base_times)
        baseline_epoch = baseline_epoch or base * len(batches)
        rows.append(Row("a", "hand-written loop, pre-loaded tensors (baseline)", f"TATL {arch}", base, "s/step", 1.0))
        rows += bundle_rows(arch, base, bundle, before)
        notes.append(
            f"{arch}: baseline passes {', '.join(f'{t:.4g}' for t in base_times)} s/step; bundle training "
            f"iterations per epoch {', '.join(f'{t:.4g}' for t in bundle.step)} s/step (after the warm-up epoch); "
            f"{bundle.n_train} training images ({bundle.steps} steps per epoch), {bundle.n_val} validation images"
        )
        if args.profile:
            notes.append(f"{arch} bundle, Ignite HandlersTimeProfiler, seconds (total, min, max, mean, std):")
            shown = [
                r for r in bundle.profile if r[2] != "not triggered" and r[0] not in ("Total", "_EpochTimer._mark")
            ]
            notes += [f"    {r[0]} ({r[1]}): {r[2:]}" for r in shown]
        name = f"smp.{SMP_ARCHS[arch]} efficientnet-b0"
        if not smp_times:
            notes.append(f"{name}: skipped, segmentation-models-pytorch is not installed (the bench extra)")
            continue
        seconds = _median(smp_times)
        smp_rows.append(Row("d", "hand-written loop, pre-loaded tensors", name, seconds, "s/step", seconds / base))

    workflow = _workflow(data_root, tmp / "data_rows", args.archs[0], args, device)
    transform = workflow.parser.get_parsed_content("train#preprocessing")
    items = workflow.parser.get_parsed_content("train#dataset#data")
    for kind in ("Dataset", "CacheDataset", "PersistentDataset", "CacheDataset + ThreadDataLoader"):
        times = time_data(kind, items, transform, args, device, tmp / "persistent")
        what = f"data: {kind}" + ("" if kind.endswith("ThreadDataLoader") else " + DataLoader")
        first, later = times[0], _median(times[1:])
        rows.append(Row("c", f"{what}, first epoch", "-", first, "s/epoch", first / baseline_epoch))
        rows.append(Row("c", f"{what}, later epochs", "-", later, "s/epoch", later / baseline_epoch))
    return rows + smp_rows, notes


@contextlib.contextmanager
def _output_to(path: Path) -> Iterator[None]:
    """Everything written to stdout and stderr, by Python or not, goes to ``path`` meanwhile: the bundle logs to
    stdout (its ``logging.conf``, MONAI's loggers) and draws a progress bar on stderr, as under ``monai.bundle run``;
    in the file they cost what they cost on a terminal and leave the table readable."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with open(path, "w") as out:
        os.dup2(out.fileno(), 1)
        os.dup2(out.fileno(), 2)
        try:
            yield
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            for fd, copy in zip((1, 2), saved, strict=True):
                os.dup2(copy, fd)
                os.close(copy)


def _format(value: float | None, digits: int = 4) -> str:
    return "-" if value is None else f"{value:.{digits}g}"


def main(argv: Sequence[str] | None = None) -> None:
    global clock
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, help="synthetic photos, a fifth the unused test fold (default 25, GPU 100)")
    parser.add_argument(
        "--size", type=int, nargs=2, metavar=("H", "W"), help="photo and input size (default 128 160, GPU 384 512)"
    )
    parser.add_argument("--batch", type=int, help="batch size (default 4)")
    parser.add_argument("--repeats", type=int, help="timed passes and timed bundle epochs (default 3)")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads(), help="torch.set_num_threads")
    parser.add_argument("--archs", nargs="+", default=["unet", "linknet"], choices=sorted(SMP_ARCHS))
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--clock", choices=sorted(CLOCKS), default="wall")
    parser.add_argument("--quick", action="store_true", help="smoke run: defaults 15 photos, 64x64, batch 2, 2 repeats")
    parser.add_argument("--before", action="store_true", help="also time the trainer as it was before (see above)")
    parser.add_argument("--profile", action="store_true", help="also print the bundle's per-handler times")
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    gpu = device.type == "cuda"
    # defaults: a few minutes on 2 CPU cores; TATL's own input size on a GPU; seconds with --quick
    n, size, batch, repeats = (
        (15, (64, 64), 2, 2) if args.quick else (100, (384, 512), 4, 3) if gpu else (25, (128, 160), 4, 3)
    )
    args.n, args.batch, args.repeats = args.n or n, args.batch or batch, args.repeats or repeats
    args.size = tuple(args.size or size)
    torch.set_num_threads(args.threads)
    clock = CLOCKS[args.clock]
    command = shlex.join(["python", *(sys.argv if argv is None else [__file__, *argv])])
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "benchmark.log"
        try:
            with _output_to(log):
                rows, notes = benchmark(args, device, Path(tmp))
        except BaseException:
            print(log.read_text()[-5000:], file=sys.stderr)
            raise
    print(f"machine: {_machine(device)}")
    print(f"versions: {_versions()}")
    print(f"command: {command}")
    print(
        f"setup: TATL stage 3 ({ATTRIBUTE}, from_union false: random init), {args.n} synthetic photos at "
        f"{args.size[0]}x{args.size[1]}, batch {args.batch}, SGD, device {device}, AMP {'on' if gpu else 'off'}, "
        f"{args.clock} clock, repeats {args.repeats}\n"
    )
    print("| row | configuration | network | seconds | per | ratio to baseline |")
    print("|---|---|---|---:|---|---:|")
    for r in rows:
        print(
            f"| {r.row} | {r.configuration} | {r.network} | {_format(r.seconds)} | {r.unit} | {_format(r.ratio, 3)} |"
        )
    print(
        "\nratio: s/step rows against row (a) of the same network; s/epoch rows against its baseline epoch, row (a) "
        "times the steps of an epoch (data rows: the first network's)."
    )
    for note in notes:
        print(note)


if __name__ == "__main__":
    main()
