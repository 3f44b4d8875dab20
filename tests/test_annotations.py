"""Annotation readers, box rasterisation and rescaling."""

import json
import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ssl_attention.annotations import (
    Annotations,
    Box,
    box_mask,
    clamp_box,
    load_annotations,
    read_annotations,
    rescale_boxes,
)
from ssl_attention.errors import AnnotationError
from ssl_attention.skips import Skip

SIZES = {"church": (200, 100), "chapel": (50, 80)}


def write(tmp_path, data, name="ann.json"):
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return path


def wiki(elements_by_image, meta=("facade", "tower", "window")):
    return {
        "meta": [{"name": n, "parents": []} for n in meta],
        "annotations": {
            image_id: {"styles": [], "bbox_groups": [{"group_label": 0, "elements": elements}]}
            for image_id, elements in elements_by_image.items()
        },
    }


def el(left, top, width, height, label=1):
    return {"left": left, "top": top, "width": width, "height": height, "label": label}


def coco(images, annotations, categories=({"id": 3, "name": "tower"},)):
    return {"images": images, "annotations": annotations, "categories": list(categories)}


def assert_one_line_naming(exc_info, path):
    message = str(exc_info.value)
    assert "\n" not in message
    assert str(path) in message


# ----------------------------------------------------------------------------- WikiChurches


def test_wikichurches_relative_coordinates(tmp_path):
    # church is 200 x 100: left 0.1 -> 20 px, top 0.2 -> 20 px, width 0.5 -> 100 px, height 0.3 -> 30 px
    path = write(tmp_path, wiki({"church": [el(0.1, 0.2, 0.5, 0.3, label=1), el(0, 0, 1, 1, label="apse")]}))
    boxes = load_annotations(path, SIZES)
    assert boxes["church"][0] == pytest.approx(Box(20, 20, 100, 30, "tower"))
    assert boxes["church"][0].label == "tower"  # label index 1 -> meta[1]
    assert boxes["church"][1] == Box(0, 0, 200, 100, "apse")  # a label may also be a name
    assert boxes["chapel"] == []  # images without boxes are present, with an empty list


def test_wikichurches_box_partly_outside_is_clamped(tmp_path):
    # left 0.9 + width 0.15 = 1.05 (within the tolerance): x = 180, right edge clamped from 210 to 200
    # top -0.05 -> -5 px, clamped to 0; height 0.5 -> bottom at 45 px
    path = write(tmp_path, wiki({"church": [el(0.9, -0.05, 0.15, 0.5)]}))
    (box,) = load_annotations(path, SIZES)["church"]
    assert (box.x, box.y, box.w, box.h) == pytest.approx((180, 0, 20, 45))


def test_wikichurches_bad_boxes_are_skipped_and_reported(tmp_path):
    elements = [
        el(0.1, 0.1, 0.2, 0.2),  # fine
        el(2.0, 0.1, 0.2, 0.2),  # out of range (pixels, not fractions?)
        el(0.1, 0.1, -0.2, 0.2),  # negative width
        el(0.1, 0.1, 0.0, 0.2),  # zero width: empty after clamping
        {"left": 0.1, "top": 0.1, "width": 0.2},  # missing height
        el(0.1, 0.1, "wide", 0.2),  # not a number
    ]
    path = write(tmp_path, wiki({"church": elements}))
    report: list[str] = []
    boxes = load_annotations(path, SIZES, report=report)
    assert len(boxes["church"]) == 1
    assert len(report) == 5
    assert all(str(path) in line and "\n" not in line for line in report)
    joined = "\n".join(report)
    for word in ("outside [0, 1]", "negative", "empty after clamping", "missing key", "not a number"):
        assert word in joined


def test_wikichurches_nan_and_infinity_are_skipped(tmp_path):
    elements = (
        '{"left": 0.1, "top": 0.1, "width": NaN, "height": 0.2, "label": 0}, '
        '{"left": 0.1, "top": 0.1, "width": 0.2, "height": Infinity, "label": 0}, '
        '{"left": 0.1, "top": 0.1, "width": 0.2, "height": 0.2, "label": 0}'
    )
    text = '{"meta": [{"name": "facade"}], "annotations": {"church": {"bbox_groups": [{"elements": [%s]}]}}}'
    report: list[str] = []
    boxes = load_annotations(write(tmp_path, text % elements), SIZES, report=report)
    # only the third survives: 0.1 * 200 = 20, 0.1 * 100 = 10, 0.2 * 200 = 40, 0.2 * 100 = 20
    assert boxes["church"] == [Box(20, 10, 40, 20, "facade")]
    assert len(report) == 2 and all("not finite" in line for line in report)


def test_wikichurches_unknown_image_is_skipped_but_all_unknown_is_an_error(tmp_path):
    path = write(tmp_path, wiki({"church": [el(0, 0, 0.5, 0.5)], "cathedral": [el(0, 0, 0.5, 0.5)]}))
    report: list[str] = []
    assert len(load_annotations(path, SIZES, report=report)["church"]) == 1
    assert "cathedral" not in load_annotations(path, SIZES)
    assert len(report) == 1 and "'cathedral'" in report[0] and "not in the image set" in report[0]
    only_unknown = write(tmp_path, wiki({"cathedral": [el(0, 0, 0.5, 0.5)]}), "other.json")
    with pytest.raises(AnnotationError) as exc_info:
        load_annotations(only_unknown, SIZES)
    assert_one_line_naming(exc_info, only_unknown)


def test_file_where_every_box_is_bad_is_an_error(tmp_path):
    path = write(tmp_path, wiki({"church": [el(5, 5, 0.2, 0.2), el(0.1, 0.1, -1, 0.2)]}))
    with pytest.raises(AnnotationError) as exc_info:
        load_annotations(path, SIZES)
    assert_one_line_naming(exc_info, path)


def test_annotated_image_with_no_boxes_is_fine(tmp_path):
    path = write(tmp_path, wiki({"church": []}))
    assert load_annotations(path, SIZES) == {"church": [], "chapel": []}


# ----------------------------------------------------------------------------- COCO


def test_coco_boxes_matched_by_file_stem(tmp_path):
    data = coco(
        [{"id": 7, "file_name": "photos/church.jpg", "width": 200, "height": 100}],
        [
            {"id": 1, "image_id": 7, "bbox": [10, 20, 30, 40], "category_id": 3},
            {"id": 2, "image_id": 7, "bbox": [190, 90, 30, 40], "category_id": 9},  # partly outside
        ],
    )
    boxes = load_annotations(write(tmp_path, data), SIZES)
    assert boxes["church"][0] == Box(10, 20, 30, 40, "tower")
    # clamped to the 200 x 100 image: x 190..200, y 90..100; unknown category id -> its number as label
    assert boxes["church"][1] == Box(190, 90, 10, 10, "9")


def test_tags_from_wikichurches_styles_and_coco_image_tags(tmp_path):
    data = wiki({"church": [el(0, 0, 1, 1)], "chapel.jpg": [el(0, 0, 1, 1)], "ghost": []})
    data["annotations"]["church"]["styles"] = ["Q46261", "Gothic  revival", "Gothic  revival", "", None, True, 3]
    data["annotations"]["chapel.jpg"]["styles"] = "Gothic"  # not a list: no tags, boxes still read
    data["annotations"]["ghost"]["styles"] = ["Baroque"]  # not in the image set
    tags: dict[str, list[str]] = {}
    boxes = load_annotations(write(tmp_path, data), SIZES, tags=tags)
    assert tags == {"church": ["3", "Gothic revival", "Q46261"]}  # distinct, whitespace folded, sorted
    assert len(boxes["chapel"]) == 1

    images = [{"id": 1, "file_name": "church.jpg", "tags": ["nave", "<b>x</b>", {"no": 1}]},
              {"id": 2, "file_name": "chapel.png"}]
    tags = {}
    load_annotations(write(tmp_path, coco(images, []), "coco.json"), SIZES, tags=tags)
    assert tags == {"church": ["<b>x</b>", "nave"]}


def test_coco_resized_copy_is_rescaled_and_rotated_one_skipped(tmp_path):
    data = coco(
        [
            {"id": 1, "file_name": "church.jpg", "width": 100, "height": 50},  # half size, same aspect
            {"id": 2, "file_name": "chapel.jpg", "width": 80, "height": 50},  # 50x80 on disk: rotated
        ],
        [
            {"image_id": 1, "bbox": [10, 20, 30, 10], "category_id": 3},
            {"image_id": 2, "bbox": [1, 1, 5, 5], "category_id": 3},
        ],
    )
    report: list[str] = []
    boxes = load_annotations(write(tmp_path, data), SIZES, report=report)
    assert boxes["church"] == [Box(20, 40, 60, 20, "tower")]  # every coordinate x2
    assert boxes["chapel"] == []
    assert len(report) == 1 and "chapel.jpg" in report[0] and "does not match" in report[0]


def test_coco_image_not_in_image_set_is_skipped(tmp_path):
    data = coco(
        [{"id": 1, "file_name": "church.jpg"}, {"id": 2, "file_name": "elsewhere.png"}],
        [{"image_id": 1, "bbox": [0, 0, 5, 5]}, {"image_id": 2, "bbox": [0, 0, 5, 5]}],
    )
    report: list[str] = []
    boxes = load_annotations(write(tmp_path, data), SIZES, report=report)
    assert boxes["church"] == [Box(0, 0, 5, 5, "")]
    assert len(report) == 1 and "elsewhere.png" in report[0]


def test_coco_file_about_other_images_is_an_error(tmp_path):
    path = write(tmp_path, coco([{"id": 1, "file_name": "x.jpg"}], [{"image_id": 1, "bbox": [0, 0, 5, 5]}]))
    with pytest.raises(AnnotationError) as exc_info:
        load_annotations(path, SIZES)
    assert_one_line_naming(exc_info, path)
    assert "none of the 1 images" in str(exc_info.value)


def test_coco_annotation_with_unknown_image_id_is_an_error(tmp_path):
    data = coco([{"id": 1, "file_name": "church.jpg"}], [{"image_id": 99, "bbox": [0, 0, 5, 5]}])
    path = write(tmp_path, data)
    with pytest.raises(AnnotationError) as exc_info:
        load_annotations(path, SIZES)
    assert_one_line_naming(exc_info, path)
    assert "99" in str(exc_info.value)


def test_coco_only_image_with_a_wrong_size_names_the_size_not_the_image_set(tmp_path):
    image = {"id": 1, "file_name": "chapel.jpg", "width": 80, "height": 50}  # 50x80 on disk
    data = coco([image], [{"image_id": 1, "bbox": [1, 1, 5, 5]}])
    path = write(tmp_path, data)
    with pytest.raises(AnnotationError) as exc_info:
        load_annotations(path, SIZES)
    assert_one_line_naming(exc_info, path)
    message = str(exc_info.value)
    assert "chapel.jpg" in message and "80x50 does not match the image (50x80" in message
    assert "image set" not in message


def test_coco_duplicate_image_id_skips_the_boxes_of_that_id(tmp_path):
    data = coco(
        [
            {"id": 7, "file_name": "church.jpg"},
            {"id": 7, "file_name": "chapel.jpg"},
            {"id": 8, "file_name": "church.jpg"},
        ],
        [{"image_id": 7, "bbox": [1, 1, 5, 5]}, {"image_id": 8, "bbox": [2, 2, 5, 5]}],
    )
    report: list[str] = []
    boxes = load_annotations(write(tmp_path, data), SIZES, report=report)
    assert boxes == {"church": [Box(2, 2, 5, 5, "")], "chapel": []}  # id 7 could be either image: dropped
    assert len(report) == 1
    assert "image id 7 is listed 2 times (church.jpg, chapel.jpg)" in report[0] and "skipped" in report[0]


@pytest.mark.parametrize("where", ["x", "h"])
def test_integer_of_thousands_of_digits_skips_one_box(tmp_path, where):
    huge = "9" * 5000  # beyond Python's int-string conversion limit (4300 digits)
    bbox = {"x": f"[{huge}, 1, 5, 5]", "h": f"[1, 1, 5, {huge}]"}[where]
    text = (
        '{"images": [{"id": 1, "file_name": "church.jpg"}], "categories": [], "annotations": ['
        f'{{"image_id": 1, "bbox": [0, 0, 4, 4]}}, {{"image_id": 1, "bbox": {bbox}}}]}}'
    )
    path = write(tmp_path, text)
    report: list[str] = []
    boxes = load_annotations(path, SIZES, report=report)
    assert boxes["church"] == [Box(0, 0, 4, 4, "")]
    assert len(report) == 1 and str(path) in report[0] and "annotation 1" in report[0]
    assert f"{where} is an integer of 5000 digits" in report[0]


def test_wikichurches_integer_of_thousands_of_digits_skips_one_box(tmp_path):
    text = json.dumps(wiki({"church": [el(0, 0, 0.5, 0.5), el(0, 0, 0.5, 0.5)]})).replace(
        '"height": 0.5', '"height": 1' + "0" * 5000, 1
    )
    report: list[str] = []
    boxes = load_annotations(write(tmp_path, text), SIZES, report=report)
    assert len(boxes["church"]) == 1
    assert len(report) == 1 and "'church' group 0 element 0" in report[0] and "5001 digits" in report[0]


def test_coco_bad_bbox_skipped(tmp_path):
    data = coco(
        [{"id": 1, "file_name": "church.jpg"}],
        [
            {"image_id": 1, "bbox": [0, 0, 5, 5]},
            {"image_id": 1, "bbox": [0, 0, 5]},
            {"image_id": 1, "bbox": [0, 0, -5, 5]},
            {"image_id": 1, "bbox": [500, 500, 5, 5]},  # entirely outside: empty after clamping
        ],
    )
    report: list[str] = []
    assert len(load_annotations(write(tmp_path, data), SIZES, report=report)["church"]) == 1
    assert len(report) == 3


# ----------------------------------------------------------------------------- read_annotations


def test_read_annotations_returns_boxes_tags_and_one_skip_per_item(tmp_path):
    """Each skip names the file as its subject; its line is the text ``load_annotations`` reports."""
    data = wiki({"church": [el(0.1, 0.2, 0.5, 0.3), el(2.0, 0.1, 0.2, 0.2), el(0.1, 0.1, 0.0, 0.2)],
                 "cathedral": [el(0, 0, 0.5, 0.5)]})
    data["annotations"]["church"]["styles"] = ["Gothic"]
    path = write(tmp_path, data)
    found = read_annotations(path, SIZES)
    assert isinstance(found, Annotations)
    assert found.boxes == {"church": [pytest.approx(Box(20, 20, 100, 30, "tower"))], "chapel": []}
    assert found.tags == {"church": ["Gothic"]}
    reasons = [
        "image 'church' group 0 element 1: relative coordinate left=2 is outside [0, 1]; box skipped",
        "image 'cathedral' is not in the image set; its boxes are skipped",
        "image 'church' group 0 element 2: box is empty after clamping to the 200x100 image",
    ]
    assert found.skipped == [Skip("annotations", str(path), reason) for reason in reasons]
    report: list[str] = []
    tags: dict[str, list[str]] = {}
    assert load_annotations(path, SIZES, report=report, tags=tags) == found.boxes
    assert report == [f"{path}: {reason}" for reason in reasons] == [skip.line for skip in found.skipped]
    assert tags == found.tags


def test_read_annotations_coco_skips_in_file_order(tmp_path):
    data = coco(
        [{"id": 1, "file_name": "church.jpg"}, {"id": 2, "file_name": "elsewhere.png"},
         {"id": 3, "file_name": "chapel.jpg"}, {"id": 3, "file_name": "chapel.png"}],
        [{"image_id": 1, "bbox": [0, 0, 5, 5]}, {"image_id": 1, "bbox": [0, 0, "wide", 5]},
         {"image_id": 1, "bbox": [500, 0, 5, 5]}, {"image_id": 2, "bbox": [0, 0, 5, 5]}],
    )
    path = write(tmp_path, data)
    found = read_annotations(path, SIZES)
    assert found.boxes == {"church": [Box(0, 0, 5, 5, "")], "chapel": []}
    assert [skip.line for skip in found.skipped] == [
        f"{path}: image id 3 is listed 2 times (chapel.jpg, chapel.png); its boxes are skipped",
        f"{path}: images[1] (elsewhere.png): not in the image set; its boxes are skipped",
        f"{path}: image 'church' annotation 1: w is not a number ('wide'); box skipped",
        f"{path}: image 'church' annotation 2: box is empty after clamping to the 200x100 image",
    ]
    assert {(skip.stage, skip.subject) for skip in found.skipped} == {("annotations", str(path))}


# ----------------------------------------------------------------------------- file-level errors


@pytest.mark.parametrize(
    "text",
    [
        "{not json",
        "",
        "[]",
        '{"foo": 1}',
        '{"images": {}, "annotations": []}',
        '{"annotations": []}',
        '{"annotations": {"church": 5}}',
        '{"annotations": {"church": {"bbox_groups": 3}}}',
        '{"meta": 1, "annotations": {}}',
        '{"images": [{"file_name": "church.jpg"}], "annotations": []}',
    ],
)
def test_malformed_file_is_one_line_error_naming_the_file(tmp_path, text):
    path = write(tmp_path, text)
    with pytest.raises(AnnotationError) as exc_info:
        load_annotations(path, SIZES)
    assert_one_line_naming(exc_info, path)


def test_missing_file_is_an_annotation_error(tmp_path):
    path = tmp_path / "nope.json"
    with pytest.raises(AnnotationError) as exc_info:
        load_annotations(path, SIZES)
    assert_one_line_naming(exc_info, path)


def test_invalid_image_size_is_a_programming_error(tmp_path):
    path = write(tmp_path, wiki({"church": [el(0, 0, 1, 1)]}))
    with pytest.raises(ValueError):
        load_annotations(path, {"church": (0, 100)})


KEYS = [
    "images",
    "annotations",
    "meta",
    "bbox_groups",
    "elements",
    "left",
    "top",
    "width",
    "height",
    "label",
    "id",
    "image_id",
    "file_name",
    "bbox",
    "category_id",
    "categories",
    "name",
    "church",
]
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(10**20), 10**20)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.sampled_from(["church", "chapel", "x.jpg", "church.png", "left", "bbox_groups", ""]),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.sampled_from(KEYS), inner, max_size=5),
    max_leaves=30,
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(json_values)
def test_broken_json_only_ever_raises_annotation_error(tmp_path, value):
    path = write(tmp_path, json.dumps(value))
    try:
        boxes = load_annotations(path, SIZES, report=[])
    except AnnotationError as exc:
        assert "\n" not in str(exc) and str(path) in str(exc)
        return
    for image_boxes in boxes.values():
        for b in image_boxes:
            assert all(math.isfinite(v) for v in (b.x, b.y, b.w, b.h)) and b.w > 0 and b.h > 0


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=60))
def test_random_bytes_only_ever_raise_annotation_error(tmp_path, data):
    path = tmp_path / "bytes.json"
    path.write_bytes(data)
    try:
        load_annotations(path, SIZES)
    except AnnotationError as exc:
        assert str(path) in str(exc)


# ----------------------------------------------------------------------------- geometry


def test_box_mask_pixel_centre_sampling():
    # x in [0.5, 1.5) holds only the centre 0.5 of column 0; same for rows
    assert box_mask([Box(0.5, 0.5, 1.0, 1.0, "")], 3, 3).nonzero() == ([0], [0])
    # x in [1, 3) holds centres 1.5 and 2.5; y in [0, 1) holds centre 0.5; grid is 4 wide, 2 high
    expected = np.array([[0, 1, 1, 0], [0, 0, 0, 0]], dtype=bool)
    assert (box_mask([Box(1, 0, 2, 1, "")], 4, 2) == expected).all()
    # [0.6, 1.1) holds no pixel centre at all
    assert not box_mask([Box(0.6, 0.6, 0.5, 0.5, "")], 3, 3).any()
    assert not box_mask([], 3, 3).any()


def test_box_mask_union_and_boxes_outside_the_grid():
    boxes = [Box(-5, -5, 6.2, 6, ""), Box(2, 2, 10, 10, ""), Box(0, 0, 2, 1, "")]
    # box 1: x [-5, 1.2) -> col 0, y [-5, 1) -> row 0; box 2: col 2, row 2; box 3: row 0, cols 0-1
    expected = np.array([[1, 1, 0], [0, 0, 0], [0, 0, 1]], dtype=bool)
    assert (box_mask(boxes, 3, 3) == expected).all()


def test_clamp_and_rescale():
    assert clamp_box(Box(-10, 5, 30, 200, "a"), 100, 50) == Box(0, 5, 20, 45, "a")
    assert clamp_box(Box(150, 5, 30, 20, "a"), 100, 50).w == 0
    # 640 x 480 -> 224 x 224: x scale 0.35, y scale 224/480
    (b,) = rescale_boxes([Box(64, 48, 320, 240, "t")], (640, 480), (224, 224))
    assert (b.x, b.y, b.w, b.h, b.label) == pytest.approx((22.4, 22.4, 112, 112, "t"))
    with pytest.raises(ValueError):
        rescale_boxes([b], (0, 10), (10, 10))
