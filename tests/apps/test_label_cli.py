"""``python -m monai_skinattr.apps.label``: the app folder a user owns, and the served model's kept versions."""

import json
import subprocess
import sys

from monai_skinattr.apps.label import APP_DIR
from monai_skinattr.apps.label.versions import keep_version, list_versions


def command(*args: str, cwd) -> subprocess.CompletedProcess:
    cli = [sys.executable, "-m", "monai_skinattr.apps.label", *args]
    return subprocess.run(cli, cwd=cwd, capture_output=True, text=True)


def test_init_writes_the_app_folder_outside_the_package(tmp_path):
    written = command("init", "tatl_app", cwd=tmp_path)
    assert written.returncode == 0 and "monailabel start_server --app tatl_app" in written.stdout
    assert (tmp_path / "tatl_app" / "main.py").read_bytes() == (APP_DIR / "main.py").read_bytes()
    assert [p.name for p in tmp_path.iterdir()] == ["tatl_app"]  # no temporary folder left beside it
    again = command("init", "tatl_app", cwd=tmp_path)
    assert again.returncode == 2 and "'tatl_app' exists and is not an empty folder" in again.stderr


def test_restore_serves_a_kept_version_and_keeps_the_served_one(tmp_path):
    models = tmp_path / "bundle" / "models"
    models.mkdir(parents=True)
    for n in (1, 2):  # two trainings: each replaced model kept, its record beside it
        (models / "model.pt").write_bytes(f"weights {n}".encode())
        (models / "cascade.json").write_text(json.dumps({"n": n}))
        (models / "label_train.json").write_text(json.dumps({"finished": f"day {n}"}))
        assert keep_version(models) == n
    (models / "model.pt").write_bytes(b"weights 3")
    (models / "label_train.json").write_text(json.dumps({"finished": "day 3"}))
    assert [(v["version"], v["trained"]) for v in list_versions(models)] == [(1, "day 1"), (2, "day 2")]

    listed = command("versions", "bundle", cwd=tmp_path)
    assert [line.split("\t")[:3] for line in listed.stdout.splitlines()] == [
        ["1", f"kept {list_versions(models)[0]['kept']}", "trained day 1"],
        ["2", f"kept {list_versions(models)[1]['kept']}", "trained day 2"],
    ]
    restored = command("restore", "bundle", "1", cwd=tmp_path)
    assert restored.returncode == 0 and "the model served until now is version 3" in restored.stdout
    assert (models / "model.pt").read_bytes() == b"weights 1"
    assert json.loads((models / "cascade.json").read_text()) == {"n": 1}
    assert (models / "versions" / "3" / "model.pt").read_bytes() == b"weights 3"  # the restore can be undone
    missing = command("restore", "bundle", "7", cwd=tmp_path)
    assert missing.returncode == 2 and "no version 7" in missing.stderr
    assert "the versions are [1, 2, 3]" in missing.stderr
    assert (models / "model.pt").read_bytes() == b"weights 1"
