"""Alignment metrics on tiny grids whose answers can be worked out by hand.

Common setup unless stated: an 8 x 8 image, a 2 x 2 grid with 2-px patches, so the model input is
4 x 4 px (image -> input scale 0.5) and each cell is a block of 4 input pixels. Cells are numbered
row-major: 0 = top-left, 1 = top-right, 2 = bottom-left, 3 = bottom-right.
"""

import math

import numpy as np
import pytest

from ssl_attention.annotations import Box, box_mask, rescale_boxes
from ssl_attention.metrics import (
    MetricConfig,
    baseline_scores,
    centre_gaussian_map,
    chance_iou,
    make_target,
    score_map,
    uniform_scores,
)
from ssl_attention.thresholds import mass_threshold_mask, top_percent_mask

MAP = np.array([[4.0, 3.0], [2.0, 1.0]])  # total mass 10; order: cell 0, 1, 2, 3
CELL0 = Box(0, 0, 4, 4, "tower")  # -> input (0, 0, 2, 2): exactly cell 0 (4 px)


def values(scores):
    return {s.metric: s.value for s in scores if s.box is None}


def target(*boxes, image=(8, 8), grid=(2, 2), patch=2, **config):
    return make_target(list(boxes), image, grid, patch, MetricConfig(**config))


def test_box_on_one_cell():
    v = values(score_map(MAP, target(CELL0)))
    # k = max(1, floor(4p/100 + 0.5)): p = 10..30 -> 1 cell (cell 0): IoU 4/4 = 1;
    # p = 40, 50 -> 2 cells (0, 1): intersection 4, union 8 -> 0.5
    assert [v[f"iou@{p}"] for p in (10, 15, 20, 25, 30, 40, 50)] == pytest.approx([1, 1, 1, 1, 1, 0.5, 0.5])
    # mass rule: ascending 1, 2, 3, 4 -> cumsum/10 = .1, .3, .6, 1; keep > .4 -> cells 1, 0 -> 0.5
    assert v["iou_mass@60"] == pytest.approx(0.5)
    assert v["coverage"] == pytest.approx(0.4)  # 4 of 10
    # argmax cell 0, centre (2, 2) in image pixels, inside [0, 4) x [0, 4)
    assert v["pointing"] == 1 and v["pointing@15px"] == 1


def test_box_straddling_all_cells():
    # image box (2, 2, 4, 4) -> input (1, 1, 2, 2): pixels x, y in {1, 2}: one pixel in each cell
    v = values(score_map(MAP, target(Box(2, 2, 4, 4, "b"))))
    assert v["iou@25"] == pytest.approx(1 / 7)  # 1 cell: inter 1, union 4 + 4 - 1 = 7
    assert v["iou@50"] == pytest.approx(2 / 10)  # 2 cells: inter 2, union 8 + 4 - 2 = 10
    assert v["coverage"] == pytest.approx(0.25)  # every cell has 1/4 of its pixels inside
    assert v["pointing"] == 1  # centre (2, 2) lies on the box's closed top-left corner: inside


def test_non_square_grid():
    # 30 x 10 image, grid 1 x 3 of 2-px patches -> input 6 x 2; box (10, 0, 10, 10) -> input (2, 0, 2, 2)
    # = cell 1 exactly. The map peaks at cell 1, whose centre in image pixels is (15, 5).
    t = target(Box(10, 0, 10, 10, "x"), image=(30, 10), grid=(1, 3))
    v = values(score_map(np.array([[0.0, 5.0, 1.0]]), t))
    assert v["iou@10"] == 1 and v["pointing"] == 1
    assert v["coverage"] == pytest.approx(5 / 6)
    with pytest.raises(ValueError):
        score_map(np.zeros((3, 1)), t)  # transposed map is refused


def test_pointing_tolerance_is_in_original_pixels():
    # 800 x 800 image, 2 x 2 grid: cell centres at 200 and 600 px. Map peaks at cell 0: (200, 200).
    def pointing(box):
        v = values(score_map(MAP, target(box, image=(800, 800))))
        return v["pointing"], v["pointing@15px"]

    assert pointing(Box(210, 190, 10, 10, "")) == (0, 1)  # 10 px to the right: within 15 px
    assert pointing(Box(215, 190, 10, 10, "")) == (0, 1)  # exactly 15 px: counts
    assert pointing(Box(215.5, 190, 10, 10, "")) == (0, 0)  # 15.5 px
    assert pointing(Box(210, 210, 10, 10, "")) == (0, 1)  # diagonal: hypot(10, 10) = 14.1
    assert pointing(Box(212, 212, 10, 10, "")) == (0, 0)  # hypot(12, 12) = 17.0
    # half-open strict test: a box ending exactly at the centre does not contain it
    assert pointing(Box(150, 150, 50, 50, "")) == (0, 1)
    assert pointing(Box(150, 150, 50.5, 50.5, "")) == (1, 1)


def test_boxes_partly_outside_the_image_are_clamped():
    t = target(Box(-4, -4, 8, 8, "t"))  # clamped to (0, 0, 4, 4): same as CELL0
    assert t.boxes == (Box(0, 0, 4, 4, "t"),)
    assert values(score_map(MAP, t)) == values(score_map(MAP, target(CELL0)))


def test_no_boxes_means_no_scores():
    assert score_map(MAP, target()) == []
    assert score_map(MAP, target(Box(20, 20, 5, 5, "outside"))) == []  # nothing left after clamping
    assert uniform_scores(target()) == []


def test_all_zero_map_ties():
    v = values(score_map(np.zeros((2, 2)), target(Box(4, 4, 4, 4, "br"))))  # box = cell 3
    # top-p ties go to the lowest index: 1 cell -> cell 0 -> IoU 0; 2 cells -> 0, 1 -> IoU 0
    assert v["iou@25"] == 0 and v["iou@50"] == 0
    # no mass at all: coverage and the mass rule are undefined
    assert math.isnan(v["coverage"]) and math.isnan(v["iou_mass@60"])
    # all four cells are tied maxima; one of four centres (6, 6) is in the box; in an 8 x 8 image every
    # centre is within 15 px of it
    assert v["pointing"] == 0.25 and v["pointing@15px"] == 1


def test_ties_in_the_top_cells():
    m = np.array([[1.0, 5.0], [5.0, 0.0]])
    # box = cell 2. k = 1 at p = 25: cells 1 and 2 tie, cell 1 (lower index) wins -> IoU 0;
    # k = 2 at p = 50: both -> inter 4, union 8 -> 0.5. Pointing: half of the two maxima hit.
    v = values(score_map(m, target(Box(0, 4, 4, 4, "bl"))))
    assert v["iou@25"] == 0 and v["iou@50"] == 0.5 and v["pointing"] == 0.5
    assert v["pointing@15px"] == 1  # cell 1's centre (6, 2) is 2 px from the box's corner (4, 4)


def test_nan_ranks_last_and_carries_no_mass():
    m = np.array([[np.nan, 1.0], [0.0, 0.0]])
    v = values(score_map(m, target(CELL0)))  # the box is on the NaN cell
    assert v["iou@25"] == 0  # top cell is cell 1: inter 0, union 8
    assert v["coverage"] == 0 and v["pointing"] == 0
    assert v["iou_mass@60"] == 0  # mass rule keeps cell 1


def test_inf_takes_all_mass_and_all_nan_gives_nan():
    v = values(score_map(np.array([[1.0, np.inf], [0.0, 7.0]]), target(Box(4, 0, 4, 4, "tr"))))  # cell 1
    assert v["iou@25"] == 1 and v["coverage"] == 1 and v["pointing"] == 1
    for bad in (np.full((2, 2), np.nan), np.array([[np.nan, -np.inf], [-np.inf, np.nan]])):
        scores = score_map(bad, target(CELL0))
        assert scores and all(math.isnan(s.value) for s in scores)


def test_per_box_scores_carry_index_and_label():
    # box A = cell 0 (4 px); box B image (0, 4, 8, 4) -> input (0, 2, 4, 2) = cells 2 and 3 (8 px)
    t = target(CELL0, Box(0, 4, 8, 4, "nave"), box_percents=(25, 50))
    scores = score_map(MAP, t)
    per_box = {(s.box, s.label, s.metric): s.value for s in scores if s.box is not None}
    assert per_box[(0, "tower", "box_iou@25")] == 1  # top cell 0 = box A
    assert per_box[(1, "nave", "box_iou@25")] == 0  # inter 0, union 4 + 8
    assert per_box[(1, "nave", "box_iou@50")] == 0  # cells 0, 1: inter 0
    assert per_box[(0, "tower", "box_coverage")] == pytest.approx(0.4)
    assert per_box[(1, "nave", "box_coverage")] == pytest.approx(0.3)  # (2 + 1) / 10
    # union: cells 0, 1 selected at p = 50: inter 4, union 8 + 12 - 4 = 16
    assert values(scores)["iou@50"] == pytest.approx(0.25)


def test_cell_level_iou_equals_a_pixel_level_computation():
    # Independent check: upsample the selection to input pixels and compare with the box mask directly.
    rng = np.random.default_rng(1)
    image, grid, patch = (61, 47), (3, 5), 4  # input 20 x 12, not the image's aspect ratio
    for _ in range(20):
        m = rng.random(grid).astype(np.float32)
        boxes = [
            Box(*rng.uniform(-10, 50, 2), *rng.uniform(1, 30, 2), "r") for _ in range(rng.integers(1, 4))
        ]
        t = make_target(boxes, image, grid, patch)
        if not t.boxes:
            continue
        v = values(score_map(m, t))
        inside = box_mask(rescale_boxes(t.boxes, image, (grid[1] * patch, grid[0] * patch)), 20, 12)
        block = np.ones((patch, patch), dtype=bool)
        for p in (10, 50):
            sel = np.kron(top_percent_mask(m, p), block).astype(bool)
            assert v[f"iou@{p}"] == pytest.approx((sel & inside).sum() / (sel | inside).sum())
        sel = np.kron(mass_threshold_mask(m), block).astype(bool)
        assert v["iou_mass@60"] == pytest.approx((sel & inside).sum() / (sel | inside).sum())
        spread = np.kron(m / m.sum(), block / patch**2)
        assert v["coverage"] == pytest.approx(spread[inside].sum())


def test_chance_iou_formula():
    # a = 0.25, s = 0.5: 0.125 / (0.5 + 0.25 - 0.125) = 0.2
    assert chance_iou(0.25, 0.5) == pytest.approx(0.2)
    assert chance_iou(0.3, 1.0) == pytest.approx(0.3)  # everything selected: IoU = a
    assert chance_iou(0.0, 0.4) == 0
    assert math.isnan(chance_iou(0.0, 0.0))


def test_chance_iou_is_close_to_the_exact_expectation():
    # 100 cells of 1 px, the box holds 25 of them, 50 are picked at random: the intersection I is
    # hypergeometric and IoU = I / (50 + 25 - I). Exact E[IoU] by summation vs the formula (0.2).
    n, b, k = 100, 25, 50
    exact = sum(
        math.comb(b, i) * math.comb(n - b, k - i) / math.comb(n, k) * i / (k + b - i) for i in range(b + 1)
    )
    assert chance_iou(b / n, k / n) == pytest.approx(exact, rel=0.03)


def test_uniform_baseline():
    v = values(uniform_scores(target(CELL0)))
    # box fraction a = 4 / 16 = 0.25
    assert v["iou@25"] == pytest.approx(1 / 7)  # s = 1/4: .0625 / (.25 + .25 - .0625)
    assert v["iou@50"] == pytest.approx(0.2)  # s = 1/2
    # mass rule on 4 equal cells: cumsum/S .25, .5, .75, 1 > .4 keeps 3 -> s = .75: .1875 / .8125
    assert v["iou_mass@60"] == pytest.approx(0.1875 / 0.8125)
    assert v["coverage"] == pytest.approx(0.25)
    assert v["pointing"] == pytest.approx(0.25)  # 1 of 4 cell centres is in the box


def test_centre_gaussian_map_and_baselines():
    g = centre_gaussian_map((3, 3))
    # corner: dy = dx = (0.5 - 1.5) / (0.25 * 3) = -4/3 -> exp(-0.5 * 32/9) = exp(-16/9)
    assert g[1, 1] == pytest.approx(1.0)
    assert g[0, 0] == pytest.approx(math.exp(-16 / 9), rel=1e-6)
    assert g[0, 1] == pytest.approx(math.exp(-8 / 9), rel=1e-6)
    assert g.dtype == np.float32
    b = baseline_scores(make_target([Box(3, 3, 3, 3, "c")], (9, 9), (3, 3), 1))
    assert values(b["centre_gaussian"])["iou@10"] == 1  # top cell = the centre = the box
    assert values(b["uniform"])["coverage"] == pytest.approx(1 / 9)


def test_score_maps_equals_a_pixel_level_reference():
    """The vectorised stack scorer against a plain per-map computation on full-resolution pixel masks."""
    from ssl_attention.metrics import metric_columns, score_maps
    from ssl_attention.thresholds import mass_values

    rng = np.random.default_rng(7)
    grid, patch, image = (5, 7), 4, (70, 50)
    boxes = [Box(3, 4, 30, 20, "a"), Box(40, 25, 25, 20, "b"), Box(60, 0, 30, 10, "c")]
    maps = rng.random((12, *grid)).astype(np.float32)
    maps[1] = np.round(maps[1] * 3)  # many ties
    maps[2] = 0.0  # no mass
    maps[3, 0, :3] = np.nan
    maps[4, 2, 2] = np.inf
    maps[5] = -maps[5]  # no positive mass, ranking still defined
    t = make_target(boxes, image, grid, patch)
    got = score_maps(maps, t)
    columns = metric_columns(t)
    assert got.shape == (12, len(columns))
    h, w = grid[0] * patch, grid[1] * patch
    scaled = rescale_boxes([clamp_box_like(b, image) for b in boxes], image, (w, h))
    union = box_mask(scaled, w, h)
    singles = [box_mask([b], w, h) for b in scaled]

    def pixels(cells: np.ndarray) -> np.ndarray:
        return np.kron(cells.reshape(grid), np.ones((patch, patch))).astype(bool)

    def iou(a: np.ndarray, b: np.ndarray) -> float:
        return (a & b).sum() / (a | b).sum()

    for k, m in enumerate(maps):
        expected = {}
        for p in t.config.percents:
            expected[(f"iou@{p:g}", None)] = iou(pixels(top_percent_mask(m, p)), union)
        weights = mass_values(m).reshape(grid)
        if weights.sum() > 0:
            expected[("iou_mass@60", None)] = iou(pixels(mass_threshold_mask(m, 0.6)), union)
            spread = np.kron(weights, np.ones((patch, patch))) / patch**2
            expected[("coverage", None)] = spread[union].sum() / spread.sum()
            for b, single in enumerate(singles):
                expected[("box_coverage", b)] = spread[single].sum() / spread.sum()
        ranks = np.where(np.isnan(m), -np.inf, m)
        peaks = np.argwhere(ranks == ranks.max())
        centres = [((c + 0.5) * image[0] / grid[1], (r + 0.5) * image[1] / grid[0]) for r, c in peaks]
        expected[("pointing", None)] = np.mean([any(b.x <= x < b.x + b.w and b.y <= y < b.y + b.h
                                                    for b in boxes) for x, y in centres])
        for b, single in enumerate(singles):
            expected[("box_iou@25", b)] = iou(pixels(top_percent_mask(m, 25)), single)
        for (metric, box), value in expected.items():
            column = next(i for i, (name, bx, _) in enumerate(columns) if (name, bx) == (metric, box))
            assert got[k, column] == pytest.approx(value, rel=1e-9, abs=1e-12), (k, metric, box)
        if weights.sum() == 0:
            assert np.isnan(got[k, [i for i, c in enumerate(columns) if c[0] == "coverage"]]).all()


def clamp_box_like(box: Box, image: tuple[int, int]) -> Box:
    """Clamp to the image the plain way (the reference's own code, not clamp_box)."""
    x0, y0 = max(box.x, 0), max(box.y, 0)
    x1, y1 = min(box.x + box.w, image[0]), min(box.y + box.h, image[1])
    return Box(x0, y0, x1 - x0, y1 - y0, box.label)
