"""The studies folder as MONAI Label's local datastore, with one label tag per TATL mask and every upload checked."""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from fastapi import HTTPException
from monailabel.datastore.local import LocalDatastore
from monailabel.interfaces.datastore import DefaultLabelTag
from PIL import Image

from monai_skinattr.data.images import displayed_size

from .checks import check_photo, read_label

__all__ = ["TATLDatastore"]


class TATLDatastore(LocalDatastore):
    """
    MONAI Label's ``LocalDatastore`` for TATL. TATL's masks overlap (attributes lie inside the lesion and over each
    other), so one label map cannot hold them: each mask is its own label tag, ``labels/lesion/<id>.png`` and
    ``labels/<attribute>/<id>.png``. Uploads are checked before they are stored — a photo must decode and be RGB, a
    label must decode, be single-channel, binary and of its photo's size (:mod:`.checks`) — and answered with an
    HTTP 4xx naming what is wrong otherwise. Labels are stored as 0/255 PNGs, whatever binary values they came with.
    A photo is unlabelled until a mask of it is submitted.

    .. code-block:: python

        store = TATLDatastore("studies", tags=["lesion", "pigment_network", "streaks"])
        store.save_label("ISIC_0000000", "lesion.png", "lesion", {})
        print(store.labelled_items())  # [{'id': 'ISIC_0000000', 'image': '.../ISIC_0000000.jpg', 'lesion': '...'}]

    Args:
        studies: the studies folder.
        tags: the label tags, one per mask (``lesion`` and the cascade's attributes).
        kwargs: ``LocalDatastore``'s other arguments (``extensions``, ``auto_reload``, ``read_only``).
    """

    def __init__(self, studies: str | Path, tags: Sequence[str], **kwargs: Any) -> None:
        self.tags = list(tags)
        super().__init__(str(studies), **kwargs)

    def add_image(self, image_id: str, image_filename: str, image_info: dict[str, Any]) -> str:
        check_photo(image_filename)
        return super().add_image(image_id, image_filename, image_info)

    def save_label(self, image_id: str, label_filename: str, label_tag: str, label_info: dict[str, Any]) -> str:
        if label_tag not in (*self.tags, DefaultLabelTag.ORIGINAL.value):
            raise HTTPException(
                400,
                f"label tag '{label_tag}' is not one of TATL's masks {self.tags}: the masks overlap, so each is "
                "submitted on its own with its name as the tag",
            )
        photo = self.get_image_uri(image_id)
        if not photo:
            raise HTTPException(404, f"image '{image_id}' is not in the datastore")
        with Image.open(photo) as im:
            size = displayed_size(im)
        mask = read_label(label_filename, size)
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / f"{image_id}.png"
            Image.fromarray(mask).save(path)
            return super().save_label(image_id, str(path), label_tag, label_info)

    def _tags_of(self, image_id: str) -> list[str]:
        return [t for t in self.get_labels_by_image_id(image_id) if t in self.tags]

    def get_labeled_images(self, label_tag: str | None = None, labels: list[str] | None = None) -> list[str]:
        return [i for i in self.list_images() if self._tags_of(i)]

    def get_unlabeled_images(self, label_tag: str | None = None, labels: list[str] | None = None) -> list[str]:
        return [i for i in self.list_images() if not self._tags_of(i)]

    def labelled_items(self) -> list[dict[str, str]]:
        """``{"id", "image", <tag>: mask path...}`` of every photo with at least one submitted mask, sorted by id."""
        items = []
        for image_id in sorted(self.get_labeled_images()):
            item = {"id": image_id, "image": self.get_image_uri(image_id)}
            item.update({t: self.get_label_uri(image_id, t) for t in self._tags_of(image_id)})
            items.append(item)
        return items
