"""The 7th-order taper of ReaxFF's nonbonded terms (spec §14), in LAMMPS's Horner form.

``Tap(r) = 1 - 35x^4 + 84x^5 - 70x^6 + 20x^7`` with ``x = (r - swa)/(swb - swa)``, evaluated from
the monomial coefficients Tap0..Tap7 as LAMMPS does (bit-level agreement near ``swb``). Not
clamped: callers mask ``r > swb`` themselves, and below ``swa`` the polynomial is used as is.
"""

from __future__ import annotations

import numpy as np

from reaxgrad.core import custom_jvp
from reaxgrad.core.trace import Tracer


def taper_coefficients(swa, swb):
    """[Tap0, ..., Tap7] for the taper between ``swa`` and ``swb`` (numbers or traced)."""
    d7 = (swb - swa) ** 7
    a2, a3, b2, b3 = swa * swa, swa * swa * swa, swb * swb, swb * swb * swb
    return [
        (-35.0 * a3 * b2 * b2 + 21.0 * a2 * b3 * b2 - 7.0 * swa * b3 * b3 + b3 * b3 * swb) / d7,
        140.0 * a3 * b3 / d7,
        -210.0 * (a3 * b2 + a2 * b3) / d7,
        140.0 * (a3 * swb + 3.0 * a2 * b2 + swa * b3) / d7,
        -35.0 * (a3 + 9.0 * a2 * swb + 9.0 * swa * b2 + b3) / d7,
        84.0 * (a2 + 3.0 * swa * swb + b2) / d7,
        -70.0 * (swa + swb) / d7,
        20.0 / d7,
    ]


def taper(r, swa, swb):
    """Tap(r) for distances ``r`` (array, numpy or traced)."""
    return _polynomial(r, tuple(taper_coefficients(swa, swb)))


def _horner(r, coeffs):
    value = coeffs[-1]
    for c in coeffs[-2::-1]:
        value = value * r + c
    return value


@custom_jvp
def _polynomial(r, coeffs):
    """Σ_k coeffs[k] r^k in Horner form. Its derivative is the derivative polynomial, so
    reverse mode keeps one value per pair (the slope) instead of every Horner stage (seven
    arrays of the far-pair list's length, ~85 MB at 7,250 atoms)."""
    return _horner(r, coeffs)


@_polynomial.defjvp
def _polynomial_jvp(primals, tangents):
    r, coeffs = primals
    dr, dcoeffs = tangents
    slope = _horner(r, tuple(k * c for k, c in enumerate(coeffs))[1:])
    out = slope * dr
    if not all(_is_zero(t) for t in dcoeffs):  # fitted taper radii (gp12, gp13)
        out = out + _horner(r, dcoeffs)
    return _polynomial(r, coeffs), out


def _is_zero(t) -> bool:
    """A tangent known to be zero (a constant, not traced)."""
    return not isinstance(t, Tracer) and not np.any(np.asarray(t))
