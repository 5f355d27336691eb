"""The package as users install it: the built wheel and sdist hold the five bundles (and none of their runs'
outputs), and ``python -m monai_skinattr.bundles init`` run from the unpacked wheel copies a bundle that MONAI's
metadata check accepts."""

import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest
from monai.bundle import verify_metadata

from monai_skinattr.bundles import MAIN_CONFIG, bundle_dir, bundle_files

ROOT = Path(__file__).resolve().parents[1]
#: every bundle file the package ships, as it lies in the source tree
SHIPPED = {"monai_skinattr/bundles/meta_schema.json"} | {
    f"monai_skinattr/bundles/{name}/{f}" for name in MAIN_CONFIG for f in bundle_files(bundle_dir(name))
}


@pytest.fixture(scope="module")
def dist(tmp_path_factory):
    """A wheel and an sdist built from the source tree (the in-tree ``build/`` folder is removed afterwards)."""
    out = tmp_path_factory.mktemp("dist")
    had_build = (ROOT / "build").exists()
    wheel = [sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps", "--no-build-isolation", "-q", "-w", str(out)]
    sdist = [sys.executable, "-c", f"from setuptools import build_meta; build_meta.build_sdist({str(out)!r})"]
    try:
        for command in (wheel, sdist):
            subprocess.run(command, cwd=ROOT, check=True, capture_output=True)
    finally:
        if not had_build:
            subprocess.run(["rm", "-rf", str(ROOT / "build")], check=True)
    return next(out.glob("*.whl")), next(out.glob("*.tar.gz"))


def _bundle_data(names) -> set[str]:
    return {n for n in names if n.startswith("monai_skinattr/bundles/") and not n.endswith((".py", "/"))}


def test_wheel_and_sdist_hold_every_bundle_and_no_run_output(dist):
    wheel, sdist = dist
    metadata = {f"monai_skinattr/bundles/{b}/configs/metadata.json" for b in MAIN_CONFIG}
    assert len(SHIPPED) > 5 * 8 and metadata <= SHIPPED
    assert _bundle_data(zipfile.ZipFile(wheel).namelist()) == SHIPPED
    with tarfile.open(sdist) as tar:
        assert _bundle_data(m.name.split("/", 1)[1] for m in tar.getmembers() if m.isfile()) == SHIPPED


def test_init_from_the_unpacked_wheel_copies_a_valid_bundle(dist, tmp_path):
    site, user = tmp_path / "site", tmp_path / "user"
    zipfile.ZipFile(dist[0]).extractall(site)
    user.mkdir()

    def command(*args: str) -> subprocess.CompletedProcess:
        env = {"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin"}
        cli = [sys.executable, "-m", "monai_skinattr.bundles", *args]
        return subprocess.run(cli, cwd=user, env=env, capture_output=True, text=True)

    listed = command("list").stdout.splitlines()
    assert [line.split("\t")[0] for line in listed] == list(MAIN_CONFIG)
    assert all(line.split("\t")[2].startswith(str(site)) for line in listed), listed  # the wheel's, not the source's
    copied = command("init", "transfer", "bundles/transfer")
    assert copied.returncode == 0, copied.stderr
    assert "--bundle_root bundles/transfer" in copied.stdout
    copy = user / "bundles" / "transfer"
    assert bundle_files(copy) == bundle_files(bundle_dir("transfer"))
    for f in bundle_files(copy):
        assert (copy / f).read_bytes() == (bundle_dir("transfer") / f).read_bytes(), f
    schema = site / "monai_skinattr" / "bundles" / "meta_schema.json"
    verify_metadata(meta_file=str(copy / "configs" / "metadata.json"), filepath=str(schema))

    assert command("init", "transfer", "bundles/transfer").returncode == 0  # an unchanged copy: nothing to do
    (copy / "configs" / "train.json").write_text("{}")
    refused = command("init", "transfer", "bundles/transfer")
    assert refused.returncode == 2 and "differs in ['configs/train.json']" in refused.stderr
    assert (copy / "configs" / "train.json").read_text() == "{}"  # the user's edit is kept
    unknown = command("init", "unet", "x")
    assert unknown.returncode == 2 and "invalid choice: 'unet'" in unknown.stderr and not (user / "x").exists()
