"""TATL's cascade served by MONAI Label: the bundle's inference once per photo (cached), one infer task per map."""

from __future__ import annotations

import concurrent.futures
import logging
import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from fastapi import HTTPException
from monai.config import KeysCollection
from monai.transforms import MapTransform
from monai.utils import convert_to_tensor
from monailabel.interfaces.tasks.infer_v2 import InferType
from monailabel.tasks.infer.basic_infer import BasicInferTask
from monailabel.tasks.infer.bundle import BundleInferTask
from skimage.measure import approximate_polygon, find_contours

from monai_skinattr.apps.tatl import SaveCascadeMasksd, optimize_cascade
from monai_skinattr.utils.io import file_sha256

from .checks import check_photo

__all__ = ["TATLCascadeTask", "TATLMapTask", "LabelMapd", "MaskContoursd"]

logger = logging.getLogger(__name__)


class TATLCascadeTask(BundleInferTask):
    """
    The TATL bundle's ``inference.json`` as one MONAI Label task: its preprocessing, ``TATLCascadeNet`` (weights
    ``models/model.pt``) and postprocessing (``Invertd``; the bundle's mask writer is left out) give a photo's
    ``(3 + A, H, W)`` probabilities ``background, lesion, union, <attributes>`` at its original size; the network
    is optimised for inference as the bundle's is (``inference_options``: BatchNorm folded, SiLU, channels-last,
    shared FE encoders).
    :meth:`probabilities` checks the photo, runs the cascade at most once per photo and checkpoint and keeps the most
    recent results (up to ``cache_mb``), so every map of a photo and the active-learning scores share one pass; a
    new checkpoint (after training) starts new passes. The passes run one at a time in one thread (each uses every
    core); a request answered from the cache never waits for a pass, and one whose pass has not started within
    ``max_wait_s`` is answered ``503`` (with ``Retry-After``) and its pass dropped, so no request hangs without limit.
    :meth:`idle` tells background work (the active-learning scores) whether a request is waiting, so requests go
    first.

    .. code-block:: python

        cascade = TATLCascadeTask("bundles/tatl", conf={})
        print(cascade.channels)  # ['background', 'lesion', 'union', 'globules', ...]
        probs = cascade.probabilities("studies/ISIC_0000000.jpg")  # (8, H, W)

    Args:
        bundle: the TATL bundle folder (``configs/inference.json``, ``models/model.pt`` and ``cascade.json``).
        conf: the app's configuration (MONAI Label's ``--conf`` pairs).
        cache_mb: memory for the probabilities of recent photos (a 600 x 450 photo takes 8.6 MB).
        max_wait_s: the longest a request waits for its turn to run a pass before it is answered 503.
    """

    def __init__(
        self, bundle: str | Path, conf: Mapping[str, str], cache_mb: float = 1024, max_wait_s: float = 60
    ) -> None:
        super().__init__(
            str(bundle),
            dict(conf),
            type=InferType.SEGMENTATION,
            post_filter=[SaveCascadeMasksd],
            add_post_restore=False,  # the maps are at the photo's size already (Restored would transpose them)
            load_strict=True,
            skip_writer=True,
        )
        if not self.is_valid():
            raise FileNotFoundError(f"'{bundle}' is not a TATL bundle with configs/inference.json and models/model.pt.")
        self._config.pop("model_filename")  # always the served models/model.pt
        self.channels: list[str] = list(self.network.channels)
        self.labels = {name: i for i, name in enumerate(self.channels) if name != "background"}
        self.threshold = float(self.bundle_config.get_parsed_content("threshold"))
        self.amp = bool(self.bundle_config.get_parsed_content("amp"))
        self.cache_bytes = cache_mb * 2**20
        self.max_wait_s = max_wait_s
        self._cache: OrderedDict[tuple, torch.Tensor] = OrderedDict()
        self._cache_lock = threading.Lock()  # the cache and the count of waiting requests
        # every pass in one thread, one at a time: each uses every core, and PyTorch's CPU thread team is reused
        # (called from many threads at once, it oversubscribes the cores and every pass slows down)
        self._passes = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="tatl-cascade")
        self._waiting = 0

    def _get_network(self, device: str, data: Mapping | None) -> torch.nn.Module:
        """MONAI Label's network with the served weights, made ready for inference as the bundle's ``network`` is
        (``optimize_cascade`` with the bundle's ``inference_options``), once per loaded checkpoint."""
        network = super()._get_network(device, data)
        if not getattr(network, "optimized_for_inference", False):
            optimize_cascade(network, **self.bundle_config.get_parsed_content("inference_options"))
            network.optimized_for_inference = True
        return network

    def run_inferer(self, data: dict[str, Any], convert_to_batch: bool = True, device: str = "cuda") -> dict:
        """The network as the bundle's evaluator runs it: in mixed precision on CUDA when the bundle's ``amp`` is on."""
        with torch.autocast("cuda", enabled=self.amp and str(device).startswith("cuda")):
            return super().run_inferer(data, convert_to_batch, device)

    def checkpoint(self) -> str:
        """What identifies the served weights: the checkpoint's modification time and size, ``"<ns>-<bytes>"``."""
        stat = os.stat(self.get_path())
        return f"{stat.st_mtime_ns}-{stat.st_size}"

    def key(self, image: str | Path) -> tuple[str, str]:
        """What identifies a pass: the photo's SHA-256 and the served :meth:`checkpoint`."""
        return file_sha256(image), self.checkpoint()

    def idle(self) -> bool:
        """Whether no request waits for a cascade pass."""
        with self._cache_lock:
            return self._waiting == 0

    def _cached(self, key: tuple) -> torch.Tensor | None:
        with self._cache_lock:
            if key in self._cache:
                self._cache.move_to_end(key)
                return self._cache[key]
        return None

    def probabilities(self, image: str | Path, device: str = "cpu", request: bool = True) -> torch.Tensor:
        """The photo's ``(3 + A, H, W)`` probabilities on the CPU (HTTP 404/415/422 for a missing or bad photo, 503
        when a ``request``'s pass did not start within ``max_wait_s``; background work waits as long as it takes)."""
        if not Path(image).is_file():
            raise HTTPException(404, f"image file '{image}' does not exist")
        key = self.key(image)
        if (probs := self._cached(key)) is not None:
            return probs
        size = check_photo(image)
        with self._cache_lock:
            self._waiting += request
        try:
            turn = self._passes.submit(self._pass, image, key, size, device)
            try:
                return turn.result(timeout=self.max_wait_s if request else None)
            except concurrent.futures.TimeoutError:
                if not turn.cancel():  # it has started: its result is one pass away
                    return turn.result()
        finally:
            with self._cache_lock:
                self._waiting -= request
        retry = f"{max(1, round(self.max_wait_s / 2))}"
        raise HTTPException(
            503, f"busy: waited {self.max_wait_s:g} s for the cascade, try again", headers={"Retry-After": retry}
        )

    def in_pass_thread(self, fn: Callable, *args: Any) -> Any:
        """``fn(*args)`` in the passes' thread, after the passes queued before it. Other PyTorch work of the server
        (the active-learning scores) runs there too: a second thread that runs PyTorch's CPU kernels slows every
        pass by about a third on two cores (two OpenMP thread teams on the same cores)."""
        return self._passes.submit(fn, *args).result()

    def _pass(self, image: str | Path, key: tuple, size: tuple[int, int], device: str) -> torch.Tensor:
        """One cascade pass, in the passes' one thread; the cache first (another request may have run this photo)."""
        if (probs := self._cached(key)) is not None:
            return probs
        logger.info("cascade pass on %s", image)
        _, data = self({"image": str(image), "device": device})
        probs = convert_to_tensor(data[self.output_label_key], track_meta=False).detach().to("cpu", torch.float32)
        if tuple(probs.shape) != (len(self.channels), *size):
            raise RuntimeError(f"the cascade gave {tuple(probs.shape)} for a {size[0]}x{size[1]} photo '{image}'.")
        with self._cache_lock:
            self._cache[key] = probs
            while len(self._cache) > 1 and sum(p.nbytes for p in self._cache.values()) > self.cache_bytes:
                self._cache.popitem(last=False)
        return probs


class LabelMapd(MapTransform):
    """
    A ``(H, W)`` probability map as a MONAI Label label map: ``value`` where the probability is at least
    ``threshold`` (the rule of the bundle's own masks), 0 elsewhere, ``uint8``, transposed to the ``(W, H)`` (x, y)
    layout MONAI Label's 2D ``Writer`` expects (the PNG it writes is ``H`` rows by ``W`` columns).

    .. code-block:: python

        LabelMapd("pred", threshold=0.5, value=6)({"pred": torch.rand(48, 80)})["pred"].shape  # (80, 48)
    """

    def __init__(self, keys: KeysCollection, threshold: float, value: int) -> None:
        super().__init__(keys)
        self.threshold = threshold
        self.value = value

    def __call__(self, data: Mapping[Hashable, Any]) -> dict:
        d = dict(data)
        for key in self.key_iterator(d):
            prob = convert_to_tensor(d[key], track_meta=False).cpu().numpy()
            d[key] = ((prob >= self.threshold) * self.value).astype(np.uint8).T
        return d


class MaskContoursd(MapTransform):
    """
    The outlines of each label of an x-first ``(W, H)`` label map as polygons in the result JSON, in the layout of
    MONAI Label's ``FindContoursd`` (``result["annotation"]["elements"]``: ``{"label", "contours"}`` per label,
    each contour a list of ``[x, y]`` pixel vertices). Unlike its scikit-image fallback (used without OpenCV), which
    rounds vertices before checking the polygon and so drops most outlines of real masks, the contours are traced
    on the mask padded by one pixel (closed at the photo's border), simplified (``approximate_polygon``, 0.5 px) and
    kept when their area is at least ``min_poly_area`` px² (a request may set ``min_poly_area``).

    .. code-block:: python

        label = np.zeros((80, 48), np.uint8); label[10:30, 5:15] = 1
        MaskContoursd("pred", {"lesion": 1})({"pred": label})["result"]["annotation"]["elements"][0]["contours"]
        # [[[30, 14], [29, 4], [10, 5], [10, 14], [30, 14]]]: the pixel edges x 9.5..29.5, y 4.5..14.5, rounded

    Args:
        keys: the label maps.
        labels: label name -> value in the map.
        min_poly_area: smallest polygon kept, in px².
        result: the key of the result JSON.
    """

    def __init__(
        self, keys: KeysCollection, labels: Mapping[str, int], min_poly_area: float = 80, result: str = "result"
    ) -> None:
        super().__init__(keys)
        self.labels = dict(labels)
        self.min_poly_area = min_poly_area
        self.result = result

    def __call__(self, data: Mapping[Hashable, Any]) -> dict:
        d = dict(data)
        min_area = float(d.get("min_poly_area", self.min_poly_area))
        elements = []
        for key in self.key_iterator(d):
            label_map = np.asarray(d[key])
            for name, value in self.labels.items():
                polygons = []
                for contour in find_contours(np.pad(label_map == value, 1).astype(np.uint8), 0.5):
                    xy = approximate_polygon(contour - 1, tolerance=0.5)
                    area = 0.5 * abs(np.dot(xy[:, 0], np.roll(xy[:, 1], 1)) - np.dot(xy[:, 1], np.roll(xy[:, 0], 1)))
                    if len(xy) >= 4 and area >= min_area:
                        polygons.append(np.round(xy).astype(int).tolist())
                if polygons:
                    elements.append({"label": name, "contours": polygons})
        d.setdefault(self.result, {})["annotation"] = {"elements": elements}
        return d


class TATLMapTask(BasicInferTask):
    """
    One map of the TATL cascade (``lesion``, ``union`` or an attribute) as a MONAI Label segmentation model: the
    probabilities of the shared cascade pass (:class:`TATLCascadeTask`), thresholded as the bundle thresholds its
    masks, returned as a PNG label map at the photo's size and orientation (pixel value = the map's channel index,
    as ``/info`` lists it) and, in the result JSON, as polygons (``annotation.elements[].contours``, ``[x, y]``
    pixel corners; ``min_poly_area`` drops small ones). Separate tasks keep overlapping maps apart.

    .. code-block:: python

        task = TATLMapTask(cascade, "pigment_network")
        label_png, result = task({"image": "studies/ISIC_0000000.jpg"})

    Args:
        cascade: the shared cascade task.
        name: the map: one of ``cascade.labels``.
    """

    def __init__(self, cascade: TATLCascadeTask, name: str) -> None:
        if name not in cascade.labels:
            raise ValueError(f"the cascade has no map '{name}'; its maps are {list(cascade.labels)}.")
        self.cascade = cascade
        self.name = name
        self.channel = cascade.labels[name]
        what = "lesion" if name == "lesion" else "union of the attributes" if name == "union" else f"attribute {name}"
        super().__init__(
            path=cascade.get_path(),
            network=None,
            type=InferType.SEGMENTATION,
            labels={name: self.channel},
            dimension=2,
            description=f"TATL cascade: {what} (label value {self.channel})",
            config={"min_poly_area": 80},
        )

    def pre_transforms(self, data: Mapping | None = None) -> Sequence[Callable]:
        return []  # the cascade loads the photo

    def post_transforms(self, data: Mapping | None = None) -> Sequence[Callable]:
        return [
            LabelMapd(self.output_label_key, threshold=self.cascade.threshold, value=self.channel),
            MaskContoursd(self.output_label_key, labels=self.labels),
        ]

    def run_inferer(self, data: dict[str, Any], convert_to_batch: bool = True, device: str = "cuda") -> dict:
        image = data[self.input_key]
        if not isinstance(image, str):
            raise HTTPException(400, "TATL segments a photo given by its datastore id or uploaded as a file")
        data[self.output_label_key] = self.cascade.probabilities(image, device)[self.channel]
        return data

    def writer(self, data: dict[str, Any], extension: str | None = None, dtype: Any = None) -> tuple[Any, Any]:
        return super().writer(data, extension=".png", dtype="uint8")  # lossless, whatever the photo's format
