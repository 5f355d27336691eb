"""House rules checked on the source tree: configuration reads as configuration, defaults live once, and the
packages import in one direction."""

import ast
import json
from pathlib import Path

import pytest
from monai.bundle import ConfigParser

from monai_skinattr.bundles import BUNDLES_DIR, MAIN_CONFIG, bundle_dir

ROOT = Path(__file__).resolve().parents[1]
BUNDLES = sorted(p.parent.parent for p in BUNDLES_DIR.glob("*/configs/common.json"))
#: each bundle's one-command table: the config run on top of its common.json
PLANS = MAIN_CONFIG
#: keys every config may set for itself
WORKFLOW_KEYS = {"imports", "bundle_root", "initialize", "run", "finalize"}
#: what a plan deliberately changes from its bundle's common.json (the CPU-sized main jobs); nothing else
CHANGES = {
    "tatl": {"spatial_size", "lesion_size"},
    "input_transfer": {"spatial_size", "batch_size", "segmenter_features"},
}


def _expressions(node, path=""):
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _expressions(v, f"{path}#{k}")
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _expressions(v, f"{path}#{i}")
    elif isinstance(node, str) and node.startswith("$"):
        yield path, node


def test_every_bundle_has_its_plan():
    assert sorted(b.name for b in BUNDLES) == sorted(PLANS)


@pytest.mark.parametrize(
    "config", sorted(BUNDLES_DIR.glob("*/configs/*.json")), ids=lambda p: p.parent.parent.name + "/" + p.name
)
def test_expressions_are_short(config):
    """Longer logic is a named, documented function of the app, not Python inside a JSON string."""
    long = [f"{path} ({len(e)} chars)" for path, e in _expressions(json.loads(config.read_text())) if len(e) > 100]
    assert not long, f"{config.name}: $ expressions over 100 characters: {long}"


@pytest.mark.parametrize("bundle", sorted(PLANS))
def test_plans_state_only_what_they_change(bundle):
    """A plan config is run on top of common.json and takes its defaults from there: it restates no key of
    common.json but the few it deliberately changes (listed in CHANGES), and those with another value."""
    configs = bundle_dir(bundle) / "configs"
    common = json.loads((configs / "common.json").read_text())
    plan = json.loads((configs / PLANS[bundle]).read_text())
    changes = CHANGES.get(bundle, set())
    restated = sorted(plan.keys() & common.keys() - WORKFLOW_KEYS - changes)
    assert not restated, f"{PLANS[bundle]} restates common.json's keys: {restated}"
    assert all(plan[k] != common[k] for k in changes), f"{PLANS[bundle]} restates a default it means to change"


def test_tatl_runs_get_the_configs_values():
    """Every value a TATL run is given for a common.json key is the one the merged configs hold (the plan code
    restates no default of its own: the synthetic set, the folds, the sizes all come from the configs)."""
    configs = bundle_dir("tatl") / "configs"
    parser = ConfigParser()
    parser.read_config([str(configs / "common.json"), str(configs / "pipeline.json")])
    parser["bundle_root"] = str(configs.parent)
    plan = parser.get_parsed_content("plan")
    common = json.loads((configs / "common.json").read_text())
    per_run = {"fold", "models_dir", "output_dir", "max_epochs", "arch", "attribute", "from_union", "crop", "offset",
               "lesion_holdout"}  # fmt: skip
    for run in plan.runs:
        for key in run.overrides.keys() & common.keys() - per_run - {"dataset_dir"}:
            assert run.overrides[key] == parser.get_parsed_content(key), (run.name, key)
        assert run.overrides["dataset_dir"] == parser.get_parsed_content("data_root")
    assert {r.overrides["offset"] for r in plan.runs if "offset" in r.overrides} == {13}  # 40 px of 384 rows, at 128


def _imports(path: Path) -> set[str]:
    """The ``monai_skinattr`` subpackages (``apps.<method>`` for apps) a module imports."""
    package = path.relative_to(ROOT).with_suffix("").parts[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            base = list(package[: len(package) - node.level + 1]) if node.level else []
            parts = base + (node.module.split(".") if node.module else [])
            found.add(".".join(parts))
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
    return {_unit(m.split(".")) for m in found if m.startswith("monai_skinattr.")}


def _unit(parts) -> str:
    return ".".join(parts[1:3]) if parts[1] == "apps" and len(parts) > 2 else parts[1].removesuffix(".py")


def test_packages_import_in_one_direction():
    """No package imports a package that imports it back, and the library never imports an app."""
    graph: dict[str, set[str]] = {}
    for path in (ROOT / "monai_skinattr").rglob("*.py"):
        unit = _unit(path.relative_to(ROOT).with_suffix("").parts)
        if unit == "__init__":
            continue
        graph.setdefault(unit, set()).update(_imports(path) - {unit})
    cycles = sorted(f"{a} <-> {b}" for a in graph for b in graph[a] if a in graph.get(b, ()) and a < b)
    assert not cycles, cycles
    library = {u: sorted(d for d in deps if d.startswith("apps")) for u, deps in graph.items()}
    assert not {u: d for u, d in library.items() if d and not u.startswith("apps")}
