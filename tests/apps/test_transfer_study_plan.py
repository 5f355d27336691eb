"""The transfer study's plan and tables with both pretraining schemes: every run keyed by its scheme, one random
initialisation for all (Θ = 1 + 2 × 9 = 19 per network, as the thesis), and the tables read per scheme."""

import csv

import pytest
from monai.bundle import ConfigParser

from monai_skinattr.apps.transfer import study_plan
from monai_skinattr.apps.transfer.pretraining import checkpoint_path
from monai_skinattr.bundles import bundle_dir

THESIS_EPOCHS = [1, 5, 20, 50, 100, 150, 200, 250, 300]


def _plan(workdir, **kwargs):
    options = {"datasets": ["acdc"], "networks": ["unet"], "modes": ["decoder"], "repeats": 1}
    return study_plan("bundle", workdir, **{**options, **kwargs})


def test_both_schemes_are_keyed_apart_around_one_random_initialisation(tmp_path):
    plan = _plan(tmp_path, save_epochs=THESIS_EPOCHS, schemes=["simple", "advanced"])
    pretrain = {r.name: r.overrides for r in plan.runs if r.name.startswith("pretrain/")}
    assert {n: (o["scheme"], o["pretrain_dir"]) for n, o in pretrain.items()} == {
        "pretrain/unet/simple": ("simple", str(tmp_path / "pretrain" / "unet_simple")),
        "pretrain/unet/advanced": ("advanced", str(tmp_path / "pretrain" / "unet_advanced")),
    }
    trains = [r for r in plan.runs if r.name.endswith("/train")]
    random_init = str(checkpoint_path(tmp_path / "pretrain" / "unet_simple", 0))
    assert len({r.overrides["init_checkpoint"] for r in trains}) == len(trains) == 19  # Θ: 19 initialisations
    assert len({r.overrides["models_dir"] for r in trains}) == 19
    assert [r.name for r in trains if r.overrides["init_checkpoint"] == random_init] == [
        "downstream/acdc/unet/decoder/random/run0/train"
    ]
    robustness = {r.name: r.overrides["checkpoints"] for r in plan.runs if r.name.startswith("robustness/")}
    assert sorted(robustness) == ["robustness/acdc/unet/decoder/advanced", "robustness/acdc/unet/decoder/simple"]
    for scheme, checkpoints in ((n.rsplit("/", 1)[1], c) for n, c in robustness.items()):
        assert checkpoints[0] == random_init and len(checkpoints) == 10
        assert all(f"unet_{scheme}" in c for c in checkpoints[1:])
    assert len({r.name for r in plan.runs}) == len(plan.runs)


def test_a_second_scheme_adds_runs_and_changes_none_of_the_first(tmp_path):
    simple = {r.name: r for r in _plan(tmp_path, save_epochs=[1, 5], schemes=["simple"]).runs}
    both = {r.name: r for r in _plan(tmp_path, save_epochs=[1, 5], schemes=["simple", "advanced"]).runs}
    assert all(name in both and both[name].overrides == run.overrides for name, run in simple.items())
    assert len(both) > len(simple)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"schemes": ["simple", "simple"]}, "schemes must be distinct names from ('simple', 'advanced')"),
        ({"schemes": ["fancy"]}, "schemes must be distinct names"),
        ({"pretrain_overrides": {"scheme": "advanced"}}, "set by 'schemes', not by pretrain_overrides#scheme"),
    ],
)
def test_bad_schemes_are_refused(tmp_path, kwargs, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        _plan(tmp_path, **kwargs)


def test_tables_have_a_row_per_scheme_and_share_the_random_initialisation(tmp_path):
    plan = _plan(tmp_path, save_epochs=[1, 2], schemes=["simple", "advanced"])
    dice = {"random": 0.5, "simple/epoch001": 0.6, "simple/epoch002": 0.8, "advanced/epoch001": 0.9,
            "advanced/epoch002": 0.7}  # fmt: skip
    for folder, value in dice.items():
        out = tmp_path / "runs" / "acdc" / "unet" / "decoder" / folder / "run0" / "eval" / "test"
        out.mkdir(parents=True)
        (out / "metrics.csv").write_text(f"test_dice,{value}\n")
    for scheme, scores in (("simple", [0.9, 0.2, 0.4]), ("advanced", [0.9, 0.5, 0.3])):
        path = tmp_path / "robustness" / f"acdc_unet_decoder_{scheme}.csv"
        path.parent.mkdir(exist_ok=True)
        with open(path, "w", newline="") as f:
            csv.writer(f).writerows([["checkpoint", "robustness"], *([i, s] for i, s in enumerate(scores))])
    text = plan.table()
    assert "| acdc | unet | decoder | simple | 0.8000 | 2 | 0.6250 |" in text  # worst / best = 0.5 / 0.8
    assert "| acdc | unet | decoder | advanced | 0.9000 | 1 | 0.5556 |" in text
    # Table 4.1: offline robustness over every encoder picks the random init (0.9) in both; without it, and online
    # (which disregards it): advanced falls after epoch 1, simple rises to epoch 2
    assert "| 0.5556 (epoch 0) | 1.0000 (epoch 1) | 1.0000 (epoch 1) | 0.7778 (epoch 2) | 0.5556 (epoch 0) |" in text
    assert "| 0.6250 (epoch 0) | 1.0000 (epoch 2) | 1.0000 (epoch 2) | 1.0000 (epoch 2) | 0.6250 (epoch 0) |" in text

    # Table 4.1 as published: each selection's TIS averaged over the schemes (one network, one dataset here)
    for part in ("a", "b"):
        table = (tmp_path / "tables" / f"table_4_1{part}.md").read_text()
        assert "| robustness (offline) | 0.590 |" in table  # (0.5556 + 0.6250) / 2
        assert (
            "| robustness (online) | 1.000 |" in table and "| ImageNet accuracy (full pretraining) | 0.889 |" in table
        )
        assert "| no pretraining | 0.590 |" in table
    assert "| selection | acdc decoder |" in text and "| selection | unet decoder |" in text
    # Tables 2.9 / 2.10 as published: over Θ = the random init and both schemes' encoders
    assert "| dataset | unet decoder |" in text
    assert "| acdc | 0.900 |" in (tmp_path / "tables" / "table_2_9.md").read_text()
    assert "| acdc | 0.556 |" in (tmp_path / "tables" / "table_2_10.md").read_text()  # 0.5 / 0.9


@pytest.mark.parametrize(
    "scheme, network, batch, lr",
    [
        ("simple", "unet", 4096, 0.004),
        ("simple", "swin", 4096, 0.004),
        ("advanced", "unet", 4096, 0.004),
        ("advanced", "resnet50_attention", 4096, 0.004),
        ("advanced", "swin", 1024, 0.001),
    ],
)
def test_pretraining_batch_and_learning_rate_as_the_thesis_sets_them(scheme, network, batch, lr):
    """§2.2.2: simple 4096 / 0.004 for all; advanced 1024 / 0.001 for Swin, 4096 / 0.004 for the CNNs."""
    parser = ConfigParser()
    parser.read_config(str(bundle_dir("transfer") / "configs" / "pretrain.json"))
    parser.update({"scheme": scheme, "network_name": network})
    assert (parser.get_parsed_content("batch_size"), parser.get_parsed_content("learning_rate")) == (batch, lr)
