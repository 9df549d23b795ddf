"""First fill of DEM voids: smooth inpainting by sparse linear solves.

A void is filled with the biharmonic (thin-plate-like) surface that meets
the surrounding terrain with its values and its slopes: ΔΔz = 0 inside the
void, with the known cells around it fixed. Unlike inverse distance
(`gdal:fillnodata`), which flattens a void towards the mean of its rim, it
continues slopes across, so ridges and valley sides that a void cuts are
bridged rather than levelled. Very large voids (over BIHARMONIC_MAX cells in
one connected group) get the harmonic (Laplace, ΔZ = 0) surface instead,
which is cheaper to solve and never overshoots.

The Laplacian is the graph Laplacian of the 4-neighbour grid restricted to
cells that exist (valid or being filled), so the raster edge and nodata that
is not being filled act as no-flux boundaries. Voids are solved one
connected group at a time (voids within 3 cells of each other together), in
their bounding box, so the cost follows the void area, not the raster.
"""
from __future__ import annotations

from typing import Callable, Iterator, Optional

import numpy as np
from scipy import ndimage, sparse
from scipy.sparse.linalg import spsolve

from ..monitor import Monitor

BIHARMONIC_MAX = 300_000  # unknowns per group; beyond this, Laplace
_MARGIN = 3


def _laplacian(nodes: np.ndarray) -> sparse.csr_matrix:
    """Graph Laplacian (degree − adjacency) over the True cells of `nodes` (row-major ids)."""
    h, w = nodes.shape
    ids = np.full(nodes.shape, -1, np.int64)
    n = int(nodes.sum())
    ids[nodes] = np.arange(n)
    rows, cols = [], []
    for a, b in ((ids[:, :-1], ids[:, 1:]), (ids[:-1, :], ids[1:, :])):
        ok = (a >= 0) & (b >= 0)
        rows += [a[ok], b[ok]]
        cols += [b[ok], a[ok]]
    r, c = np.concatenate(rows), np.concatenate(cols)
    adj = sparse.csr_matrix((np.ones(r.size), (r, c)), shape=(n, n))
    deg = np.asarray(adj.sum(axis=1)).ravel()
    return (sparse.diags(deg) - adj).tocsr()


def _solve_group(zs: list[np.ndarray], unknown: np.ndarray, biharmonic: bool
                 ) -> np.ndarray:
    """(unknown cells, fields): values for the `unknown` cells of each window in `zs` (all
    absent, NaN, on the same cells), from one factorisation of the operator."""
    nodes = np.isfinite(zs[0]) | unknown
    lap = _laplacian(nodes)
    op = (lap @ lap).tocsr() if biharmonic else lap
    u = unknown[nodes]
    k = ~u
    zk = np.stack([z[nodes][k] for z in zs], axis=1).astype(np.float64)
    a = op[u][:, u].tocsc()
    rhs = -(op[u][:, k] @ zk)
    return spsolve(a, rhs).reshape(int(u.sum()), len(zs))


def group_windows(fill: np.ndarray) -> tuple[np.ndarray, list[tuple[int, tuple[slice, slice]]]]:
    """(group labels, [(label, window)]) of the void cells of `fill`: voids within _MARGIN
    cells of each other form one group, its window the group's box grown by _MARGIN. One
    pass over the whole mask; void_groups reads the windows from it."""
    labels, _ = ndimage.label(ndimage.binary_dilation(fill, iterations=_MARGIN),
                              structure=np.ones((3, 3), bool))
    h, w = fill.shape
    wins = [(i, (slice(max(box[0].start - _MARGIN, 0), min(box[0].stop + _MARGIN, h)),
                 slice(max(box[1].start - _MARGIN, 0), min(box[1].stop + _MARGIN, w))))
            for i, box in enumerate(ndimage.find_objects(labels), start=1) if box is not None]
    return labels, wins


def void_groups(fill: np.ndarray, grouped: Optional[tuple] = None
                ) -> Iterator[tuple[tuple[slice, slice], np.ndarray]]:
    """(window, unknown cells of the window) for each group of void cells (group_windows;
    `grouped`: its result when the caller has it already). Needs only the mask: the
    streamed repair reads each window from the file."""
    labels, wins = grouped if grouped is not None else group_windows(fill)
    for i, win in wins:
        unknown = fill[win] & (labels[win] == i)
        if unknown.any():
            yield win, unknown


def solvable(z: np.ndarray, unknown: np.ndarray) -> np.ndarray:
    """The unknown cells whose 4-connected piece of the window (existing or unknown cells)
    holds at least one known cell: the others have no boundary value to take."""
    nodes = np.isfinite(z) | unknown
    pieces, _ = ndimage.label(nodes)
    anchored = np.unique(pieces[np.isfinite(z) & nodes])
    return unknown & np.isin(pieces, anchored[anchored > 0])


def fill_window(z: np.ndarray, unknown: np.ndarray, biharmonic: Optional[bool] = None
                ) -> np.ndarray:
    """Values for the `unknown` cells of window `z` (NaN = absent, or unknown), in the
    order of z[unknown]; NaN where a cell cannot be reached from known data. `biharmonic`
    None: biharmonic up to BIHARMONIC_MAX unknowns, harmonic (Laplace) beyond."""
    return fill_windows([z], unknown, biharmonic)[0]


def fill_windows(zs: list[np.ndarray], unknown: np.ndarray,
                 biharmonic: Optional[bool] = None) -> list[np.ndarray]:
    """fill_window for several fields known on the same cells (NaN on the same cells of
    each), with one factorisation: the delta fill's difference and its local variance
    (UNCERTAINTY) cross a void by the same harmonic operator."""
    z0 = zs[0]
    if any(not np.array_equal(np.isfinite(z), np.isfinite(z0)) for z in zs[1:]):
        raise ValueError("fill_windows needs fields known on the same cells")
    outs = [np.full(int(unknown.sum()), np.nan) for _ in zs]
    ok = solvable(z0, unknown)
    if not ok.any():
        return outs
    cut = unknown & ~ok
    zs = [np.where(cut, np.nan, z) for z in zs]
    # Solve for the anomaly from the mean: better conditioned for high elevations.
    offsets = [float(np.nanmean(np.where(ok, np.nan, z))) for z in zs]
    if biharmonic is None:
        biharmonic = int(ok.sum()) <= BIHARMONIC_MAX
    vals = _solve_group([z - o for z, o in zip(zs, offsets)], ok, biharmonic=biharmonic)
    for i, (out, o) in enumerate(zip(outs, offsets)):
        full = np.full(z0.shape, np.nan)
        full[ok] = vals[:, i] + o
        out[:] = full[unknown]
    return outs


def inpaint(dem: np.ndarray, fill: np.ndarray, monitor: Optional[Monitor] = None,
            window_fill: Optional[Callable] = None) -> np.ndarray:
    """A float32 copy of `dem` with the cells of `fill` (NaN there) filled smoothly.

    Cells that are NaN but not in `fill` stay NaN and are not used. A group of
    void cells with no valid cell around it stays NaN. Each group is solved from the
    input's data only (never from another group's fill), so the result does not depend on
    the order of the groups or on how the raster is read. `window_fill(win, z, unknown)`
    replaces fill_window (z: the window, float64, NaN = absent or unknown) to fill each
    group another way (the delta surface fill).
    """
    monitor = monitor or Monitor()
    out = np.array(dem, dtype=np.float32, copy=True)
    fill = fill & ~np.isfinite(out)
    if not fill.any():
        return out
    groups = list(void_groups(fill))
    for i, (win, unknown) in enumerate(groups, start=1):
        monitor.check()
        window = np.asarray(dem[win], dtype=np.float64)
        window[unknown] = np.nan
        values = (window_fill(win, window, unknown) if window_fill
                  else fill_window(window, unknown))
        out[win][unknown] = values.astype(np.float32)
        monitor.progress(i / len(groups))
    return out
