"""Boundary helpers: fractional coordinates, wrapping, minimum image, cell completion."""

import itertools

import numpy as np
import pytest

from reaxgrad.md import space

TRICLINIC = np.array([[5.0, 0.0, 0.0], [1.7, 4.6, 0.0], [-1.2, 0.9, 4.3]])


def test_fractional_round_trip():
    x = np.random.default_rng(0).normal(size=(10, 3)) * 7
    np.testing.assert_allclose(space.cartesian(space.fractional(x, TRICLINIC), TRICLINIC), x)


def test_plane_spacings():
    np.testing.assert_allclose(space.plane_spacings(np.diag([2.0, 3.0, 4.0])), [2, 3, 4])
    h = space.plane_spacings(TRICLINIC)
    volume = abs(np.linalg.det(TRICLINIC))
    np.testing.assert_allclose(h[2], volume / np.linalg.norm(np.cross(TRICLINIC[0],
                                                                      TRICLINIC[1])))


@pytest.mark.parametrize("pbc", [(True, True, True), (True, False, True)])
def test_wrap_positions(pbc):
    x = np.random.default_rng(1).normal(size=(20, 3)) * 12
    wrapped, images = space.wrap_positions(x, TRICLINIC, pbc)
    np.testing.assert_allclose(wrapped + images @ TRICLINIC, x, atol=1e-12)
    frac = space.fractional(wrapped, TRICLINIC)
    for a in range(3):
        if pbc[a]:
            assert np.all((frac[:, a] >= -1e-12) & (frac[:, a] < 1 + 1e-12))
        else:
            assert np.all(images[:, a] == 0)


def test_minimum_image_matches_search():
    rng = np.random.default_rng(2)
    dr = rng.normal(size=(50, 3)) * 9
    got, shifts = space.minimum_image(dr, TRICLINIC, True)
    np.testing.assert_allclose(got, dr + shifts @ TRICLINIC, atol=1e-12)
    images = np.array(list(itertools.product(range(-9, 10), repeat=3))) @ TRICLINIC
    best = np.min(np.linalg.norm(dr[:, None, :] + images[None], axis=2), axis=1)
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), best, atol=1e-12)


def test_minimum_image_respects_pbc_flags():
    dr = np.array([[9.0, 9.0, 9.0]])
    got, shifts = space.minimum_image(dr, np.diag([4.0, 4.0, 4.0]), (True, False, True))
    np.testing.assert_allclose(got, [[1.0, 9.0, 1.0]])
    assert shifts[0, 1] == 0


def test_free_displacement():
    np.testing.assert_allclose(space.free_displacement(np.ones(3), np.arange(3.0)), [-1, 0, 1])


def test_complete_cell():
    full = space.complete_cell(np.zeros((3, 3)), False)
    assert abs(np.linalg.det(full)) > 0.5
    slab = np.array([[3.0, 0, 0], [1.0, 3.0, 0], [0, 0, 0]])
    full = space.complete_cell(slab, (True, True, False))
    np.testing.assert_allclose(full[:2], slab[:2])
    assert abs(np.dot(full[2], full[0])) < 1e-12 and abs(np.dot(full[2], full[1])) < 1e-12
    # an independent vector on a non-periodic axis is kept
    np.testing.assert_allclose(space.complete_cell(TRICLINIC, (False, True, False)), TRICLINIC)
    with pytest.raises(ValueError):
        space.complete_cell(np.array([[1.0, 0, 0], [2.0, 0, 0], [0, 0, 1.0]]), True)


def test_pair_displacements():
    x = np.random.default_rng(3).normal(size=(4, 3))
    i, j = np.array([0, 1, 3]), np.array([2, 1, 0])
    shifts = np.array([[0, 0, 1], [1, -1, 0], [0, 0, 0]])
    expected = x[j] + shifts @ TRICLINIC - x[i]
    np.testing.assert_allclose(space.pair_displacements(x, TRICLINIC, i, j, shifts), expected)


def test_as_cell_and_pbc():
    np.testing.assert_array_equal(space.as_cell([1.0, 2.0, 3.0]), np.diag([1.0, 2.0, 3.0]))
    np.testing.assert_array_equal(space.as_cell(None), np.zeros((3, 3)))
    np.testing.assert_array_equal(space.as_pbc(True), [True] * 3)
    with pytest.raises(ValueError):
        space.as_cell(np.zeros((2, 2)))
