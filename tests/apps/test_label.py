"""The TATL MONAI Label app: the real server on 127.0.0.1 driven over HTTP as a client would, with a tiny trained
TATL bundle; its answers are compared with the bundle's own inference on the same photos."""

import io
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from monai.bundle import ConfigParser, ConfigWorkflow
from monai.data import MetaTensor
from monai.transforms import Compose, Invertd, Resized
from PIL import Image

from monai_skinattr.apps.tatl import TATLSegmenter, assemble_cascade, cascade_outputs, load_transforms
from monai_skinattr.bundles import bundle_dir
from monai_skinattr.data import ATTRIBUTES, isic_datalist, synthetic
from monai_skinattr.losses import TverskyJaccardLoss

pytest.importorskip("monailabel")
requests = pytest.importorskip("requests")

from fastapi import HTTPException  # noqa: E402
from monailabel.client import MONAILabelClient  # noqa: E402

from monai_skinattr.apps.label import init_app  # noqa: E402
from monai_skinattr.apps.label.datastore import TATLDatastore  # noqa: E402
from monai_skinattr.apps.label.infer import TATLCascadeTask  # noqa: E402
from monai_skinattr.apps.label.strategies import LesionBoxEntropy  # noqa: E402
from monai_skinattr.apps.label.studies import prepare_studies  # noqa: E402
from monai_skinattr.apps.label.train import RUNNING_FILE  # noqa: E402
from monai_skinattr.apps.label.versions import list_versions, restore_version  # noqa: E402

CONFIGS = bundle_dir("tatl") / "configs"
SIZE = (56, 88)  # non-square photos, height x width
MAPS = ["lesion", "union", *ATTRIBUTES]
TINY = {"attributes": list(ATTRIBUTES), "archs": ["unet"], "lesion_size": [64, 64], "crop_size": [64, 64], "offset": 7}
TINY["photo_size"] = [128, 128]  # photos sampled at 2 x lesion_size, as the bundle's training does


def tiny_bundle(bundle: Path, data: Path, steps: int = 4) -> Path:
    """A copy of the TATL bundle's configs serving a cascade assembled from segmenters trained for a few steps."""
    shutil.copytree(CONFIGS, bundle / "configs")
    keys = ["image", "lesion", *ATTRIBUTES]
    load = Compose([*load_transforms(keys, TINY["photo_size"]), Resized(keys, spatial_size=TINY["crop_size"])])
    batch = [load(e) for e in isic_datalist(data, task=2)]
    images = torch.stack([b["image"] for b in batch]).as_tensor()
    truth = {k: torch.stack([b[k] for b in batch]).as_tensor().round() for k in keys[1:]}
    stages = {"lesion/model.pt": ["lesion"], "union/unet/model.pt": list(ATTRIBUTES)}
    stages.update({f"attributes/{a}/unet/model.pt": [a] for a in ATTRIBUTES})
    torch.manual_seed(0)
    for rel, targets in stages.items():
        net = TATLSegmenter("unet")
        target = torch.stack([truth[k] for k in targets]).amax(dim=0)
        optimizer = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)
        for _ in range(steps):
            optimizer.zero_grad()
            TverskyJaccardLoss()(net(images), target).backward()
            optimizer.step()
        for m in net.modules():  # BatchNorm statistics of the training photos, as PreciseBN would give
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                m.reset_running_stats()
                m.momentum = None
        with torch.no_grad():
            net(images)
        (bundle / "models" / rel).parent.mkdir(parents=True, exist_ok=True)
        torch.save(net.state_dict(), bundle / "models" / rel)
    assemble_cascade(bundle / "models", TINY, CONFIGS / "metadata.json")
    return bundle


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """A ``monailabel start_server`` subprocess on 127.0.0.1 and the paths it serves."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.data = synthetic.make_isic(root / "isic", n=8, size=SIZE, progress=False)
        self.bundle = tiny_bundle(root / "bundle", self.data)
        self.studies = prepare_studies(root / "studies", n=6, dataset_dir=self.data)
        self.app = init_app(root / "app")  # MONAI Label writes logs/ etc. into the app folder: the user's
        self.url = f"http://127.0.0.1:{free_port()}"
        self.log = root / "server.log"
        command = [
            sys.executable, "-m", "monailabel.main", "start_server",
            "--app", str(self.app), "--studies", str(self.studies),
            "--conf", "bundle", str(self.bundle), "--conf", "models", "all",
            "--uvicorn_app", "monai_skinattr.apps.label.server:app",
            "--host", "127.0.0.1", "--port", self.url.rsplit(":", 1)[1],
        ]  # fmt: skip
        with open(self.log, "w") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=root)

    def wait(self, timeout: float = 240) -> None:
        start = time.monotonic()
        while time.monotonic() - start < timeout:
            if self.process.poll() is not None:
                raise AssertionError(f"the server exited ({self.process.returncode}):\n{self.log.read_text()[-5000:]}")
            try:
                if requests.get(f"{self.url}/info/", timeout=5).status_code == 200:
                    return
            except requests.ConnectionError:
                pass
            time.sleep(1)
        raise AssertionError(f"the server did not answer /info/ in {timeout} s:\n{self.log.read_text()[-5000:]}")

    def stop(self) -> None:
        os.kill(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def passes(self, photo: Path) -> int:
        """How many cascade passes the server logged for ``photo``."""
        return self.log.read_text().count(f"cascade pass on {photo}")

    def photos(self) -> list[Path]:
        return sorted(self.studies.glob("*.jpg"))

    def unlabelled(self) -> list[Path]:
        labelled = {p.stem for p in (self.studies / "labels").glob("*/*.png") if p.parent.name in MAPS}
        return [p for p in self.photos() if p.stem not in labelled]


@pytest.fixture(scope="module")
def server(tmp_path_factory, request):
    s = Server(tmp_path_factory.mktemp("label"))
    request.addfinalizer(s.stop)
    s.wait()
    return s


def bundle_masks(bundle: Path, photo: Path, out: Path) -> dict[str, np.ndarray]:
    """The bundle's own inference (``inference.json``) on ``photo``: its masks, as booleans."""
    (out / "photos").mkdir(parents=True)
    shutil.copy(photo, out / "photos")
    wf = ConfigWorkflow(
        config_file=str(bundle / "configs" / "inference.json"),
        logging_file=False,
        workflow_type="infer",
        bundle_root=str(bundle),
        dataset_dir=str(out / "photos"),
        output_dir=str(out / "masks"),
    )
    wf.initialize()
    wf.run()
    wf.finalize()
    paths = cascade_outputs(out / "masks", photo.stem, ["background", *MAPS])
    return {name: np.asarray(Image.open(paths[name])) > 0 for name in MAPS}


def bundle_probabilities(bundle: Path, photo: Path) -> np.ndarray:
    """The bundle's ``network`` on its ``preprocessing`` of ``photo``: ``(3 + A, H, W)`` probabilities."""
    parser = ConfigParser()
    parser.read_config(str(bundle / "configs" / "inference.json"))
    parser.update({"bundle_root": str(bundle), "device": "$torch.device('cpu')"})
    net = parser.get_parsed_content("network").eval()
    pre = parser.get_parsed_content("preprocessing")
    data = pre({"image": str(photo)})
    with torch.no_grad():
        data["pred"] = MetaTensor(net(data["image"][None].as_tensor())[0])
    return Invertd("pred", transform=pre, orig_keys="image", nearest_interp=False)(data)["pred"].numpy()  # photo size


def entropy_in_lesion_box(probs: np.ndarray) -> float:
    """Mean binary entropy (bits) of the union/attribute maps inside the predicted lesion's bounding box."""
    lesion = probs[1] >= 0.5
    rows, cols = np.flatnonzero(lesion.any(axis=1)), np.flatnonzero(lesion.any(axis=0))
    box = probs[2:, rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1] if rows.size else probs[2:]
    p = np.clip(box.astype(np.float64), 1e-12, 1 - 1e-12)
    return float((-(p * np.log2(p)) - (1 - p) * np.log2(1 - p)).mean())


def infer_png(server: Server, model: str, image: str) -> np.ndarray:
    r = requests.post(f"{server.url}/infer/{model}", params={"image": image, "output": "image"}, timeout=120)
    assert r.status_code == 200, r.text
    return np.asarray(Image.open(io.BytesIO(r.content)))


def test_info_lists_models_and_labels(server):
    info = requests.get(f"{server.url}/info/", timeout=30).json()
    assert info["labels"] == {name: MAPS.index(name) + 1 for name in MAPS if name != "union"}  # the union: derived
    assert list(info["label_tags"]) == ["final", "lesion", *ATTRIBUTES]
    assert "label map" in info["label_tags"]["final"] and "3 globules" in info["label_tags"]["final"]
    assert sorted(info["models"]) == sorted(MAPS)
    assert info["models"]["pigment_network"]["labels"] == {"pigment_network": 6}
    assert info["models"]["lesion"]["dimension"] == 2 and info["models"]["union"]["type"] == "segmentation"
    assert set(info["strategies"]) == {"entropy", "random"} and list(info["trainers"]) == ["tatl"]
    assert info["datastore"]["total"] == 6


def test_infer_equals_the_bundles_own_inference(server, tmp_path):
    """Every map of a non-square photo at its size and orientation, equal to the bundle's masks, from one pass."""
    photo = server.photos()[0]
    expected = bundle_masks(server.bundle, photo, tmp_path)
    for name in MAPS:
        label = infer_png(server, name, photo.stem)
        assert label.shape == SIZE and label.dtype == np.uint8
        assert set(np.unique(label)) <= {0, MAPS.index(name) + 1}  # pixel value = the label value /info lists
        np.testing.assert_array_equal(label > 0, expected[name], err_msg=name)
    assert server.passes(photo) == 1
    r = requests.post(f"{server.url}/infer/lesion", params={"image": photo.stem, "output": "json"}, timeout=60)
    result = r.json()
    assert result["label_names"] == {"lesion": 1}
    lesion = expected["lesion"]
    if lesion.sum() >= 80:  # FindContoursd's default smallest polygon
        points = np.array([p for e in result["annotation"]["elements"] for c in e["contours"] for p in c])
        rows, cols = np.flatnonzero(lesion.any(axis=1)), np.flatnonzero(lesion.any(axis=0))
        assert points[:, 0].min() >= cols[0] - 1 and points[:, 0].max() <= cols[-1] + 1  # [x, y]: x is the column
        assert points[:, 1].min() >= rows[0] - 1 and points[:, 1].max() <= rows[-1] + 1


def test_a_training_whose_process_is_gone_is_reported_interrupted(server):
    """What a restart after a crash during training finds: the training's record, its process gone. The stock
    client's ``train_status()`` gets it as INTERRUPTED (MONAI Label alone answers 404: no training since start-up)."""
    client = MONAILabelClient(server.url)
    assert client.train_status(check_if_running=True) is False
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    record = server.bundle / "models" / RUNNING_FILE
    record.write_text(json.dumps({"started": "2026-12-07 10:00:00", "pid": dead.pid, "max_epochs": 3}))
    try:
        status = client.train_status()
        assert status["status"] == "INTERRUPTED" and status["started"] == "2026-12-07 10:00:00", status
        assert client.info()["train_stats"]["tatl"]["interrupted"]["max_epochs"] == 3
    finally:
        record.unlink()
    with pytest.raises(Exception, match="404"):
        client.train_status()


def test_labels_train_and_the_next_infer_uses_the_new_weights(server, tmp_path):
    photo, other = server.photos()[1], server.photos()[2]
    for image in (photo, other):
        for tag in ["lesion", *ATTRIBUTES]:
            suffix = "segmentation" if tag == "lesion" else f"attribute_{tag}"
            folder = "Task1" if tag == "lesion" else "Task2"
            mask = next(server.data.glob(f"ISIC2018_{folder}_*/{image.stem}_{suffix}.png"))
            with open(mask, "rb") as f:
                r = requests.put(
                    f"{server.url}/datastore/label",
                    params={"image": image.stem, "tag": tag},
                    files={"label": ("mask.png", f, "image/png")},
                    timeout=30,
                )
            assert r.status_code == 200 and r.json()["label"] == image.stem, r.text
    assert (server.studies / "labels" / "streaks" / f"{photo.stem}.png").is_file()
    served = torch.load(server.bundle / "models" / "model.pt", weights_only=True)
    served_file = (server.bundle / "models" / "model.pt").read_bytes()
    before = requests.get(f"{server.url}/model/info/lesion", timeout=30).json()["checksum"]
    infer_png(server, "lesion", photo.stem)

    r = requests.post(f"{server.url}/train/tatl", json={"max_epochs": 1}, timeout=30)
    assert r.status_code == 200, r.text
    deadline = time.monotonic() + 300
    recorded = set()  # whether the training under way is on record (what a restart after a crash reports)
    while (status := requests.get(f"{server.url}/train/", timeout=30).json())["status"] in ("SUBMITTED", "RUNNING"):
        assert time.monotonic() < deadline, "training did not finish in 300 s"
        recorded.add((server.bundle / "models" / RUNNING_FILE).is_file())
        time.sleep(1)
    assert status["status"] == "DONE", "\n".join(status.get("details", []))
    assert True in recorded and not (server.bundle / "models" / RUNNING_FILE).exists()

    assert requests.get(f"{server.url}/model/info/lesion", timeout=30).json()["checksum"] != before
    trained = torch.load(server.bundle / "models" / "model.pt", weights_only=True)
    for member in ["lesion_net", "union_net", *(f"attribute_nets.{a}" for a in ATTRIBUTES)]:
        key = next(k for k in served if k.startswith(member) and k.endswith("weight"))
        assert not torch.equal(served[key], trained[key]), f"{member} was not fine-tuned"
    stats = requests.get(f"{server.url}/info/", timeout=30).json()["train_stats"]["tatl"]
    assert stats["max_epochs"] == 1 and stats["lesion_labels"] == sorted([photo.stem, other.stem])
    expected = bundle_masks(server.bundle, photo, tmp_path)
    for name in MAPS:
        np.testing.assert_array_equal(infer_png(server, name, photo.stem) > 0, expected[name], err_msg=name)
    assert server.passes(photo) == 2  # one with the served weights, one with the new ones

    models = server.bundle / "models"
    assert stats["previous_version"] == 1 and [v["version"] for v in list_versions(models)] == [1]
    assert (models / "versions" / "1" / "model.pt").read_bytes() == served_file  # the model training replaced
    assert restore_version(models, 1) == 2  # the fine-tuned model is kept as version 2
    assert requests.get(f"{server.url}/model/info/lesion", timeout=30).json()["checksum"] == before


def test_stock_client_submits_a_label_map_with_its_default_tag(server, tmp_path):
    """``MONAILabelClient.save_label`` as it sends by default (tag ``final``): a label map with the values /info
    publishes becomes every mask of the photo; the union's value, or a value of no mask, is refused."""
    client = MONAILabelClient(server.url)
    values = client.info()["labels"]
    photo = server.photos()[3].stem
    label_map = np.zeros(SIZE, np.uint8)
    label_map[10:40, 20:70] = values["lesion"]
    label_map[15:25, 30:40] = values["pigment_network"]
    label_map[30:38, 50:66] = values["streaks"]
    path = tmp_path / "annotation.png"
    Image.fromarray(label_map).save(path)
    assert client.save_label(photo, str(path))["label"] == photo
    labels = server.studies / "labels"
    for name in ["lesion", *ATTRIBUTES]:
        mask = np.asarray(Image.open(labels / name / f"{photo}.png"))
        expected = label_map > 0 if name == "lesion" else label_map == values.get(name)
        np.testing.assert_array_equal(mask, expected.astype(np.uint8) * 255, err_msg=name)
    assert not list(labels.glob(f"final/{photo}.*"))  # stored as masks, not as the map
    Image.fromarray(np.where(label_map == values["streaks"], 2, label_map).astype(np.uint8)).save(path)
    with pytest.raises(Exception, match=r"422.*values \[2\] that are no mask"):
        client.save_label(server.photos()[4].stem, str(path))
    assert not any(labels.glob(f"*/{server.photos()[4].stem}.png"))


def test_activelearning_offers_the_most_uncertain_unlabelled_photo(server):
    """The scores are computed in the background (again after training): once every unlabelled photo is scored,
    the answer is the one with the highest entropy under the served cascade."""
    scores = {p.stem: entropy_in_lesion_box(bundle_probabilities(server.bundle, p)) for p in server.unlabelled()}
    deadline = time.monotonic() + 120
    while True:
        r = requests.post(f"{server.url}/activelearning/entropy", json={}, timeout=30)
        assert r.status_code == 200, r.text
        answer = r.json()
        assert answer["unlabelled"] == len(scores)
        if answer["scored"] == len(scores):
            break
        assert time.monotonic() < deadline, f"{answer['scored']} of {len(scores)} photos scored in 120 s"
        time.sleep(1)
    assert json.loads((server.bundle / "models" / "label_entropy.json").read_text())["scores"]  # kept on disk
    assert answer["id"] in scores and answer["entropy"] == pytest.approx(scores[answer["id"]], abs=1e-5)
    assert scores[answer["id"]] == pytest.approx(max(scores.values()), abs=1e-5)
    assert requests.post(f"{server.url}/activelearning/random", json={}, timeout=30).json()["id"] in scores


def test_scores_survive_a_restart_and_requests_never_wait_without_limit(server, tmp_path):
    """In process, on a copy of the served bundle: a new strategy (a restarted server) answers from the scores on
    disk without a pass; without scores it answers a random photo and says so; new weights discard the scores; a
    request that cannot get its turn at the cascade within ``max_wait_s`` is answered 503."""
    bundle = Path(shutil.copytree(server.bundle, tmp_path / "bundle"))  # modification times kept: same checkpoint
    store = TATLDatastore(server.studies, values=requests.get(f"{server.url}/info/", timeout=30).json()["labels"])
    cascade = TATLCascadeTask(bundle, conf={}, max_wait_s=0.5)
    unlabelled = len(store.get_unlabeled_images())
    answer = LesionBoxEntropy(cascade)({}, store)
    assert answer["scored"] == answer["unlabelled"] == unlabelled and "entropy" in answer  # no pass: from disk
    assert not cascade._cache

    (bundle / "models" / "label_entropy.json").unlink()
    strategy = LesionBoxEntropy(cascade)
    answer = strategy({}, store)
    assert answer["strategy"] == "random" and answer["scored"] == 0 and "no entropy score is ready" in answer["reason"]
    assert strategy.score_pending(store) == unlabelled
    best = strategy({}, store)
    assert best["scored"] == unlabelled and best["entropy"] == max(strategy._scores.values())
    assert best["id"] == requests.post(f"{server.url}/activelearning/entropy", json={}, timeout=30).json()["id"]
    os.utime(bundle / "models" / "model.pt")  # new weights: every score is stale
    assert strategy({}, store)["strategy"] == "random"

    labelled = server.photos()[1]  # not in this process's cache
    running = threading.Event()
    cascade._passes.submit(running.wait)  # a pass under way that does not end
    start = time.monotonic()
    with pytest.raises(HTTPException) as busy:
        cascade.probabilities(str(labelled))
    running.set()
    assert busy.value.status_code == 503 and busy.value.detail == "busy: waited 0.5 s for the cascade, try again"
    assert busy.value.headers == {"Retry-After": "1"} and 0.5 <= time.monotonic() - start < 5
    assert cascade.probabilities(str(labelled)).shape == (len(MAPS) + 1, *SIZE)


def test_info_answers_within_a_second_while_a_cascade_pass_runs(server, tmp_path):
    """A slow request (a 2400 x 3200 photo uploaded as a PNG) runs in a worker thread: /info keeps answering."""
    big = tmp_path / "big.png"
    Image.open(server.photos()[0]).resize((3200, 2400)).save(big)
    done, status = threading.Event(), []

    def infer() -> None:
        files = {"file": ("big.png", big.read_bytes())}
        r = requests.post(f"{server.url}/infer/lesion", params={"output": "image"}, files=files, timeout=300)
        status.append(r.status_code)
        done.set()

    worker = threading.Thread(target=infer)
    worker.start()
    answered, slowest = 0, 0.0
    while not done.is_set():
        start = time.monotonic()
        assert requests.get(f"{server.url}/info/", timeout=30).status_code == 200
        slowest = max(slowest, time.monotonic() - start)
        answered += not done.is_set()
        time.sleep(0.05)
    worker.join()
    assert status == [200] and answered >= 3 and slowest < 1.0, (status, answered, slowest)


def test_malformed_requests_get_4xx_and_the_server_keeps_serving(server, tmp_path):
    photo = server.photos()[0]
    truncated = tmp_path / "truncated.jpg"
    truncated.write_bytes(photo.read_bytes()[: photo.stat().st_size // 2])
    text = tmp_path / "notes.png"
    text.write_text("not an image")
    small = tmp_path / "small.png"
    Image.fromarray(np.zeros((SIZE[0] // 2, SIZE[1]), np.uint8)).save(small)

    label = {"image": photo.stem, "tag": "lesion"}
    stranger = {"image": "ISIC_9", "tag": "lesion"}
    untagged = {"image": photo.stem, "tag": "final"}
    union = {"image": photo.stem, "tag": "union"}
    cases = [  # what, method, path, query, (upload field, file), status, words of the message
        ("unknown model", "POST", "/infer/nevus", {"image": photo.stem}, None, 404, "not served"),
        ("unknown image id", "POST", "/infer/lesion", {"image": "ISIC_9"}, None, 404, "not in the datastore"),
        ("missing image id", "POST", "/infer/lesion", {}, None, 400, "no image"),
        ("non-image upload", "POST", "/infer/lesion", {}, ("file", text), 415, "not a readable image"),
        ("truncated JPEG", "POST", "/infer/lesion", {}, ("file", truncated), 415, "truncated"),
        ("truncated JPEG study", "PUT", "/datastore/image", {}, ("file", truncated), 415, "truncated"),
        ("non-image label", "PUT", "/datastore/label", label, ("label", text), 415, "not a readable image"),
        ("wrong-size label", "PUT", "/datastore/label", label, ("label", small), 422, "28x88 (height x width)"),
        ("label of unknown image", "PUT", "/datastore/label", stranger, ("label", small), 404, "not in the datastore"),
        ("label tag of no mask", "PUT", "/datastore/label", union, ("label", small), 400, "'union' is not accepted"),
        ("wrong-size label map", "PUT", "/datastore/label", untagged, ("label", small), 422, "label map is 28x88"),
        ("unknown strategy", "POST", "/activelearning/hardest", {}, None, 404, "strategies: entropy, random"),
    ]  # fmt: skip
    for what, method, path, query, upload, status, message in cases:
        files = {upload[0]: (upload[1].name, upload[1].read_bytes())} if upload else None
        r = requests.request(method, server.url + path, params=query, files=files, timeout=60)
        assert r.status_code == status and message in r.json()["detail"], (what, r.status_code, r.text)
    assert not (server.studies / "labels" / "lesion" / f"{photo.stem}.png").exists()
    assert not (server.studies / "truncated.jpg").exists()
    assert requests.get(f"{server.url}/info/", timeout=30).status_code == 200
