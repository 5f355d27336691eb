"""``benchmarks/training.py`` at smoke size, and the plain-tensor batches its finding put into the TATL bundle."""

import importlib.util
import re
import sys
from pathlib import Path

import torch
from monai.bundle import ConfigParser
from monai.data import MetaTensor, list_data_collate

from monai_skinattr.bundles import bundle_dir

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = bundle_dir("tatl") / "configs"


def _benchmark():
    spec = importlib.util.spec_from_file_location("benchmark_training", ROOT / "benchmarks" / "training.py")
    module = sys.modules[spec.name] = importlib.util.module_from_spec(spec)  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_training_benchmark_prints_one_table(capsys):
    threads = torch.get_num_threads()
    args = ["--quick", "--archs", "unet", "--size", "32", "32", "--batch", "5", "--repeats", "1", "--threads", "1"]
    try:
        _benchmark().main(args)
    finally:
        torch.set_num_threads(threads)
    out = capsys.readouterr().out
    out = out[out.index("machine: ") :]  # in this process, the bundle's log reaches capsys too
    assert "\nversions: python " in out and "torch " in out and "ignite " in out
    assert "\ncommand: python " in out and "--quick --archs unet" in out
    rows = [line.split(" | ") for line in out.splitlines() if re.match(r"\| [abcd] \|", line)]
    assert [r[0] for r in rows][:2] == ["| a", "| b"] and {r[0] for r in rows} >= {"| a", "| b", "| c"}
    assert rows[0][-1] == "1 |" and all(float(r[3]) > 0 for r in rows)  # baseline ratio 1, every time measured
    assert sum("data: " in r[1] for r in rows) == 8  # four pipelines, first and later epochs
    assert "smp.Unet" in out  # a row, or the note that smp is not installed


def test_tatl_training_loop_does_what_a_hand_written_loop_does():
    """What the benchmark found: plain tensors into the network (trainer and evaluator), gradients set to None
    rather than zero-filled and then accumulated into, no per-iteration postprocessing that nothing reads."""
    parser = ConfigParser()
    parser.read_config([str(CONFIGS / "common.json"), str(CONFIGS / "train_attribute.json")])
    train = parser.get("train#trainer")
    assert train["prepare_batch"] == parser.get("validate#evaluator")["prepare_batch"] == "@prepare_batch"
    assert train["optim_set_to_none"] is True and "postprocessing" not in train
    prepare = parser.get_parsed_content("prepare_batch")
    items = [{"image": MetaTensor(torch.rand(3, 4, 4)), "label": MetaTensor(torch.ones(1, 4, 4)), "id": "x"}] * 2
    batch = list_data_collate(items)
    image, label = prepare(batch, torch.device("cpu"))
    assert type(image) is torch.Tensor and type(label) is torch.Tensor
    assert image.data_ptr() == batch["image"].data_ptr() and torch.equal(image, batch["image"].as_tensor())
