"""Latency of the TATL MONAI Label server: one client against 8 at once, each request a photo the server has not seen.

    python benchmarks/label_latency.py --models bundles/tatl/experiments/tatl/TATL_wo_ImageNet/fold0/models

``--models`` is an assembled cascade (``model.pt`` + ``cascade.json``, what the README's main job writes). The
script copies the TATL bundle and those models to a temporary folder, writes a studies folder of synthetic photos,
starts ``monailabel start_server`` on 127.0.0.1, waits until the background active-learning scores are ready (so
the server is otherwise idle), then uploads synthetic photos that are not in the studies (``POST /infer/lesion``
with ``file``: each request is a full cascade pass): first one client, one request at a time; then ``--clients``
clients at once. While each phase runs, a probe asks ``/info/`` every ``--probe_s`` seconds. Prints one Markdown
table.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests
from common import header

from monai_skinattr.apps.label import init_app
from monai_skinattr.apps.label.studies import prepare_studies
from monai_skinattr.bundles import init_bundle
from monai_skinattr.data import synthetic


def start_server(root: Path, bundle: Path, studies: Path) -> tuple[subprocess.Popen, str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    command = [
        sys.executable, "-m", "monailabel.main", "start_server", "--app", str(init_app(root / "app")),
        "--studies", str(studies), "--conf", "bundle", str(bundle), "--conf", "models", "all",
        "--uvicorn_app", "monai_skinattr.apps.label.server:app", "--host", "127.0.0.1", "--port", str(port),
    ]  # fmt: skip
    log = open(root / "server.log", "w")
    return subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=root), f"http://127.0.0.1:{port}"


def wait_until_scored(url: str, process: subprocess.Popen, timeout: float = 900) -> None:
    """Until ``/info/`` answers and every studies photo has its active-learning score."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited ({process.returncode}); see its server.log")
        try:
            answer = requests.post(f"{url}/activelearning/entropy", json={}, timeout=30).json()
            if answer.get("scored") == answer.get("unlabelled"):
                return
        except requests.ConnectionError:
            pass
        time.sleep(1)
    raise TimeoutError(f"the server was not ready in {timeout} s")


def phase(url: str, photos: list[Path], clients: int, probe_s: float) -> dict:
    """Every photo uploaded once, by ``clients`` clients at once; latencies, answers and the /info probe's worst."""
    latencies, statuses, probe, done = [], [], [], threading.Event()

    def infer(photo: Path) -> None:
        start = time.monotonic()
        files = {"file": (photo.name, photo.read_bytes())}
        r = requests.post(f"{url}/infer/lesion", params={"output": "image"}, files=files, timeout=600)
        latencies.append(time.monotonic() - start)
        statuses.append(r.status_code)

    def ask_info() -> None:
        while not done.is_set():
            start = time.monotonic()
            requests.get(f"{url}/info/", timeout=600)
            probe.append(time.monotonic() - start)
            done.wait(probe_s)

    prober = threading.Thread(target=ask_info)
    prober.start()
    start = time.monotonic()
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(infer, photos))
    wall = time.monotonic() - start
    done.set()
    prober.join()
    return {
        "clients": clients,
        "requests": len(photos),
        "median": statistics.median(latencies),
        "max": max(latencies),
        "wall": wall,
        "info_max": max(probe),
        "errors": sum(s != 200 for s in statuses),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", required=True, help="an assembled cascade's models folder")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--requests", type=int, default=5, help="requests per client in the concurrent phase")
    parser.add_argument("--size", type=int, nargs=2, default=[450, 600], help="photo height and width")
    parser.add_argument("--probe_s", type=float, default=1.0, help="seconds between two /info/ requests")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        bundle = init_bundle("tatl", root / "bundle")
        shutil.copytree(args.models, bundle / "models")
        studies = prepare_studies(root / "studies", n=8, size=args.size, seed=0)
        n = args.requests + args.clients * args.requests
        data = synthetic.make_isic(root / "uploads", n=n, size=tuple(args.size), seed=1, progress=False)
        photos = sorted(data.glob("ISIC2018_Task1-2_Training_Input/*.jpg"))
        process, url = start_server(root, bundle, studies)
        try:
            wait_until_scored(url, process)
            first, rest = photos[: args.requests], photos[args.requests :]
            rows = [phase(url, first, 1, args.probe_s), phase(url, rest, args.clients, args.probe_s)]
        finally:
            os.kill(process.pid, signal.SIGTERM)
            process.wait(timeout=60)

    print(header(("torch", "monai", "monailabel")))
    print(f"- photos {args.size[0]} x {args.size[1]} (synthetic JPEGs), each uploaded once: a cascade pass per request")
    print(f"- cascade: {args.models}; /info/ asked every {args.probe_s:g} s\n")
    print("| clients | requests | median latency (s) | max latency (s) | wall (s) | slowest /info (s) | errors |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r['clients']} | {r['requests']} | {r['median']:.2f} | {r['max']:.2f} | {r['wall']:.1f} "
            f"| {r['info_max']:.3f} | {r['errors']} |"
        )


if __name__ == "__main__":
    main()
