"""The studies folder as MONAI Label's local datastore: a label map or one mask per submission, every upload checked."""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from fastapi import HTTPException
from monailabel.datastore.local import LocalDatastore
from monailabel.interfaces.datastore import DefaultLabelTag
from PIL import Image

from monai_skinattr.data.images import displayed_size

from .checks import check_photo, read_label, read_label_map

__all__ = ["TATLDatastore"]


class TATLDatastore(LocalDatastore):
    """
    MONAI Label's ``LocalDatastore`` for TATL: the studies folder, each TATL mask stored as its own label tag,
    ``labels/lesion/<id>.png`` and ``labels/<attribute>/<id>.png`` (0/255 PNGs, whatever values they came with).
    Labels are submitted in one of two forms (:data:`LABEL_TAGS` says which tag means what):

    - a **label map** under MONAI Label's default tag ``final`` (what stock clients send): one value per mask, the
      values ``/info`` publishes as ``labels``; the lesion is every labelled pixel, each attribute the pixels of its
      value, and every mask of the photo is saved (an attribute without pixels as an empty mask). A pixel holds one
      value, so where attributes overlap each other the per-mask form is needed;
    - **one mask** under the mask's name as the tag (``lesion``, ``pigment_network``...), binary.

    Uploads are checked before anything is stored — a photo must decode and be RGB, a label must decode, be
    single-channel, of its photo's size and hold only the values of its form (:mod:`.checks`) — and answered with an
    HTTP 4xx naming what is wrong otherwise. A photo is unlabelled until a mask of it is submitted.

    .. code-block:: python

        store = TATLDatastore("studies", values={"lesion": 1, "pigment_network": 6, "streaks": 7})
        store.save_label("ISIC_0000000", "annotation.png", "final", {})  # a label map: 0, 1, 6, 7
        store.save_label("ISIC_0000001", "lesion.png", "lesion", {})  # one mask: 0 and one value
        print(store.labelled_items())  # [{'id': 'ISIC_0000000', 'image': '.../ISIC_0000000.jpg', 'lesion': ...}, ...]

    Args:
        studies: the studies folder.
        values: mask name -> its value in a label map, the lesion first (``lesion`` and the cascade's attributes).
        kwargs: ``LocalDatastore``'s other arguments (``extensions``, ``auto_reload``, ``read_only``).
    """

    def __init__(self, studies: str | Path, values: Mapping[str, int], **kwargs: Any) -> None:
        self.values = dict(values)
        self.tags = list(self.values)
        super().__init__(str(studies), **kwargs)

    def label_tags(self) -> dict[str, str]:
        """The accepted label tags and what each means, as ``/info`` publishes them (``label_tags``)."""
        legend = ", ".join(f"{value} {name}" for name, value in self.values.items())
        tags = {
            DefaultLabelTag.FINAL.value: f"a label map of every mask of the photo (MONAI Label's default tag): 0 "
            f"background, {legend}; the lesion is every labelled pixel, an attribute without pixels is saved empty; "
            "where attributes overlap, submit them one mask at a time",
        }
        tags.update({name: f"the {name.replace('_', ' ')} mask alone: 0 and one value" for name in self.tags})
        return tags

    def add_image(self, image_id: str, image_filename: str, image_info: dict[str, Any]) -> str:
        check_photo(image_filename)
        return super().add_image(image_id, image_filename, image_info)

    def save_label(self, image_id: str, label_filename: str, label_tag: str, label_info: dict[str, Any]) -> str:
        if label_tag not in (*self.label_tags(), DefaultLabelTag.ORIGINAL.value):
            raise HTTPException(
                400,
                f"label tag '{label_tag}' is not accepted; the tags are '{DefaultLabelTag.FINAL.value}' (a label map "
                f"of every mask, the default) or one mask's name {self.tags} (/info lists them as label_tags)",
            )
        photo = self.get_image_uri(image_id)
        if not photo:
            raise HTTPException(404, f"image '{image_id}' is not in the datastore")
        with Image.open(photo) as im:
            size = displayed_size(im)
        if label_tag == DefaultLabelTag.FINAL.value:
            masks = read_label_map(label_filename, size, self.values)
        else:
            masks = {label_tag: read_label(label_filename, size)}
        with tempfile.TemporaryDirectory() as tmp:
            for tag, mask in masks.items():
                path = Path(tmp) / tag / f"{image_id}.png"
                path.parent.mkdir()
                Image.fromarray(mask).save(path)
                label_id = super().save_label(image_id, str(path), tag, dict(label_info))
        return label_id

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
