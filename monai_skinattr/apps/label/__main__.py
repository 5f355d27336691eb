"""``python -m monai_skinattr.apps.label init <app folder> | versions <bundle> | restore <bundle> <n>``."""

from __future__ import annotations

import argparse
from pathlib import Path

from monai_skinattr.apps.label import init_app


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m monai_skinattr.apps.label", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    init = commands.add_parser("init", help="write the app folder for monailabel start_server --app")
    init.add_argument("app_dir", help="the new (or empty) folder")
    versions = commands.add_parser("versions", help="the served models that training replaced, kept as versions")
    versions.add_argument("bundle", help="the served TATL bundle folder")
    restore = commands.add_parser("restore", help="serve a kept version again (the served model is kept first)")
    restore.add_argument("bundle", help="the served TATL bundle folder")
    restore.add_argument("version", type=int)
    args = parser.parse_args(argv)
    if args.command == "init":
        try:
            out = init_app(args.app_dir)
        except FileExistsError as e:
            parser.error(str(e))
        print(f"wrote the TATL MONAI Label app to {out}; start it with:")
        print(f"monailabel start_server --app {out} --studies <studies folder> --conf bundle <TATL bundle folder> "
              "--conf models all --uvicorn_app monai_skinattr.apps.label.server:app")  # fmt: skip
        return
    from monai_skinattr.apps.label.versions import list_versions, restore_version

    models = Path(args.bundle) / "models"
    if args.command == "versions":
        for v in list_versions(models):
            print(f"{v['version']}\tkept {v['kept']}\ttrained {v['trained'] or '-'}\tsha256 {v['model_sha256'][:12]}")
        return
    try:
        kept = restore_version(models, args.version)
    except FileNotFoundError as e:
        parser.error(str(e))
    print(f"serving version {args.version} of {models / 'model.pt'}; the model served until now is version {kept}")


if __name__ == "__main__":
    main()
