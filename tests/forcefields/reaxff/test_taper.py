"""The 7th-order taper: values, smoothness at swb, and the Horner coefficients of the spec."""

import numpy as np
import pytest

import reaxgrad.core as rc
import reaxgrad.core.numpy as jnp
from reaxgrad.forcefields.reaxff.taper import taper, taper_coefficients


@pytest.mark.parametrize("swa,swb", [(0.0, 10.0), (1.5, 10.0), (0.0, 8.0)])
def test_taper_is_the_seventh_order_switch(swa, swb):
    r = np.linspace(swa, swb, 41)
    x = (r - swa) / (swb - swa)
    expected = 1 - 35 * x**4 + 84 * x**5 - 70 * x**6 + 20 * x**7
    np.testing.assert_allclose(np.asarray(taper(r, swa, swb)), expected, rtol=0, atol=1e-12)


def test_taper_derivatives_vanish_at_the_cutoff():
    f = lambda r: jnp.sum(taper(r, 0.0, 10.0))  # noqa: E731
    at = np.array([10.0])
    assert abs(float(taper(at, 0.0, 10.0)[0])) < 1e-12
    for order_fn in (rc.grad(f), rc.grad(lambda r: jnp.sum(rc.grad(f)(r))),
                     rc.grad(lambda r: jnp.sum(rc.grad(lambda s: jnp.sum(rc.grad(f)(s)))(r)))):
        assert abs(float(np.asarray(order_fn(at))[0])) < 1e-10


def test_taper_is_not_clamped_below_swa():
    """LAMMPS uses the polynomial for every 0 < r <= swb (spec §14: Tap(0) ~ 0.949 here)."""
    assert float(taper(np.array(0.0), 1.5, 10.0)) == pytest.approx(
        taper_coefficients(1.5, 10.0)[0])
    assert 0.9 < float(taper(np.array(0.0), 1.5, 10.0)) < 0.96


def test_taper_derivatives_in_r_and_in_the_radii_are_exact():
    """The taper differentiates by its derivative polynomial (a custom rule): the derivatives
    in r (first and second) and in swa and swb (fitted radii), under jit, equal the
    derivatives of 1 - 35x^4 + 84x^5 - 70x^6 + 20x^7, x = (r - swa)/(swb - swa)."""
    r = np.linspace(0.7, 9.6, 9)
    swa, swb = 1.2, 9.8
    w = swb - swa
    x = (r - swa) / w
    dp = -140 * x**3 + 420 * x**4 - 420 * x**5 + 140 * x**6  # dTap/dx
    d2p = -420 * x**2 + 1680 * x**3 - 2100 * x**4 + 840 * x**5
    tap = 1 - 35 * x**4 + 84 * x**5 - 70 * x**6 + 20 * x**7

    def total(r, swa, swb):
        return jnp.sum(taper(r, swa, swb) * r)

    g = rc.jit(rc.grad(total, argnums=(0, 1, 2)))(r, swa, swb)
    np.testing.assert_allclose(np.asarray(g[0]), dp / w * r + tap, rtol=0, atol=1e-10)
    assert float(g[1]) == pytest.approx(np.sum(dp * (x - 1) / w * r), rel=1e-9)
    assert float(g[2]) == pytest.approx(np.sum(dp * -x / w * r), rel=1e-9)
    second = rc.grad(lambda r: jnp.sum(rc.grad(lambda s: total(s, swa, swb))(r)))(r)
    np.testing.assert_allclose(np.asarray(second), d2p / w**2 * r + 2 * dp / w, rtol=0,
                               atol=1e-9)
