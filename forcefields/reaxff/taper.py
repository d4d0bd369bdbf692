"""The 7th-order taper of ReaxFF's nonbonded terms (spec §14), in LAMMPS's Horner form.

``Tap(r) = 1 - 35x^4 + 84x^5 - 70x^6 + 20x^7`` with ``x = (r - swa)/(swb - swa)``, evaluated from
the monomial coefficients Tap0..Tap7 as LAMMPS does (bit-level agreement near ``swb``). Not
clamped: callers mask ``r > swb`` themselves, and below ``swa`` the polynomial is used as is.
"""

from __future__ import annotations


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
    coeffs = taper_coefficients(swa, swb)
    value = coeffs[7]
    for k in range(6, -1, -1):
        value = value * r + coeffs[k]
    return value
