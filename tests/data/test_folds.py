from collections import Counter

import pytest

from monai_skinattr.data import ATTRIBUTES, isic_datalist, kfold, synthetic
from monai_skinattr.data.checks import read_2d
from monai_skinattr.data.folds import carve_validation, fold_split


def _flags(n_rare, n_common, n_none):
    data = [{"id": f"r{i}", "streaks": 1, "pigment_network": 1} for i in range(n_rare)]
    data += [{"id": f"c{i}", "streaks": 0, "pigment_network": 1} for i in range(n_common)]
    data += [{"id": f"n{i}", "streaks": 0, "pigment_network": 0} for i in range(n_none)]
    return data


def test_folds_partition_balanced_and_deterministic():
    data = _flags(7, 31, 12)
    folds = kfold(data, k=5, seed=3, stratify_by=("streaks", "pigment_network"))
    ids = [e["id"] for f in folds for e in f]
    assert sorted(ids) == sorted(e["id"] for e in data)  # disjoint and complete
    assert {len(f) for f in folds} == {10}
    rare = [sum(e["streaks"] for e in f) for f in folds]
    assert max(rare) - min(rare) <= 1 and sum(rare) == 7
    common = [sum(e["pigment_network"] for e in f) for f in folds]
    assert max(common) - min(common) <= 1
    assert [[e["id"] for e in f] for f in kfold(data, k=5, seed=3, stratify_by=("streaks", "pigment_network"))] == [
        [e["id"] for e in f] for f in folds
    ]
    assert kfold(data, k=5, seed=4, stratify_by=("streaks",)) != folds


def test_fold_split_and_errors():
    folds = kfold(_flags(2, 3, 5), k=2, stratify_by=())
    train, val = fold_split(folds, 1)
    assert val == folds[1] and len(train) + len(val) == 10
    with pytest.raises(IndexError):
        fold_split(folds, 2)
    with pytest.raises(ValueError, match="at least 2"):
        kfold(_flags(1, 1, 1), k=1)
    with pytest.raises(ValueError, match="cannot make 5 folds from 3"):
        kfold(_flags(1, 1, 1), k=5)


def test_folds_read_attribute_masks(tmp_path):
    root = synthetic.make_isic(tmp_path, n=15, size=(32, 32), seed=2, progress=False)
    data = isic_datalist(root, task=2, validate=False)
    folds = kfold(data, k=3, seed=0, stratify_by=ATTRIBUTES)
    assert sorted(len(f) for f in folds) == [5, 5, 5]
    present = {e["id"]: {a for a in ATTRIBUTES if read_2d(e[a]).any()} for e in data}
    totals = Counter(a for p in present.values() for a in p)
    rarest = min(totals, key=totals.get)
    per_fold = [sum(rarest in present[e["id"]] for e in f) for f in folds]
    assert sum(per_fold) == totals[rarest] and max(per_fold) - min(per_fold) <= 1


def test_kfold_default_is_plain_shuffle():
    data = _flags(7, 31, 12)
    folds = kfold(data, k=5, seed=1)
    assert sorted(e["id"] for f in folds for e in f) == sorted(e["id"] for e in data)
    assert {len(f) for f in folds} == {10}
    assert [e["id"] for f in folds for e in f] != [e["id"] for e in data]  # shuffled


@pytest.mark.parametrize("fraction, n_val", [(0.2, 10), (0.25, 12), (7, 7), (0.001, 1), (0.999, 49)])
def test_carve_validation_split(fraction, n_val):
    data = _flags(7, 31, 12)
    keys = ("streaks", "pigment_network")
    train, val = carve_validation(data, fraction=fraction, seed=5, stratify_by=keys)
    ids_train, ids_val = [e["id"] for e in train], [e["id"] for e in val]
    assert len(val) == n_val and len(train) == 50 - n_val
    assert not set(ids_train) & set(ids_val) and sorted(ids_train + ids_val) == sorted(e["id"] for e in data)
    assert ids_train == [e["id"] for e in data if e["id"] in set(ids_train)]  # the datalist's order is kept
    again = carve_validation(data, fraction=fraction, seed=5, stratify_by=keys)
    assert again == (train, val)
    rare = sum(e["streaks"] for e in val)  # the rarest flag: 7 of 50
    assert abs(rare - 7 * n_val / 50) < 1
    common_only = sum(e["pigment_network"] and not e["streaks"] for e in val)
    assert abs(common_only - 31 * n_val / 50) < 1


def test_carve_validation_seed_plain_and_errors():
    data = _flags(3, 10, 7)
    a = carve_validation(data, 0.3, seed=0)
    assert len(a[1]) == 6 and carve_validation(data, 0.3, seed=1) != a
    train, val = carve_validation(data[:2], 0.01)
    assert len(train) == len(val) == 1
    with pytest.raises(ValueError, match="at least 2"):
        carve_validation(data[:1])
    for bad in (0.0, 1.0, 1.5, 0, 20):
        with pytest.raises(ValueError):
            carve_validation(data, bad)
