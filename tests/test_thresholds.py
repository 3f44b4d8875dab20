"""Threshold rules shared with the page's JavaScript: hand-worked examples (cells in row-major order)."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from ssl_attention.thresholds import (
    descending_order,
    descending_rows,
    mass_threshold_mask,
    top_k,
    top_percent_mask,
)

T, F = True, False


@pytest.mark.parametrize(
    ("n", "p", "k"),
    [
        (10, 25, 3),  # 2.5 + 0.5 = 3.0 -> 3 (half up; Python's round(2.5) would give 2)
        (14, 25, 4),  # 3.5 -> 4
        (6, 25, 2),  # 1.5 -> 2
        (10, 15, 2),  # 1.5 -> 2
        (10, 14, 1),  # 1.4 -> 1
        (2, 25, 1),  # 0.5 -> 1
        (3, 10, 1),  # 0.3 -> 0 -> at least 1
        (7, 0, 1),  # p = 0 still keeps one cell
        (7, 100, 7),
        (256, 10, 26),  # 25.6 -> 26
    ],
)
def test_top_k_rounds_half_up(n, p, k):
    assert top_k(n, p) == k


@pytest.mark.parametrize("p", [-1, 100.5, math.nan])
def test_top_k_rejects_bad_percent(p):
    with pytest.raises(ValueError):
        top_k(10, p)


def test_top_percent_ties_lower_index_wins():
    m = np.array([[3, 1], [3, 2]])
    # order: 3 (idx 0), 3 (idx 2), 2 (idx 3), 1 (idx 1)
    assert top_percent_mask(m, 25).tolist() == [[T, F], [F, F]]  # k = 1: the tie goes to idx 0
    assert top_percent_mask(m, 50).tolist() == [[T, F], [T, F]]  # k = 2
    assert top_percent_mask(m, 75).tolist() == [[T, F], [T, T]]  # k = 3


def test_top_percent_nan_is_minus_infinity():
    m = np.array([[np.nan, 0.0], [-1.0, 5.0]])
    # k = floor(4*75/100 + 0.5) = 3: 5, 0, -1; NaN ranks below -1
    assert top_percent_mask(m, 75).tolist() == [[F, T], [T, T]]
    # NaN and -inf are equal (both -inf): the lower index wins
    assert top_percent_mask(np.array([[np.nan, -np.inf]]), 50).tolist() == [[T, F]]
    assert top_percent_mask(np.array([[-np.inf, np.nan]]), 50).tolist() == [[T, F]]


def test_top_percent_inf_ranks_first():
    m = np.array([[1.0, np.inf], [np.inf, 2.0]])
    assert top_percent_mask(m, 25).tolist() == [[F, T], [F, F]]  # two +inf tie: idx 1 beats idx 2


def test_top_percent_compares_in_float32():
    # 1 and 1 + 1e-9 differ in float64 but are the same float32: a tie, so idx 0 wins.
    m = np.array([[1.0, 1.0 + 1e-9]], dtype=np.float64)
    assert top_percent_mask(m, 50).tolist() == [[T, F]]


def test_top_percent_keeps_shape_and_rejects_empty():
    assert top_percent_mask(np.arange(6).reshape(2, 3), 50).tolist() == [[F, F, F], [T, T, T]]
    with pytest.raises(ValueError):
        top_percent_mask(np.zeros((0, 3)), 50)


def test_mass_rule_dino_example():
    m = np.array([[0.1, 0.2], [0.3, 0.4]])
    # ascending 0.1, 0.2, 0.3, 0.4 -> cumsum/S = 0.1, 0.3, 0.6, 1.0; keep > 0.4 -> 0.3 and 0.4
    assert mass_threshold_mask(m, 0.6).tolist() == [[F, F], [T, T]]
    # mass 0.95: keep > 0.05 -> all four
    assert mass_threshold_mask(m, 0.95).all()


def test_mass_rule_clips_negatives_and_breaks_ties_like_top_percent():
    m = np.array([[-5.0, 1.0], [1.0, 2.0]])
    # weights 0, 1, 1, 2 (S = 4); ascending with ties by highest index first: idx0, idx2, idx1, idx3
    # cumsum/S = 0, 0.25, 0.5, 1.0
    assert mass_threshold_mask(m, 0.5).tolist() == [[F, F], [F, T]]  # keep > 0.5: only idx3
    assert mass_threshold_mask(m, 0.6).tolist() == [[F, T], [F, T]]  # keep > 0.4: idx1 wins the tie


def test_mass_rule_all_zero_or_nan_keeps_nothing():
    assert not mass_threshold_mask(np.zeros((3, 3))).any()
    assert not mass_threshold_mask(np.full((2, 2), np.nan)).any()
    assert not mass_threshold_mask(np.array([[-1.0, -np.inf]])).any()


def test_mass_rule_plus_inf_takes_all_mass():
    m = np.array([[np.inf, 5.0], [np.inf, 1.0]])
    # weights 1, 0, 1, 0; ascending: idx3, idx1, idx2, idx0; cumsum/S = 0, 0, 0.5, 1
    assert mass_threshold_mask(m, 0.6).tolist() == [[T, F], [T, F]]
    assert mass_threshold_mask(m, 0.4).tolist() == [[T, F], [F, F]]  # keep > 0.6: idx0 only


def test_mass_rule_full_mass_keeps_positive_cells():
    m = np.array([[0.0, 1.0], [2.0, 0.0]])
    # ascending idx3, idx0 (zeros), idx1, idx2; cumsum 0, 0, 1, 3; keep > 0
    assert mass_threshold_mask(m, 1.0).tolist() == [[F, T], [T, F]]


@pytest.mark.parametrize("mass", [0, -0.1, 1.5, math.nan])
def test_mass_rule_rejects_bad_mass(mass):
    with pytest.raises(ValueError):
        mass_threshold_mask(np.ones((2, 2)), mass)


maps = arrays(
    np.float32,
    st.tuples(st.integers(1, 6), st.integers(1, 6)),
    elements=st.one_of(st.floats(-3, 3, width=32), st.sampled_from([0.0, 1.0, np.nan, np.inf, -np.inf])),
)


@settings(max_examples=200, deadline=None)
@given(maps, st.floats(0, 100))
def test_top_percent_keeps_k_cells_none_smaller_than_a_dropped_one(m, p):
    keep = top_percent_mask(m, p).ravel()
    v = np.where(np.isnan(m), -np.inf, m).ravel()
    assert keep.sum() == top_k(m.size, p)
    if not keep.all():
        assert v[keep].min() >= v[~keep].max()


@settings(max_examples=200, deadline=None)
@given(maps, st.floats(0.05, 1.0))
def test_mass_rule_is_a_prefix_of_the_top_percent_order(m, mass):
    keep = mass_threshold_mask(m, mass).ravel()
    order = descending_order(m)
    # the kept cells are the first few of the same order the top-p rule uses
    assert keep[order].tolist() == sorted(keep[order].tolist(), reverse=True)


@settings(max_examples=100, deadline=None)
@given(arrays(np.float32, st.tuples(st.integers(1, 5), st.integers(1, 9)),
              elements=st.one_of(st.floats(-3, 3, width=32), st.sampled_from([0.0, 1.0, 1e-30, np.nan, np.inf]))),
       st.floats(0.05, 1.0))
def test_batched_mass_rule_equals_the_rule_row_by_row(stack, mass):
    from ssl_attention.thresholds import mass_threshold_masks, mass_value_rows, mass_values, rank_values

    weights = np.stack([mass_values(row) for row in stack])
    assert np.array_equal(mass_value_rows(stack), weights)
    expected = np.stack([mass_threshold_mask(row, mass) for row in stack])
    assert np.array_equal(mass_threshold_masks(weights, mass), expected)
    rank = np.stack([rank_values(row) for row in stack])  # the maps' own order, reused where it is the weights'
    order = np.stack([descending_order(row) for row in stack])
    assert np.array_equal(mass_threshold_masks(weights, mass, (rank, order)), expected)


def test_descending_rows_is_the_stable_descending_order_of_each_row():
    rng = np.random.default_rng(7)
    specials = np.array([0.0, -0.0, 1.0, 2.0, -1.0, np.inf, -np.inf, 0.5, 1e-45, -1e-45, 3.4e38], dtype=np.float32)
    for trial in range(200):
        width = int(rng.integers(1, 300))
        rows = rng.choice(specials, size=(5, width)) if trial % 2 else rng.random((5, width)).astype(np.float32)
        expected = np.stack([descending_order(row) for row in rows])
        assert np.array_equal(descending_rows(rows), expected), trial
