"""D8 flow routing: depression filling, flat resolution, accumulation and streams.

Vectorised NumPy/SciPy throughout (no per-cell Python loops), on a grid padded
by one nodata cell so that neighbour look-ups need no bounds checks.

Outlets: a valid cell with a nodata or off-raster cell among its 8 neighbours
is an outlet. Water that reaches an outlet and has no lower valid neighbour
leaves the grid there: voids behave like the raster edge (like the sea), and
nothing is routed across them.

1. Depression filling gives each cell the lowest level at which it can spill
   to an outlet (the result of priority-flood, Barnes et al. 2014). It is
   computed on a graph of descent basins: each cell belongs to the pit its
   steepest-descent path ends in, adjacent basins are joined at their lowest
   pass, and the minimum spanning tree of that graph gives every basin its
   spill level (minimax path to the outlets).
2. D8 on the filled surface: each cell drains to the neighbour with the
   steepest drop (distance-weighted, true cell sizes); ties go to the first of
   N, NE, E, SE, S, SW, W, NW.
3. Flats (cells with no lower neighbour that are not outlets) are drained with
   Barnes, Lehman & Mulla (2014): a gradient towards lower terrain (×2) plus a
   gradient away from higher terrain, from breadth-first distances inside
   each flat, without changing any elevation.
4. Accumulation counts the cells (the cell itself included) that drain
   through each cell; streams are the cells whose accumulation reaches a
   threshold.
"""
from __future__ import annotations

from typing import Optional

import numpy as np
from scipy import ndimage
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import breadth_first_order, minimum_spanning_tree

from ..errors import DemSrError
from ..monitor import Monitor
from .cellsize import CellSizes

# D8 neighbour order (row, col offsets): N, NE, E, SE, S, SW, W, NW.
D8_OFFSETS = ((-1, 0), (-1, 1), (0, 1), (1, 1), (1, 0), (1, -1), (0, -1), (-1, -1))
NO_DIRECTION = -1
BLOCK_ROWS = 512
# Cells per vectorised batch: bounds temporary memory (about 300 bytes per cell of the
# batch; 1 << 20 held 0.3 GB and was slower) whatever the raster's size.
CHUNK = 1 << 16


class _Padded:
    """A DEM padded by one nodata cell, addressed by flat (int32) index into the padded grid."""

    def __init__(self, dem: np.ndarray, sizes: CellSizes):
        self.h, self.w = dem.shape
        self.wp = self.w + 2
        self.z = np.pad(dem.astype(np.float32, copy=False), 1,
                        constant_values=np.nan)            # (h+2, w+2)
        if self.z.size >= 2 ** 31:
            raise DemSrError(
                f"The DEM has {dem.size:,} cells; flow routing is done in memory and handles "
                "up to 2^31. Resample it coarser or clip it before computing flow outputs.")
        self.valid = np.isfinite(self.z)
        self.offsets = np.array([dr * self.wp + dc for dr, dc in D8_OFFSETS], np.int32)
        diag = sizes.diagonal
        # distance to each neighbour, per row of the unpadded grid: (8, h)
        self.dist = np.stack([sizes.dy, diag, sizes.dx, diag, sizes.dy, diag, sizes.dx, diag])
        touches = ndimage.binary_dilation(~self.valid, structure=np.ones((3, 3), bool))
        self.outlet = self.valid & touches

    def inner(self, a: np.ndarray) -> np.ndarray:
        return a[1:-1, 1:-1]

    def row_of(self, idx: np.ndarray) -> np.ndarray:
        """Unpadded row of padded flat indices."""
        return idx // self.wp - 1

    def links(self, codes: np.ndarray, base: Optional[np.ndarray] = None) -> np.ndarray:
        """Flat int32 array: the neighbour each cell's D8 code points to; `base` (or -1)
        where it has none. codes: int8 (h, w)."""
        out = np.full(self.z.size, -1, np.int32) if base is None else base
        coded = np.full(self.z.shape, NO_DIRECTION, np.int8)
        self.inner(coded)[:] = codes
        coded = coded.ravel()
        for k, off in enumerate(self.offsets):
            idx = np.flatnonzero(coded == k).astype(np.int32)
            out[idx] = idx + off
        return out


def steepest_descent(z: np.ndarray, valid: np.ndarray, dist: np.ndarray,
                     monitor: Optional[Monitor] = None) -> np.ndarray:
    """D8 direction code 0..7 of the steepest strictly-lower valid neighbour, or -1.

    z, valid: padded (h+2, w+2); dist: (8, h); returns int8 (h, w).
    """
    h, w = z.shape[0] - 2, z.shape[1] - 2
    codes = np.full((h, w), NO_DIRECTION, np.int8)
    for r0 in range(0, h, BLOCK_ROWS):
        if monitor is not None:
            monitor.check()
        r1 = min(r0 + BLOCK_ROWS, h)
        zc = z[1 + r0:1 + r1, 1:-1]
        best = np.zeros((r1 - r0, w), np.float64)
        code = codes[r0:r1]
        for k, (dr, dc) in enumerate(D8_OFFSETS):
            zn = z[1 + r0 + dr:1 + r1 + dr, 1 + dc:1 + dc + w]
            drop = np.subtract(zc, zn, dtype=np.float64)
            drop /= dist[k, r0:r1, None]
            better = drop > best            # NaN (nodata on either side) is never better
            np.copyto(best, drop, where=better)
            np.copyto(code, np.int8(k), where=better)
    return codes


def fill_depressions(pad: _Padded, monitor: Optional[Monitor] = None) -> np.ndarray:
    """Filled elevations (padded, float32, NaN off-grid): each cell raised to its spill level."""
    monitor = monitor or Monitor()
    z, valid = pad.z, pad.valid
    codes = steepest_descent(z, valid, pad.dist, monitor)
    monitor.progress(0.25)
    # Descent basins: follow steepest descent to its end (a pit or a plateau).
    ident = np.arange(z.size, dtype=np.int32)
    nxt = pad.links(codes, base=ident.copy())
    active = np.flatnonzero(nxt != ident).astype(np.int32)
    del ident
    terminal = np.zeros(z.shape, bool)
    pad.inner(terminal)[:] = (codes < 0) & pad.inner(valid)
    del codes
    while active.size:
        monitor.check()
        jump = nxt[nxt[active]]
        nxt[active] = jump
        active = active[nxt[jump] != jump]
    # Adjacent terminal cells have equal elevation (neither has a lower neighbour): one basin.
    labels, nbasins = ndimage.label(terminal, structure=np.ones((3, 3), bool))
    del terminal
    basin = labels.ravel()[nxt].reshape(z.shape)  # 0 off-grid; 1..nbasins on valid cells
    del nxt, labels
    monitor.progress(0.45)
    monitor.check()

    # Basin graph: node 0 = the outside (edges and voids), edge weight = lowest pass.
    # Each cell is paired with its E, S, SE and SW neighbours at flat offsets of the padded
    # grid; a pair that wraps across a row holds a padding cell, which is not valid.
    lo_list, hi_list, w_list = [], [], []
    flat_basin, flat_valid, flat_z = basin.ravel(), valid.ravel(), z.ravel()
    for off in (1, pad.wp, pad.wp + 1, pad.wp - 1):
        a, b = flat_basin[:-off], flat_basin[off:]
        cell = np.flatnonzero((a != b) & flat_valid[:-off] & flat_valid[off:])
        ba, bb = a[cell], b[cell]
        lo_list.append(np.minimum(ba, bb))
        hi_list.append(np.maximum(ba, bb))
        w_list.append(np.maximum(flat_z[cell], flat_z[cell + off]))
        del cell, ba, bb
    lo_list.append(np.zeros(int(pad.outlet.sum()), basin.dtype))
    hi_list.append(basin[pad.outlet])
    w_list.append(z[pad.outlet])
    lo = np.concatenate(lo_list).astype(np.int64)
    hi = np.concatenate(hi_list).astype(np.int64)
    wt = np.concatenate(w_list)
    del lo_list, hi_list, w_list
    key = lo * (nbasins + 1) + hi
    del lo, hi
    order = np.argsort(key)                 # by pair; each pair's lowest pass kept
    key, wt = key[order], wt[order]
    del order
    first = np.ones(key.size, bool)
    first[1:] = key[1:] != key[:-1]
    starts = np.flatnonzero(first)
    key, wt = key[starts], np.minimum.reduceat(wt, starts)
    del starts
    lo, hi = key // (nbasins + 1), key % (nbasins + 1)
    del first, key
    monitor.progress(0.65)
    monitor.check()

    # Spill level of each basin = largest pass on its path to node 0 in the minimum
    # spanning tree (the minimax path); ranks keep the weights exact and positive.
    levels, rank = np.unique(wt, return_inverse=True)
    graph = coo_matrix((rank + 1.0, (lo, hi)), shape=(nbasins + 1, nbasins + 1)).tocsr()
    del lo, hi, rank, wt
    tree = minimum_spanning_tree(graph).tocoo()
    del graph
    _, pred = breadth_first_order(tree, 0, directed=False, return_predecessors=True)
    parent_rank = np.full(nbasins + 1, -1, np.int64)
    child = np.where(pred[tree.col] == tree.row, tree.col, tree.row)
    parent_rank[child] = tree.data.astype(np.int64) - 1
    up = np.where(pred < 0, 0, pred).astype(np.int64)
    spill = parent_rank
    while True:
        monitor.check()
        todo = np.flatnonzero(up != 0)
        if not todo.size:
            break
        spill[todo] = np.maximum(spill[todo], spill[up[todo]])
        up[todo] = up[up[todo]]
    spill_z = np.where(spill >= 0, levels[np.maximum(spill, 0)], -np.inf).astype(np.float32)
    filled = spill_z[basin]
    del basin
    np.maximum(filled, z, out=filled)       # NaN off-grid stays NaN
    monitor.progress(1.0)
    return filled


def _bfs_distance(seeds: np.ndarray, inside: np.ndarray, zf: np.ndarray, offsets: np.ndarray,
                  monitor: Monitor) -> np.ndarray:
    """Breadth-first hop distance (8-connected) from seeds, walking only onto level
    `inside` cells. Seeds get 1 (Barnes' convention), unreached cells 0; flat padded indexing."""
    dist = np.zeros(inside.size, np.int32)
    seen = np.zeros(inside.size, bool)
    seen[seeds] = True
    dist[seeds] = 1
    frontier = seeds
    step = 1
    while frontier.size:
        monitor.check()
        step += 1
        src = np.repeat(frontier, offsets.size)
        cand = src + np.tile(offsets, frontier.size)
        keep = inside[cand] & ~seen[cand]
        keep[keep] = zf[cand[keep]] == zf[src[keep]]
        cand = np.unique(cand[keep])
        seen[cand] = True
        dist[cand] = step
        frontier = cand
    return dist


def _chunks(idx: np.ndarray, size: int = CHUNK):
    for i in range(0, idx.size, size):
        yield idx[i:i + size]


def flow_receivers(filled: np.ndarray, pad: _Padded, monitor: Optional[Monitor] = None
                   ) -> np.ndarray:
    """Flat padded index (int32) of the cell each valid cell drains to; -1 where water
    leaves the grid (an outlet with no lower neighbour) and off-grid."""
    monitor = monitor or Monitor()
    rcv = pad.links(steepest_descent(filled, pad.valid, pad.dist, monitor))
    monitor.progress(0.3)
    # Flats: valid, not an outlet, no lower neighbour.
    flat = pad.valid.ravel() & ~pad.outlet.ravel() & (rcv < 0)
    flat_idx = np.flatnonzero(flat).astype(np.int32)
    if flat_idx.size == 0:
        return rcv
    zf = filled.ravel()
    mask = _flat_mask(zf, flat, flat_idx, pad, monitor)
    monitor.progress(0.6)
    # Flat cells: steepest descent of the mask among level neighbours.
    stuck = 0
    for cells in _chunks(flat_idx):
        monitor.check()
        nb = cells[:, None] + pad.offsets[None, :]
        level = zf[nb] == zf[cells][:, None]                   # NaN is never level
        dist = pad.dist[:, pad.row_of(cells)].T
        drop = np.where(level, (mask[cells][:, None] - mask[nb]) / dist, -np.inf)
        rows = np.arange(cells.size)
        k = np.argmax(drop, axis=1)
        ok = drop[rows, k] > 0
        rcv[cells[ok]] = nb[rows, k][ok]
        stuck += int((~ok).sum())
    if stuck:  # cannot happen after filling; such cells end their paths rather than loop
        monitor.warning(f"{stuck} flat cell(s) could not be drained; their flow paths end there.")
    _break_ties_by_mask(zf, mask, rcv, flat, pad)
    monitor.progress(1.0)
    return rcv


def _flat_mask(zf: np.ndarray, flat: np.ndarray, flat_idx: np.ndarray, pad: _Padded,
               monitor: Monitor) -> np.ndarray:
    """Barnes et al. (2014) drainage mask: 2 × hops to lower terrain + hops from the
    flat's farthest point to higher terrain. Low-edge cells (drained, level with a flat)
    hold 2, other cells 0; along a flat it strictly decreases towards its outlets."""
    low, high = [], []
    for cells in _chunks(flat_idx):
        nb = cells[:, None] + pad.offsets[None, :]
        level = zf[nb] == zf[cells][:, None]
        low.append(np.unique(nb[level & ~flat[nb]]))
        high.append(cells[(zf[nb] > zf[cells][:, None]).any(axis=1)])
    low = np.unique(np.concatenate(low))
    high = np.concatenate(high)
    mask = _bfs_distance(low, flat, zf, pad.offsets, monitor)
    mask *= 2
    if high.size:
        away = _bfs_distance(high, flat, zf, pad.offsets, monitor)
        labels, nlab = ndimage.label(flat.reshape(pad.z.shape), structure=np.ones((3, 3), bool))
        labels = labels.ravel()
        top = np.zeros(nlab + 1, np.int32)    # each flat's largest distance from higher land
        np.maximum.at(top, labels[flat_idx], away[flat_idx])
        reached = flat_idx[away[flat_idx] > 0]
        mask[reached] += top[labels[reached]] - away[reached]
    return mask


def _break_ties_by_mask(zf: np.ndarray, mask: np.ndarray, rcv: np.ndarray,
                        flat: np.ndarray, pad: _Padded) -> None:
    """Where a drained cell has equally steep neighbours, prefer the one lower on the flat
    mask (as D8 on a Barnes-inflated DEM does); only cells next to flats can be affected."""
    marked = np.flatnonzero(mask != 0).astype(np.int32)
    for part in _chunks(marked):
        near = np.unique((part[:, None] + pad.offsets[None, :]).ravel())
        cells = near[pad.valid.ravel()[near] & ~flat[near] & (rcv[near] >= 0)]
        if cells.size == 0:
            continue
        nb = cells[:, None] + pad.offsets[None, :]
        dist = pad.dist[:, pad.row_of(cells)].T
        drop = (zf[cells][:, None].astype(np.float64) - zf[nb]) / dist
        drop = np.where(np.isnan(drop), -np.inf, drop)
        tied = drop == drop.max(axis=1, keepdims=True)
        multi = tied.sum(axis=1) > 1
        if not multi.any():
            continue
        cells, nb, dist, tied = cells[multi], nb[multi], dist[multi], tied[multi]
        score = np.where(tied, (mask[cells][:, None] - mask[nb]) / dist, -np.inf)
        k = np.argmax(score, axis=1)
        rcv[cells] = nb[np.arange(cells.size), k]


def _one_per_value(idx: np.ndarray, owner: np.ndarray) -> np.ndarray:
    """Mask keeping one position of each distinct value of `idx` (without sorting);
    `owner` is scratch space indexed by value."""
    pos = np.arange(idx.size, dtype=np.int32)
    owner[idx] = pos
    return owner[idx] == pos


def accumulate(rcv: np.ndarray, valid: np.ndarray, monitor: Optional[Monitor] = None
               ) -> np.ndarray:
    """Number of cells draining through each cell (itself included), float64, 0 off-grid.

    Processes the drainage tree from its leaves in topological waves. Within a wave,
    donors sharing a receiver are split into rounds in which each receiver appears once
    (at most 8: a cell has 8 neighbours), so plain fancy indexing adds them without a sort.
    """
    monitor = monitor or Monitor()
    n = rcv.size
    acc = valid.astype(np.float64)
    has = rcv >= 0
    indeg = np.bincount(rcv[has], minlength=n).astype(np.int32)
    del has
    owner = np.empty(n, np.int32)
    frontier = np.flatnonzero(valid & (indeg == 0)).astype(np.int32)
    total = max(int(valid.sum()), 1)
    done = 0
    wave = 0
    while frontier.size:
        wave += 1
        if wave % 256 == 0:
            monitor.check()
            monitor.progress(done / total)
        done += frontier.size
        r = rcv[frontier]
        down = r >= 0
        src, r = frontier[down], r[down]
        if r.size == 0:
            break
        targets = r
        while src.size:
            first = _one_per_value(r, owner)
            t = r[first]
            acc[t] += acc[src[first]]
            indeg[t] -= 1
            src, r = src[~first], r[~first]
        targets = targets[indeg[targets] == 0]
        frontier = targets[_one_per_value(targets, owner)]
    monitor.progress(1.0)
    return acc


def flow_accumulation(dem: np.ndarray, sizes: CellSizes, monitor: Optional[Monitor] = None
                      ) -> np.ndarray:
    """D8 flow accumulation in cells (float32, NaN = nodata) after filling and flat resolution."""
    monitor = monitor or Monitor()
    pad = _Padded(dem, sizes)
    filled = fill_depressions(pad, monitor.sub(0.0, 0.45))
    rcv = flow_receivers(filled, pad, monitor.sub(0.45, 0.7))
    del filled
    acc = accumulate(rcv, pad.valid.ravel(), monitor.sub(0.7, 1.0))
    out = acc.reshape(pad.z.shape)[1:-1, 1:-1].astype(np.float32)
    out[~np.isfinite(dem)] = np.nan
    return out


def streams(accumulation: np.ndarray, threshold: float) -> np.ndarray:
    """1 where at least `threshold` cells drain through, 0 elsewhere, NaN on nodata."""
    out = (accumulation >= threshold).astype(np.float32)
    out[np.isnan(accumulation)] = np.nan
    return out
