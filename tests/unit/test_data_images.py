"""Image data: folder layouts, CSV manifests, splits, problems and colour conversion."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from finetune_gui.config import RunConfig, TaskKind
from finetune_gui.core.data import build_data, scan_data
from finetune_gui.core.data import image_files as images_mod
from finetune_gui.core.data.image_files import check_image, load_rgb
from finetune_gui.core.errors import DataError

SIZE = 16


def png(path: Path, color=(200, 10, 10), size=(10, 12), mode="RGB") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, size, color).save(path)
    return path


def make_folder(root: Path, counts: dict[str, int]) -> Path:
    for name, n in counts.items():
        for i in range(n):
            png(root / name / f"{name}_{i}.png", color=(i * 20 % 255, 50, 100))
    return root


def config(path: Path, kind: TaskKind = TaskKind.IMAGE_CLASSIFICATION, **data) -> RunConfig:
    cfg = RunConfig.model_validate(
        {"task": {"kind": kind.value}, "data": {"path": str(path), "image_size": SIZE, **data}}
    )
    return cfg.with_base_dir(path.parent)


def split_paths(bundle) -> tuple[list[str], list[str], list[str]]:
    return tuple(sorted(getattr(ds, "paths", [])) for ds in (bundle.train, bundle.val, bundle.test))  # type: ignore


# ---------------------------------------------------------------- folders and splits


def test_folder_split_is_stratified_and_every_class_is_in_every_split(tmp_path):
    root = make_folder(tmp_path / "data", {"cat": 10, "dog": 20, "eel": 10})
    b = build_data(config(root, val_fraction=0.2, test_fraction=0.2))
    assert b.labels == ["cat", "dog", "eel"]
    assert b.class_counts == {"cat": 6, "dog": 12, "eel": 6}
    for ds, expected in ((b.val, [2, 4, 2]), (b.test, [2, 4, 2])):
        assert np.bincount(ds.targets, minlength=3).tolist() == expected
    train, val, test = split_paths(b)
    assert len(set(train) | set(val) | set(test)) == 40
    assert not (set(train) & set(val)) and not (set(val) & set(test))


def test_same_seed_gives_same_split_and_another_seed_another(tmp_path):
    root = make_folder(tmp_path / "data", {"a": 15, "b": 15})
    first = split_paths(build_data(config(root, split_seed=1)))
    assert split_paths(build_data(config(root, split_seed=1))) == first
    assert split_paths(build_data(config(root, split_seed=2))) != first


def test_tiny_classes_go_to_train_first_then_val(tmp_path):
    root = make_folder(tmp_path / "data", {"one": 1, "two": 2, "many": 20})
    b = build_data(config(root, val_fraction=0.1, test_fraction=0.1))
    names = b.labels
    train = [names[t] for t in b.train.targets]
    val = [names[t] for t in b.val.targets]
    test = [names[t] for t in b.test.targets]
    assert train.count("one") == 1 and "one" not in val + test
    assert train.count("two") == 1 and val.count("two") == 1 and "two" not in test


def test_sample_is_normalised_float_image_and_class_index(tmp_path):
    root = make_folder(tmp_path / "data", {"a": 4, "b": 4})
    b = build_data(config(root, val_fraction=0.25, test_fraction=0.0))
    x, y = b.val[0]
    assert x.shape == (3, SIZE, SIZE) and x.dtype == torch.float32
    assert isinstance(y, int) and y in (0, 1)
    assert len(b.test) == 0
    assert x.min() < 0  # normalised with ImageNet statistics, not in [0, 1]


def test_max_samples_caps_total_and_keeps_every_class(tmp_path):
    root = make_folder(tmp_path / "data", {"a": 30, "b": 3})
    b = build_data(config(root, max_samples=10, val_fraction=0.0, test_fraction=0.0))
    assert len(b.train) == 10
    assert set(b.class_counts) == {"a", "b"}


def test_predefined_train_val_folders_define_the_splits(tmp_path):
    root = tmp_path / "data"
    make_folder(root / "train", {"a": 3, "b": 3})
    make_folder(root / "val", {"a": 1, "b": 2})
    b = build_data(config(root))
    train, val, test = split_paths(b)
    assert len(train) == 6 and all("/train/" in p for p in train)
    assert len(val) == 3 and all("/val/" in p for p in val)
    assert test == []
    report = scan_data(config(root))
    assert report.format == "folder-splits" and report.splits == {"train": 6, "val": 3}


def test_label_in_val_folder_but_not_in_train_is_an_error(tmp_path):
    root = tmp_path / "data"
    make_folder(root / "train", {"a": 2, "b": 2})
    make_folder(root / "val", {"a": 1, "zebra": 1})
    with pytest.raises(DataError, match="'zebra'.*val"):
        build_data(config(root))


def test_single_class_is_an_error(tmp_path):
    root = make_folder(tmp_path / "data", {"only": 5})
    with pytest.raises(DataError, match="at least two classes.*'only'"):
        build_data(config(root))


def test_missing_path_and_empty_folder_are_errors(tmp_path):
    with pytest.raises(DataError, match="not found"):
        build_data(config(tmp_path / "nowhere"))
    (tmp_path / "empty" / "a").mkdir(parents=True)
    (tmp_path / "empty" / "b").mkdir()
    with pytest.raises(DataError, match="no usable images"):
        build_data(config(tmp_path / "empty"))


def test_images_not_in_class_folders_are_an_error(tmp_path):
    png(tmp_path / "flat" / "1.png")
    with pytest.raises(DataError, match="one subfolder per class"):
        build_data(config(tmp_path / "flat"))


# ---------------------------------------------------------------- problems


def test_corrupt_and_zero_byte_images_are_skipped_and_listed(tmp_path):
    root = make_folder(tmp_path / "data", {"a": 3, "b": 3})
    (root / "a" / "empty.png").write_bytes(b"")
    (root / "b" / "broken.jpg").write_bytes(b"this is not a jpeg at all")
    good = (root / "a" / "a_0.png").read_bytes()
    (root / "b" / "truncated.png").write_bytes(good[: len(good) // 2])
    b = build_data(config(root, val_fraction=0.0, test_fraction=0.0))
    assert len(b.train) == 6
    bad = {Path(p.path).name: p.reason for p in b.problems}
    assert set(bad) == {"empty.png", "broken.jpg", "truncated.png"}
    assert "0 bytes" in bad["empty.png"]
    assert all(p.line is None for p in b.problems)
    assert scan_data(config(root)).num_samples == 6


def test_image_that_fails_while_training_falls_back_and_is_recorded(tmp_path):
    root = make_folder(tmp_path / "data", {"a": 2, "b": 2})
    b = build_data(config(root, val_fraction=0.0, test_fraction=0.0))
    ds = b.train
    Path(ds.paths[0]).write_bytes(b"garbage")
    x, y = ds[0]
    assert x.shape == (3, SIZE, SIZE)
    assert y == ds.targets[1]  # the next image, with its own label
    assert [Path(p.path) for p in ds.failures] == [Path(ds.paths[0])]


def test_decompression_bombs_are_skipped(tmp_path, monkeypatch):
    path = png(tmp_path / "big.png", size=(20, 20))
    monkeypatch.setattr(images_mod, "MAX_PIXELS", 100)
    assert "decompression bomb" in check_image(path)
    monkeypatch.setattr(images_mod, "MAX_PIXELS", 10**9)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 50)  # PIL raises DecompressionBombError itself
    assert "decompression bomb" in check_image(path)


def test_pil_pixel_limit_is_set():
    assert Image.MAX_IMAGE_PIXELS is not None and Image.MAX_IMAGE_PIXELS <= 200_000_000


def test_datasets_pickle_for_worker_processes(tmp_path):
    root = make_folder(tmp_path / "data", {"a": 3, "b": 3})
    b = build_data(config(root, val_fraction=0.0, test_fraction=0.0))
    clone = pickle.loads(pickle.dumps(b.train))
    assert torch.equal(clone[2][0], b.train[2][0])


# ---------------------------------------------------------------- conversion to RGB


def test_grey_rgba_cmyk_palette_become_rgb(tmp_path):
    grey = load_rgb(png(tmp_path / "g.png", color=77, mode="L"))
    assert grey.mode == "RGB" and grey.getpixel((0, 0)) == (77, 77, 77)
    clear = load_rgb(png(tmp_path / "rgba.png", color=(255, 0, 0, 0), mode="RGBA"))
    assert clear.getpixel((0, 0)) == (255, 255, 255)  # transparent → white background
    solid = load_rgb(png(tmp_path / "rgba2.png", color=(255, 0, 0, 255), mode="RGBA"))
    assert solid.getpixel((0, 0)) == (255, 0, 0)
    cmyk_path = tmp_path / "c.jpg"
    Image.new("CMYK", (8, 8), (0, 255, 255, 0)).save(cmyk_path)
    r, g, b = load_rgb(cmyk_path).getpixel((4, 4))
    assert r > 200 and g < 60 and b < 60
    pal = Image.new("RGB", (8, 8), (0, 0, 255)).convert("P", palette=Image.Palette.ADAPTIVE)
    pal.save(tmp_path / "p.png")
    assert load_rgb(tmp_path / "p.png").getpixel((0, 0)) == (0, 0, 255)


def test_16_bit_images_are_scaled_not_clipped(tmp_path):
    arr = np.array([[0, 1000, 32896, 65535]], dtype=np.uint16)
    Image.fromarray(arr).save(tmp_path / "deep.png")
    assert Image.open(tmp_path / "deep.png").mode.startswith("I")
    rgb = load_rgb(tmp_path / "deep.png")
    assert rgb.mode == "RGB"
    assert [rgb.getpixel((x, 0))[0] for x in range(4)] == [0, 4, 128, 255]


def test_exif_orientation_is_applied(tmp_path):
    im = Image.new("RGB", (8, 4), (0, 128, 0))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° when shown
    im.save(tmp_path / "rot.jpg", exif=exif)
    assert load_rgb(tmp_path / "rot.jpg").size == (4, 8)


# ---------------------------------------------------------------- CSV manifests


def write_csv(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_manifest_multilabel_with_separator_resolves_paths_next_to_the_csv(tmp_path):
    for i in range(6):
        png(tmp_path / "set" / "img" / f"{i}.png")
    rows = [
        "path,tags",
        "img/0.png,sky|sea",
        "img/1.png,sea",
        "img/2.png,sky",
        "img/3.png,sky|tree",
        "img/4.png,tree",
        "img/5.png,",
    ]
    csv = write_csv(tmp_path / "set" / "labels.csv", "\n".join(rows) + "\n")
    cfg = config(
        csv, TaskKind.IMAGE_MULTILABEL, label_columns=["tags"], label_separator="|", val_fraction=0.0, test_fraction=0.0
    )
    cfg.with_base_dir(tmp_path)  # the config lives elsewhere; image paths still resolve against the CSV
    b = build_data(cfg)
    assert b.labels == ["sea", "sky", "tree"]
    assert len(b.train) == 5
    assert [(p.line, "no label" in p.reason) for p in b.problems] == [(7, True)]
    i = b.train.paths.index(str(tmp_path / "set" / "img" / "0.png"))
    x, y = b.train[i]
    assert y.dtype == torch.float32 and y.tolist() == [1.0, 1.0, 0.0]
    assert b.class_counts == {"sea": 2, "sky": 3, "tree": 2}


def test_manifest_multilabel_from_one_hot_columns(tmp_path):
    for i in range(3):
        png(tmp_path / f"{i}.png")
    csv = write_csv(tmp_path / "m.csv", "file,cat,dog\n0.png,1,0\n1.png,1,1\n2.png,0,0\n")
    b = build_data(
        config(
            csv,
            TaskKind.IMAGE_MULTILABEL,
            path_column="file",
            label_columns=["cat", "dog"],
            val_fraction=0.0,
            test_fraction=0.0,
        )
    )
    assert b.labels == ["cat", "dog"]
    assert [b.train[k][1].tolist() for k in range(3)] == [[1.0, 0.0], [1.0, 1.0], [0.0, 0.0]]


def test_manifest_regression_and_missing_images(tmp_path):
    for i in range(4):
        png(tmp_path / f"{i}.png")
    csv = write_csv(tmp_path / "r.csv", "path,age\n0.png,1.5\n1.png,2\n2.png,3\n3.png,4\ngone.png,5\n")
    b = build_data(config(csv, TaskKind.IMAGE_REGRESSION, label_columns=["age"], val_fraction=0.0, test_fraction=0.0))
    assert b.labels == [] and b.class_counts == {}
    x, y = b.train[0]
    assert y.dtype == torch.float32 and y.shape == (1,) and y.item() == 1.5
    assert [(p.line, "not found" in p.reason) for p in b.problems] == [(6, True)]


def test_a_manifest_path_under_an_unknown_users_home_is_a_missing_image_not_a_crash(tmp_path):
    for i in range(2):
        png(tmp_path / f"{i}.png")
    csv = write_csv(tmp_path / "m.csv", "path,label\n0.png,a\n1.png,b\n~no-such-user-0/x.png,a\n")
    b = build_data(config(csv, val_fraction=0.0, test_fraction=0.0))
    assert len(b.train) == 2
    assert [(p.line, "not found" in p.reason) for p in b.problems] == [(4, True)]


def test_manifest_regression_label_that_is_not_a_number(tmp_path):
    png(tmp_path / "0.png")
    csv = write_csv(tmp_path / "r.csv", "path,age\n0.png,1\n0.png,old\n")
    with pytest.raises(DataError, match=r"r\.csv, line 3: .*'old'.*not a number"):
        build_data(config(csv, TaskKind.IMAGE_REGRESSION, label_columns=["age"]))


def test_manifest_missing_column_lists_the_columns(tmp_path):
    csv = write_csv(tmp_path / "m.csv", "file,label\na.png,x\n")
    with pytest.raises(DataError, match="'path' not found.*'file', 'label'"):
        build_data(config(csv))
    report = scan_data(config(csv))  # the data page reads it as its contents suggest, and says which columns
    assert report.columns == ["file", "label"] and report.suggested_columns == {"path_column": "file"}
    assert report.num_samples == 0 and any("a.png" in p.path + p.reason for p in report.problems)  # it is missing


def test_scan_suggests_regression_for_numeric_manifest_labels(tmp_path):
    for i in range(5):
        png(tmp_path / f"{i}.png")
    csv = write_csv(tmp_path / "m.csv", "path,label\n" + "".join(f"{i}.png,{i * 1.5}\n" for i in range(5)))
    report = scan_data(config(csv))
    assert report.suggested_kind == TaskKind.IMAGE_REGRESSION
    assert report.num_samples == 5 and report.columns == ["path", "label"]


def test_scan_folder_counts_labels_and_flags_one_class(tmp_path):
    root = make_folder(tmp_path / "data", {"a": 2, "b": 3})
    report = scan_data(config(root))
    assert report.suggested_kind == TaskKind.IMAGE_CLASSIFICATION
    assert report.labels == {"a": 2, "b": 3} and report.num_samples == 5 and report.problems == []
    one = make_folder(tmp_path / "one", {"a": 2})
    assert any("two classes" in p.reason for p in scan_data(config(one)).problems)


def test_train_and_test_folders_without_val_hold_out_val_from_train(tmp_path):
    root = tmp_path / "data"
    make_folder(root / "train", {"a": 10, "b": 10})
    make_folder(root / "test", {"a": 2, "b": 2})
    b = build_data(config(root, val_fraction=0.2))
    train, val, test = split_paths(b)
    assert (len(train), len(val), len(test)) == (16, 4, 4)
    assert all("/train/" in p for p in val) and all("/test/" in p for p in test)


def test_random_multilabel_split_keeps_rare_labels_in_train(tmp_path):
    rows = ["path,tags"]
    for i in range(20):
        png(tmp_path / f"{i}.png")
        rows.append(f"{i}.png,{'common|rare' if i == 7 else 'common'}")
    csv = write_csv(tmp_path / "m.csv", "\n".join(rows) + "\n")
    for seed in range(5):
        b = build_data(
            config(
                csv,
                TaskKind.IMAGE_MULTILABEL,
                label_columns=["tags"],
                label_separator="|",
                val_fraction=0.3,
                test_fraction=0.3,
                split_seed=seed,
            )
        )
        assert b.labels == ["common", "rare"] and b.class_counts["rare"] == 1
        assert len(b.train) + len(b.val) + len(b.test) == 20


def test_semicolon_separated_csv_manifest(tmp_path):
    for i in range(4):
        png(tmp_path / f"{i}.png")
    csv = write_csv(tmp_path / "m.csv", "path;label\n0.png;x\n1.png;y\n2.png;x\n3.png;y\n")
    b = build_data(config(csv, val_fraction=0.0, test_fraction=0.0))
    assert b.labels == ["x", "y"] and len(b.train) == 4
