"""Readers for the official benchmark layouts, on tiny fixture folders built in tmp_path."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from modeling_lorat.data import LASOT_TEST_SEQUENCES, get_dataset, read_boxes
from modeling_lorat.data.readers import DATASET_NAMES
from modeling_lorat.data.readers_coco import read_coco

W, H = 32, 24


def write_frame(path: Path, value: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((H, W, 3), value, dtype=np.uint8)).save(path)


def write_lines(path: Path, lines: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")


def boxes_text(n: int, offset: int = 0, sep: str = ",") -> list[str]:
    return [sep.join(str(v) for v in (i + offset, 2 * i, 5 + i, 6)) for i in range(n)]


def expected_boxes(n: int, offset: int = 0) -> np.ndarray:
    return np.array([[i + offset, 2 * i, 5 + i, 6] for i in range(n)], dtype=np.float64)


# --------------------------------------------------------------------------- ground truth parsing


def test_read_boxes_separators_and_nan(tmp_path):
    gt = tmp_path / "gt.txt"
    gt.write_text("1,2,3,4\n5\t6\t7\t8\n9 10  11 12\n13, 14, 15, 16\nnan,nan,nan,nan\nNaN\n1,NaN,3,4\n\n")
    boxes = read_boxes(gt)
    assert boxes.shape == (7, 4) and boxes.dtype == np.float64
    np.testing.assert_array_equal(boxes[:4], np.arange(1, 17).reshape(4, 4))
    assert np.isnan(boxes[4:]).all()


@pytest.mark.parametrize(
    ("content", "line"), [("1,2,3,4\n1,2,3\n", 2), ("1,2,3,4,5\n", 1), ("1,2,3,4\n\n1,2,3,4\n", 2)]
)
def test_read_boxes_malformed_row_names_file_and_line(tmp_path, content, line):
    gt = tmp_path / "groundtruth.txt"
    gt.write_text(content)
    with pytest.raises(ValueError, match=rf"groundtruth\.txt, line {line}"):
        read_boxes(gt)


def test_read_boxes_non_numeric_and_missing(tmp_path):
    gt = tmp_path / "bad.txt"
    gt.write_text("1,2,x,4\n")
    with pytest.raises(ValueError, match="bad.txt, line 1: non-numeric"):
        read_boxes(gt)
    with pytest.raises(FileNotFoundError, match="nope.txt"):
        read_boxes(tmp_path / "nope.txt")


# --------------------------------------------------------------------------- LaSOT


def make_lasot(root: Path, names=("airplane-1", "airplane-2"), n: int = 4) -> None:
    for k, name in enumerate(names):
        seq = root / name.rsplit("-", 1)[0] / name
        for i in range(n):
            write_frame(seq / "img" / f"{i + 1:08d}.jpg", 40 * i)
        write_lines(seq / "groundtruth.txt", boxes_text(n, offset=k))
        write_lines(seq / "full_occlusion.txt", [",".join(["0", "1"] + ["0"] * (n - 2))])
        write_lines(seq / "out_of_view.txt", [",".join(["0"] * (n - 1) + ["1"])])
        write_lines(seq / "nlp.txt", [f"the {name}"])


def test_lasot_official_test_list():
    assert len(LASOT_TEST_SEQUENCES) == 280 and len(set(LASOT_TEST_SEQUENCES)) == 280
    classes = {name.rsplit("-", 1)[0] for name in LASOT_TEST_SEQUENCES}
    assert len(classes) == 70
    assert LASOT_TEST_SEQUENCES[:4] == ("airplane-1", "airplane-9", "airplane-13", "airplane-15")
    assert LASOT_TEST_SEQUENCES[-1] == "volleyball-19"


def test_lasot_splits_boxes_and_absent(tmp_path):
    make_lasot(tmp_path)
    train = get_dataset("lasot", tmp_path, "train")
    assert [s.name for s in train] == ["airplane-2"]  # airplane-1 is an official test sequence
    every = get_dataset("lasot", tmp_path, "all")
    assert [s.name for s in every] == ["airplane-1", "airplane-2"]
    seq = every[0]
    assert seq.dataset == "lasot" and len(seq) == 4
    # 1-based (MATLAB) ground truth -> 0-based pixels, as the official LoRAT loader reads LaSOT
    np.testing.assert_array_equal(seq.boxes, expected_boxes(4) - [1, 1, 0, 0])
    np.testing.assert_array_equal(seq.absent, [False, True, False, True])
    assert seq.attributes == {"class": "airplane", "language": "the airplane-1"}
    assert all(isinstance(f, Path) for f in seq.frames)  # lazy: paths, not pixels
    assert seq.load_frame(2).shape == (H, W, 3) and abs(int(seq.load_frame(2).mean()) - 80) <= 3


def test_lasot_test_split_embedded_list_and_override(tmp_path):
    make_lasot(tmp_path)
    with pytest.raises(FileNotFoundError, match="airplane-9"):
        get_dataset("lasot", tmp_path)  # default split "test": airplane-9 is missing here
    (tmp_path / "testing_set.txt").write_text("airplane-2\n")
    assert [s.name for s in get_dataset("lasot", tmp_path, "test")] == ["airplane-2"]
    with pytest.raises(ValueError, match="valid: test, train, all"):
        get_dataset("lasot", tmp_path, "bogus")


def test_lasot_attribute_files_from_the_toolkit(tmp_path):
    from modeling_lorat.data.readers_lasot import LASOT_ATTRIBUTE_NAMES, read_lasot, read_lasot_ext
    from modeling_lorat.evaluation.plots import LASOT_ATTRIBUTES

    assert tuple(LASOT_ATTRIBUTES) == LASOT_ATTRIBUTE_NAMES  # plot labels in the toolkit's order

    make_lasot(tmp_path)
    assert all("attribute_flags" not in s.attributes for s in get_dataset("lasot", tmp_path, "all"))
    # the toolkit's annos/att/<seq>.txt, here for airplane-1 only: POC, ROT, SV, LR set
    write_lines(tmp_path / "annos" / "att" / "airplane-1.txt", ["0,1,0,0,0,1,0,0,1,0,0,0,1,0"])
    first, second = get_dataset("lasot", tmp_path, "all")
    flags = first.attributes["attribute_flags"]
    assert list(flags) == list(LASOT_ATTRIBUTE_NAMES)
    assert [name for name, on in flags.items() if on] == ["POC", "ROT", "SV", "LR"]
    assert "attribute_flags" not in second.attributes  # no file: no flags
    # an explicit folder wins over the auto-detected one; LaSOT_ext reads the same way
    other = tmp_path / "elsewhere"
    write_lines(other / "airplane-2.txt", [" ".join(["1"] * 14)])
    first, second = read_lasot(tmp_path, "all", attributes_dir=other)
    assert "attribute_flags" not in first.attributes and all(second.attributes["attribute_flags"].values())
    assert read_lasot_ext(tmp_path, attributes_dir=other)[1].attributes["attribute_flags"]["ARC"] is True
    with pytest.raises(FileNotFoundError, match="LaSOT attribute folder: folder not found"):
        read_lasot(tmp_path, "all", attributes_dir=tmp_path / "missing")
    write_lines(tmp_path / "annos" / "att" / "airplane-1.txt", ["0,1,0,2,0,1,0,0,1,0,0,0,1,0"])
    with pytest.raises(ValueError, match=r"airplane-1\.txt: expected 14 comma-separated 0/1"):
        get_dataset("lasot", tmp_path, "all")
    write_lines(tmp_path / "annos" / "att" / "airplane-1.txt", ["0,1,0"])
    with pytest.raises(ValueError, match=r"airplane-1\.txt: expected 14"):
        get_dataset("lasot", tmp_path, "all")


def test_lasot_ext_and_missing_frames(tmp_path):
    make_lasot(tmp_path, names=("atv-1", "atv-2"))
    seqs = get_dataset("lasot_ext", tmp_path)
    assert [s.name for s in seqs] == ["atv-1", "atv-2"] and {s.dataset for s in seqs} == {"lasot_ext"}
    np.testing.assert_array_equal(seqs[0].boxes, expected_boxes(4))  # read as is (official loader)
    write_frame(tmp_path / "atv" / "atv-1" / "img" / "00000005.jpg", 10)  # an extra image (like monkey-17)
    assert len(get_dataset("lasot_ext", tmp_path)[0]) == 4  # frames beyond the ground truth are not tracked
    (tmp_path / "atv" / "atv-2" / "img" / "00000004.jpg").unlink()
    with pytest.raises(FileNotFoundError, match="atv-2"):
        get_dataset("lasot_ext", tmp_path)


# --------------------------------------------------------------------------- GOT-10k


def make_got10k(root: Path, split: str, n: int = 3, names=("GOT-10k_Val_000001", "GOT-10k_Val_000002")):
    folder = root / split
    for k, name in enumerate(names):
        for i in range(n):
            write_frame(folder / name / f"{i + 1:08d}.jpg", 50 * i)
        lines = boxes_text(n, offset=k)
        write_lines(folder / name / "groundtruth.txt", lines[:1] if split == "test" else lines)
        if split != "test":
            write_lines(folder / name / "absence.label", ["0", "1"] + ["0"] * (n - 2))
            write_lines(folder / name / "cover.label", ["8"] * (n - 1) + ["0"])
    write_lines(folder / "list.txt", list(names))


def test_got10k_val_absent_from_absence_and_cover(tmp_path):
    make_got10k(tmp_path, "val")
    seqs = get_dataset("got10k", tmp_path, "val")
    assert [s.name for s in seqs] == ["GOT-10k_Val_000001", "GOT-10k_Val_000002"]
    np.testing.assert_array_equal(seqs[1].boxes, expected_boxes(3, offset=1))
    np.testing.assert_array_equal(seqs[0].absent, [False, True, True])
    np.testing.assert_array_equal(seqs[0].valid(), [True, False, False])


def test_got10k_test_split_pads_nan(tmp_path):
    make_got10k(tmp_path, "test", n=4)
    seq = get_dataset("got10k", tmp_path)[0]  # default split is "test"
    assert len(seq) == 4 and seq.boxes.shape == (4, 4)
    np.testing.assert_array_equal(seq.boxes[0], expected_boxes(1)[0])
    assert np.isnan(seq.boxes[1:]).all()


def test_got10k_missing_sequence_and_frames(tmp_path):
    make_got10k(tmp_path, "val")
    write_lines(tmp_path / "val" / "list.txt", ["GOT-10k_Val_000001", "GOT-10k_Val_000009"])
    with pytest.raises(FileNotFoundError, match="GOT-10k_Val_000009"):
        get_dataset("got10k", tmp_path, "val")
    make_got10k(tmp_path, "train", names=("GOT-10k_Train_000001",))
    (tmp_path / "train" / "GOT-10k_Train_000001" / "00000003.jpg").unlink()
    with pytest.raises(FileNotFoundError, match="GOT-10k_Train_000001"):
        get_dataset("got10k", tmp_path, "train")
    with pytest.raises(FileNotFoundError, match="got10k"):
        get_dataset("got10k", tmp_path / "nowhere", "val")


# --------------------------------------------------------------------------- TrackingNet


def test_trackingnet_numeric_frame_order_and_test_anno(tmp_path):
    n = 12  # 0.jpg .. 11.jpg: lexicographic order would put 10.jpg before 2.jpg
    for chunk in ("TRAIN_0", "TEST"):
        for i in range(n):
            write_frame(tmp_path / chunk / "frames" / "vid_a" / f"{i}.png", 20 * i)
        lines = boxes_text(n, sep=" ")
        write_lines(tmp_path / chunk / "anno" / "vid_a.txt", lines if chunk == "TRAIN_0" else lines[:1])
    seq = get_dataset("trackingnet", tmp_path, "train")[0]
    assert [f.name for f in seq.frames] == [f"{i}.png" for i in range(n)]
    assert seq.load_frame(10)[0, 0, 0] == 200 and seq.attributes["chunk"] == "TRAIN_0"
    np.testing.assert_array_equal(seq.boxes, expected_boxes(n))
    test = get_dataset("trackingnet", tmp_path)[0]
    assert len(test) == n and np.isnan(test.boxes[1:]).all() and not np.isnan(test.boxes[0]).any()


# --------------------------------------------------------------------------- TNL2K and OTB


def test_tnl2k_language_and_png_frames(tmp_path):
    for name in ("advSamp_Baseball_game_002-Done", "Arrow_Video_ZZ04_done"):
        for i in range(3):
            write_frame(tmp_path / name / "imgs" / f"{i:05d}.png", 10 * i)
        write_lines(tmp_path / name / "groundtruth.txt", boxes_text(3))
    (tmp_path / "Arrow_Video_ZZ04_done" / "language.txt").write_text("the red arrow\n")
    seqs = get_dataset("tnl2k", tmp_path)
    assert [s.name for s in seqs] == ["advSamp_Baseball_game_002-Done", "Arrow_Video_ZZ04_done"]
    assert seqs[1].attributes == {"language": "the red arrow"} and seqs[0].attributes == {}
    np.testing.assert_array_equal(seqs[0].boxes, expected_boxes(3))


def test_otb_tab_whitespace_and_multi_target(tmp_path):
    for i in range(3):
        write_frame(tmp_path / "Basketball" / "img" / f"{i + 1:04d}.jpg", 30)
        write_frame(tmp_path / "Jogging" / "img" / f"{i + 1:04d}.jpg", 30)
    write_lines(tmp_path / "Basketball" / "groundtruth_rect.txt", boxes_text(3, sep="\t"))
    write_lines(tmp_path / "Jogging" / "groundtruth_rect.1.txt", boxes_text(3, sep=" "))
    write_lines(tmp_path / "Jogging" / "groundtruth_rect.2.txt", boxes_text(3, offset=5))
    seqs = {s.name: s for s in get_dataset("otb", tmp_path)}
    assert sorted(seqs) == ["Basketball", "Jogging-1", "Jogging-2"]
    np.testing.assert_array_equal(seqs["Basketball"].boxes, expected_boxes(3))
    np.testing.assert_array_equal(seqs["Jogging-2"].boxes, expected_boxes(3, offset=5))


def test_more_frames_than_boxes_is_an_error(tmp_path):
    for i in range(3):
        write_frame(tmp_path / "Car" / "img" / f"{i + 1:04d}.jpg", 30)
    write_lines(tmp_path / "Car" / "groundtruth_rect.txt", boxes_text(2))
    with pytest.raises(ValueError, match="'Car': 3 frames but only 2 boxes"):
        get_dataset("otb", tmp_path)


# --------------------------------------------------------------------------- COCO


def test_coco_one_frame_sequences_are_lazy(tmp_path):
    annotations = {
        "images": [{"id": 7, "file_name": "000000000007.jpg"}, {"id": 9, "file_name": "000000000009.jpg"}],
        "categories": [{"id": 1, "name": "person"}, {"id": 3, "name": "car"}],
        "annotations": [
            {"id": 100, "image_id": 7, "category_id": 1, "bbox": [1, 2, 10, 12], "iscrowd": 0},
            {"id": 101, "image_id": 7, "category_id": 3, "bbox": [0, 0, 5, 5], "iscrowd": 1},
            {"id": 102, "image_id": 9, "category_id": 3, "bbox": [3, 3, 0, 4], "iscrowd": 0},
            {"id": 103, "image_id": 9, "category_id": 3, "bbox": [4, 5, 6, 7], "iscrowd": 0},
        ],
    }
    write_lines(tmp_path / "annotations" / "instances_val2017.json", [json.dumps(annotations)])
    seqs = read_coco(tmp_path, "val")  # no image exists yet: reading must not open images
    assert len(seqs) == 2
    first, second = seqs[0], seqs[-1]
    assert len(first) == 1 and first.frames[0] == tmp_path / "val2017" / "000000000007.jpg"
    np.testing.assert_array_equal(first.boxes, [[1, 2, 10, 12]])
    assert second.attributes["category"] == "car" and second.attributes["annotation_id"] == 103
    with pytest.raises(FileNotFoundError, match="000000000009.jpg"):
        second.load_frame(0)
    write_frame(tmp_path / "val2017" / "000000000009.jpg", 90)
    assert second.load_frame(0).shape == (H, W, 3)
    assert [s.name for s in get_dataset("coco", tmp_path, "val2017")] == [s.name for s in seqs]


# --------------------------------------------------------------------------- registry


def test_registry_unknown_name_lists_valid_names(tmp_path):
    assert set(DATASET_NAMES) == {
        "lasot", "lasot_ext", "got10k", "trackingnet", "tnl2k", "otb", "coco", "parquet", "synthetic",
    }  # fmt: skip
    with pytest.raises(ValueError, match="unknown dataset 'imagenet'.*lasot.*synthetic"):
        get_dataset("imagenet", tmp_path)
    with pytest.raises(ValueError, match="otb has no split 'train'"):
        get_dataset("otb", tmp_path, "train")
