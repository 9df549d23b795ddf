"""Which colours and name each output gets. Pure functions (tested without QGIS); applying
them to a layer is in postprocess.py.

A style is (renderer, stops): renderer "pseudocolor" interpolates between (value, colour,
label) stops, "paletted" colours exact values; a colour is "#rrggbb" or "#rrggbbaa" (alpha
last, as CSS writes it: Qt would read eight digits as #aarrggbb, so use rgba())."""
from __future__ import annotations

import colorsys
import math

# Output kind per algorithm output; algorithms declare these.
KINDS = ("dem", "slope", "aspect", "plan_curvature", "profile_curvature",
         "tangential_curvature", "flow_accumulation", "streams", "filled_mask", "error",
         "uncertainty")
TERRAIN = ["#2b6e3c", "#78a85a", "#d9d08c", "#b5895b", "#8c6446", "#f2f2f2"]
SLOPE = ["#ffffcc", "#fed976", "#fd8d3c", "#e31a1c", "#800026"]          # YlOrRd
DIVERGING = ["#2166ac", "#92c5de", "#f7f7f7", "#f4a582", "#b2182b"]      # RdBu reversed
FLOW = ["#f7fbff", "#c6dbef", "#6baed6", "#2171b5", "#08306b"]           # Blues
UNCERTAIN = ["#fcfbfd", "#dadaeb", "#9e9ac8", "#6a51a3", "#3f007d"]      # Purples: σ, m
STREAM_BLUE = "#1f78b4ff"
FILLED = "#ff00ff80"  # half-transparent magenta: the filled pixels, relief seen through
FILLED_AUX = "#00c8ff80"  # half-transparent cyan: filled from the auxiliary DEM
TRANSPARENT = "#00000000"
SUFFIX = {"slope": "slope", "aspect": "aspect", "plan_curvature": "plan curvature",
          "profile_curvature": "profile curvature",
          "tangential_curvature": "tangential curvature",
          "flow_accumulation": "flow accumulation", "streams": "streams",
          "filled_mask": "filled pixels", "error": "error",
          "uncertainty": "uncertainty (1σ, m)"}
# Layer tree order of one run's outputs, top to bottom: what marks cells over what shows the
# terrain, the DEM (and its hillshade) at the bottom. Of the derivatives only the first is
# visible (they are opaque: the others would only hide each other).
ORDER = ("filled_mask", "streams", "uncertainty", "error", "slope", "aspect", "plan_curvature",
         "profile_curvature", "tangential_curvature", "flow_accumulation", "dem")
DERIVATIVES = ("slope", "aspect", "plan_curvature", "profile_curvature",
               "tangential_curvature", "flow_accumulation")
# Share of cells cut at each end of a stretch: one lake shore or cliff must not set it.
CUT = 0.02


def rgba(colour: str) -> tuple:
    """'#rrggbb' or '#rrggbbaa' -> (r, g, b, a), for QColor(r, g, b, a)."""
    text = colour.lstrip("#")
    if len(text) not in (6, 8):
        raise ValueError(f"colour {colour!r} is not #rrggbb or #rrggbbaa")
    values = [int(text[i:i + 2], 16) for i in range(0, len(text), 2)]
    return tuple(values + [255] * (4 - len(values)))


def layer_name(input_name: str, kind: str, detail: str = "") -> str:
    """'lidar_2m ×2 model', 'lidar_2m slope', 'srtm repaired'."""
    base = input_name.strip() or "DEM"
    if kind == "dem":
        return f"{base} {detail}".strip()
    return f"{base} {SUFFIX.get(kind, kind.replace('_', ' '))}"


def _spread(lo: float, hi: float, colours: list) -> list:
    n = len(colours) - 1
    return [(lo + (hi - lo) * i / n, c, f"{lo + (hi - lo) * i / n:.4g}")
            for i, c in enumerate(colours)]


def style_for(kind: str, stats: dict, reference: dict | None = None) -> tuple:
    """(renderer, stops) for an output of `kind` with band statistics `stats`
    (min, max, mean, std and, when known, low/high: the CUT and 1 - CUT quantiles);
    `reference` = statistics of the input DEM, so a super-resolved DEM is stretched exactly
    as its input."""
    lo, hi = stats["min"], stats["max"]
    low, high = stats.get("low", lo), stats.get("high", hi)
    if kind == "dem":
        ref = reference or stats
        return "pseudocolor", _spread(ref["min"], ref["max"], TERRAIN)
    if kind == "slope":
        return "pseudocolor", _spread(0.0, max(min(hi, high), 1.0), SLOPE)
    if kind == "aspect":
        return "pseudocolor", circular_stops()
    if kind.endswith("curvature") or kind == "error":
        # Centred on 0 (flat, or no error): ridges / too high red, valleys / too low blue,
        # symmetric so 0 is white; quantiles, not σ, so one outlier cannot set it.
        half = max(abs(low), abs(high)) or max(abs(lo), abs(hi)) or 1e-6
        return "pseudocolor", _spread(-half, half, DIVERGING)
    if kind == "uncertainty":
        # Sequential from 0 m (certain, nearly white) to the upper quantile (dark purple),
        # so one cliff's σ does not wash the rest out; labelled in metres.
        top = max(min(hi, high), 1e-6)
        return "pseudocolor", [(v, c, f"{v:.3g} m") for v, c, _ in
                               _spread(0.0, top, UNCERTAIN)]
    if kind == "flow_accumulation":
        return "pseudocolor", log_stops(max(hi, 1.0), FLOW)
    if kind == "streams":
        return "paletted", [(0, TRANSPARENT, "no stream"), (1, STREAM_BLUE, "stream")]
    if kind == "filled_mask":
        # Void repair's FILLED_MASK: 0 kept input cell, 1 filled by the first fill or the
        # model, 2 filled from the auxiliary DEM (255 = nodata, not drawn).
        return "paletted", [(0, TRANSPARENT, "kept input cell"),
                            (1, FILLED, "filled (first fill / model)"),
                            (2, FILLED_AUX, "filled from the auxiliary DEM")]
    raise ValueError(f"unknown output kind {kind!r}")


def log_stops(top: float, colours: list) -> list:
    """Stops at 1, 10, 100, … up to `top`: flow accumulation spans orders of magnitude, a
    linear ramp shows only the main channel (the rest is 'almost black')."""
    decades = max(1, math.ceil(math.log10(top)))
    values = [10.0 ** (decades * i / (len(colours) - 1)) for i in range(len(colours))]
    return [(v, c, f"{v:.0f}") for v, c in zip(values, colours)]


def circular_stops(n: int = 8) -> list:
    """Hue wheel 0..360° whose two ends have the same colour (north = north)."""
    stops = []
    for i in range(n + 1):
        deg = 360.0 * i / n
        r, g, b = colorsys.hsv_to_rgb((deg / 360.0) % 1.0, 0.65, 0.95)
        label = ["N", "NE", "E", "SE", "S", "SW", "W", "NW", "N"][i] if n == 8 else f"{deg:g}"
        stops.append((deg, "#%02x%02x%02x" % (round(r * 255), round(g * 255), round(b * 255)),
                      label))
    return stops
