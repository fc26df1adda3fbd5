"""Sobol points with Bratley and Fox's direction numbers (ACM TOMS algorithm 659, 1988).

The authors of the paper drew their search points from ``i4_sobol``, John Burkardt's port of
algorithm 659, which uses this table (up to 40 dimensions, 30 bits). Dimensions 1 and 2
coincide with Joe and Kuo's numbers (scipy's); from dimension 3 on the initial direction
numbers differ, and so do the points. Points are generated in Gray-code order (Antonov and
Saleev), as ``i4_sobol`` does: element ``k`` is the XOR of the direction numbers selected
by the bits of ``k ^ (k >> 1)``. Element 0 is the all-zero corner.
"""

from __future__ import annotations

import numpy as np

BITS = 30
"""Bits per coordinate, as in ``i4_sobol`` (its ``LOG_MAX``): points are multiples of 2^-30."""

TABLE: tuple[tuple[int, tuple[int, ...]], ...] = (
    # (primitive polynomial as an integer with its leading and constant terms,
    #  initial values m_1, …, m_degree), dimension 1 first; Bratley & Fox (1988), table 1.
    (1, (1,)),
    (3, (1,)),
    (7, (1, 1)),
    (11, (1, 3, 7)),
    (13, (1, 1, 5)),
    (19, (1, 3, 1, 1)),
    (25, (1, 1, 3, 7)),
    (37, (1, 3, 3, 9, 9)),
    (59, (1, 3, 7, 13, 3)),
    (47, (1, 1, 5, 11, 27)),
    (61, (1, 3, 5, 1, 15)),
    (55, (1, 1, 7, 3, 29)),
    (41, (1, 3, 7, 7, 21)),
    (67, (1, 1, 1, 9, 23, 37)),
    (97, (1, 3, 3, 5, 19, 33)),
    (91, (1, 1, 3, 13, 11, 7)),
    (109, (1, 1, 7, 13, 25, 5)),
    (103, (1, 3, 5, 11, 7, 11)),
    (115, (1, 1, 1, 3, 13, 39)),
    (131, (1, 3, 1, 15, 17, 63, 13)),
    (193, (1, 1, 5, 5, 1, 27, 33)),
    (137, (1, 3, 3, 3, 25, 17, 115)),
    (145, (1, 1, 3, 15, 29, 15, 41)),
    (143, (1, 3, 1, 7, 3, 23, 79)),
    (241, (1, 3, 7, 9, 31, 29, 17)),
    (157, (1, 1, 5, 13, 11, 3, 29)),
    (185, (1, 3, 1, 9, 5, 21, 119)),
    (167, (1, 1, 3, 1, 23, 13, 75)),
    (229, (1, 3, 3, 11, 27, 31, 73)),
    (171, (1, 1, 7, 7, 19, 25, 105)),
    (213, (1, 3, 5, 5, 21, 9, 7)),
    (191, (1, 1, 1, 15, 5, 49, 59)),
    (253, (1, 1, 1, 1, 1, 33, 65)),
    (203, (1, 3, 5, 15, 17, 19, 21)),
    (211, (1, 1, 7, 11, 13, 29, 3)),
    (239, (1, 3, 7, 5, 7, 11, 113)),
    (247, (1, 1, 5, 3, 15, 19, 61)),
    (285, (1, 3, 1, 1, 9, 27, 89, 7)),
    (369, (1, 1, 3, 7, 31, 15, 45, 23)),
    (299, (1, 3, 3, 9, 9, 25, 107, 39)),
)
MAX_DIM = len(TABLE)


def direction_integers(poly: int, initial: tuple[int, ...], bits: int = BITS) -> list[int]:
    """``m_1 … m_bits`` for one dimension: the initial values, then Sobol's recurrence

    ``m_k = 2 a_1 m_{k-1} ⊕ 4 a_2 m_{k-2} ⊕ … ⊕ 2^s m_{k-s} ⊕ m_{k-s}``, where ``s`` is the
    polynomial's degree and ``a_1 … a_{s-1}`` its inner coefficients (highest power first).
    Degree 0 (``poly = 1``, dimension 1) means every ``m_k = 1``: the van der Corput sequence.
    """
    degree = poly.bit_length() - 1
    if degree == 0:
        return [1] * bits
    if len(initial) != degree:
        raise ValueError(
            f"polynomial {poly} has degree {degree}, got {len(initial)} initial values"
        )
    m = list(initial)
    coefficients = [(poly >> (degree - i)) & 1 for i in range(1, degree)]  # a_1 … a_{s-1}
    for k in range(degree, bits):
        value = m[k - degree] ^ (m[k - degree] << degree)
        for i, a in enumerate(coefficients, start=1):
            if a:
                value ^= m[k - i] << i
        m.append(value)
    return m[:bits]


def bratley_fox_points(dim: int, n: int, first: int = 1) -> np.ndarray:
    """Elements ``first … first + n - 1`` of the ``dim``-dimensional sequence, as ``n × dim``.

    ``first = 1`` (the default) skips the all-zero element 0, which is what the authors'
    ``i4_sobol_generate(dim, n, skip=2)`` returns: its ``j``-th point (``j = 1 … n``) is
    ``i4_sobol`` called with seed ``skip + j - 2 = j``, that is element ``j``.
    """
    if not 1 <= dim <= MAX_DIM:
        raise ValueError(
            f"Bratley-Fox direction numbers cover 1 to {MAX_DIM} dimensions, got {dim}"
        )
    if n < 0 or first < 0:
        raise ValueError(f"n and first must be >= 0, got n={n}, first={first}")
    if first + n > 2**BITS:
        raise ValueError(f"at most 2^{BITS} points, asked for elements up to {first + n - 1}")
    # v[d][k] = m_{k+1} · 2^(BITS-k-1): direction number k+1 of dimension d as a BITS-bit integer.
    directions = [
        [m << (BITS - k - 1) for k, m in enumerate(direction_integers(poly, initial))]
        for poly, initial in TABLE[:dim]
    ]
    out = np.empty((n, dim), dtype=np.float64)
    scale = 2.0**-BITS
    for row, index in enumerate(range(first, first + n)):
        gray = index ^ (index >> 1)
        for d in range(dim):
            value, bit = 0, 0
            g = gray
            while g:
                if g & 1:
                    value ^= directions[d][bit]
                g >>= 1
                bit += 1
            out[row, d] = value * scale
    return out
