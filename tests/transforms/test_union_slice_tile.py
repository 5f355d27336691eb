import numpy as np
import pytest
import torch
from monai.data import DataLoader, Dataset, MetaTensor

from monai_skinattr.transforms import (
    SliceVolume,
    SliceVolumed,
    StitchTiles,
    TileGrid,
    TileGridd,
    UnionMask,
    UnionMaskd,
    tile_positions,
)


def test_union_of_mixed_encodings_and_absent_masks():
    a = torch.tensor([[[0, 1], [0, 0]]])
    b = np.array([[[0, 0], [255, 0]]], dtype=np.uint8)
    empty = torch.zeros(1, 2, 2)
    out = UnionMask()([a, None, b, empty])
    assert torch.equal(out, torch.tensor([[[0.0, 1.0], [1.0, 0.0]]]))


def test_union_keeps_metadata_and_errors():
    out = UnionMask()([MetaTensor(torch.ones(1, 2, 2), meta={"filename_or_obj": "a.png"})])
    assert out.meta["filename_or_obj"] == "a.png"
    with pytest.raises(ValueError, match="all were absent"):
        UnionMask()([None, None])
    with pytest.raises(ValueError, match="one shape"):
        UnionMask()([torch.zeros(1, 2, 2), torch.zeros(1, 3, 3)])


def test_union_dict_skips_missing_keys():
    data = {"globules": torch.tensor([[[1, 0]]]), "streaks": None, "image": torch.zeros(3, 1, 2)}
    out = UnionMaskd(keys=["globules", "streaks", "pigment_network"], output_key="union")(data)
    assert torch.equal(out["union"], torch.tensor([[[1.0, 0.0]]]))
    with pytest.raises(ValueError, match="none of the keys"):
        UnionMaskd(keys=["streaks", "milia_like_cyst"])(data)


def test_slice_volume_along_each_axis():
    vol = torch.arange(2 * 3 * 4 * 5, dtype=torch.float32).reshape(2, 3, 4, 5)
    for axis, n in ((0, 3), (1, 4), (-1, 5)):
        slices = SliceVolume(axis=axis)(vol)
        assert len(slices) == n
        assert slices[1].meta["slice_index"] == 1
        assert torch.equal(slices[1], vol.select(axis % 3 + 1, 1))
    with pytest.raises(ValueError, match="3D volume"):
        SliceVolume()(torch.zeros(1, 4, 4))


def test_slice_volumed_pairs_and_loader_flattens():
    vol = torch.rand(1, 8, 8, 5)
    lab = (vol > 0.5).float()
    data = [{"image": vol, "label": lab, "patient": "p1"}, {"image": vol, "label": lab, "patient": "p2"}]
    items = SliceVolumed(keys=["image", "label"])(data[0])
    assert [d["slice_index"] for d in items] == [0, 1, 2, 3, 4]
    assert torch.equal(items[2]["label"], lab[..., 2]) and items[2]["patient"] == "p1"
    batch = next(iter(DataLoader(Dataset(data, SliceVolumed(keys=["image", "label"])), batch_size=2)))
    assert batch["image"].shape == (10, 1, 8, 8)
    with pytest.raises(ValueError, match="different numbers of slices"):
        SliceVolumed(keys=["image", "label"])({"image": vol, "label": lab[..., :3]})


def test_idrid_tile_counts():
    assert len(tile_positions((1120, 2240), 448, 112)) == 119
    assert len(tile_positions((1120, 2240), 224, 224)) == 50


def test_test_tiles_stitch_back_exactly():
    img = torch.rand(3, 1120, 2240)
    tiles = TileGrid(window=224, stride=224)(img)
    assert len(tiles) == 50
    assert tiles[11].meta["location"] == (224, 224)
    assert torch.equal(StitchTiles()(tiles), img)


def test_overlapping_tiles_average_back():
    img = torch.rand(1, 1120, 2240)
    tiles = TileGrid(window=448, stride=112)(img)
    assert len(tiles) == 119
    torch.testing.assert_close(StitchTiles()(tiles), img)


def test_border_is_never_skipped():
    positions = tile_positions((100, 130), 48, 20)
    assert positions[-1] == (52, 82)
    covered = np.zeros((100, 130), bool)
    for y, x in positions:
        covered[y : y + 48, x : x + 48] = True
    assert covered.all()


def test_dark_tiles_dropped_and_left_as_fill_when_stitched():
    img = torch.zeros(1, 8, 8)
    img[:, :4, :4] = 1
    tiles = TileGrid(window=4, dark_threshold=0.05)(img)
    assert [t.meta["location"] for t in tiles] == [(0, 0)]
    assert torch.equal(StitchTiles(fill=0)(tiles), img)


def test_tilegridd_keeps_image_and_mask_paired():
    img = torch.rand(3, 12, 12)
    mask = (img[:1] > 0.5).float()
    items = TileGridd(keys=["image", "label"], window=6, stride=3)({"image": img, "label": mask, "id": "x"})
    assert len(items) == 9
    y, x = items[4]["location"]
    assert torch.equal(items[4]["label"], mask[:, y : y + 6, x : x + 6]) and items[4]["id"] == "x"


@pytest.mark.parametrize(
    "args, message",
    [((4, 5), "leave gaps"), ((0, 1), "window must be an integer >= 1"), ((20, 10), "smaller than the window")],
)
def test_tile_bad_arguments(args, message):
    with pytest.raises(ValueError, match=message):
        tile_positions((12, 12), *args)


def test_stitch_needs_locations():
    with pytest.raises(ValueError, match="location"):
        StitchTiles()([torch.zeros(1, 4, 4)])


def test_stitch_integer_tiles_exactly():
    img = torch.randint(0, 2, (1, 8, 8), dtype=torch.uint8)
    tiles = TileGrid(4, 4)(img)  # no overlap: the same integers back
    out = StitchTiles()(tiles)
    assert out.dtype == torch.uint8 and torch.equal(out, img)
    zeros, ones = torch.zeros(1, 4, 4, dtype=torch.uint8), torch.ones(1, 4, 4, dtype=torch.uint8)
    out = StitchTiles()([zeros, ones], [(0, 0), (0, 2)], (4, 6))  # columns 2-3 covered by both
    assert out.dtype == torch.float32
    assert out[0, 0].tolist() == [0.0, 0.0, 0.5, 0.5, 1.0, 1.0]
