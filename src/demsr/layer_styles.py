"""Which colours each output gets. Qt-free and outside desktop/ because headless runs use it
too: a qgis_process run writes the style beside each output as a .qml file, which QGIS
loads with the raster (write_sidecar); applying it to a layer in the window is
desktop/postprocess.py's.

A style is (renderer, stops): renderer "pseudocolor" interpolates between (value, colour,
label) stops, "paletted" colours exact values; a colour is "#rrggbb" or "#rrggbbaa" (alpha
last, as CSS writes it: Qt would read eight digits as #aarrggbb, so use rgba())."""
from __future__ import annotations

import colorsys
import html
import math
import os
from typing import Optional

from .core.atomic import write_atomic
from .core.by_name import Registry

TERRAIN = ["#2b6e3c", "#78a85a", "#d9d08c", "#b5895b", "#8c6446", "#f2f2f2"]
SLOPE = ["#ffffcc", "#fed976", "#fd8d3c", "#e31a1c", "#800026"]          # YlOrRd
DIVERGING = ["#2166ac", "#92c5de", "#f7f7f7", "#f4a582", "#b2182b"]      # RdBu reversed
FLOW = ["#f7fbff", "#c6dbef", "#6baed6", "#2171b5", "#08306b"]           # Blues
UNCERTAIN = ["#fcfbfd", "#dadaeb", "#9e9ac8", "#6a51a3", "#3f007d"]      # Purples: σ, m
STREAM_BLUE = "#1f78b4ff"
FILLED = "#ff00ff80"  # half-transparent magenta: the filled pixels, relief seen through
FILLED_AUX = "#00c8ff80"  # half-transparent cyan: filled from the auxiliary DEM
TRANSPARENT = "#00000000"
# Layer tree order of one run's outputs, top to bottom: what marks cells over what shows the
# terrain, the DEM (and its hillshade) at the bottom. Of the derivatives only the first is
# visible (they are opaque: the others would only hide each other).
ORDER = ("filled_mask", "streams", "uncertainty", "error", "slope", "aspect", "plan_curvature",
         "profile_curvature", "tangential_curvature", "flow_accumulation", "dem")
DERIVATIVES = ("slope", "aspect", "plan_curvature", "profile_curvature",
               "tangential_curvature", "flow_accumulation")
# Share of cells cut at each end of a stretch: one lake shore or cliff must not set it.
CUT = 0.02
SAMPLE = 512  # statistics from at most SAMPLE × SAMPLE cells: cheap on any raster size
# First line of a sidecar this plugin wrote: only such a .qml is ever replaced.
QML_MARK = "<!-- demsr output style -->"


def rgba(colour: str) -> tuple:
    """'#rrggbb' or '#rrggbbaa' -> (r, g, b, a), for QColor(r, g, b, a)."""
    text = colour.lstrip("#")
    if len(text) not in (6, 8):
        raise ValueError(f"colour {colour!r} is not #rrggbb or #rrggbbaa")
    values = [int(text[i:i + 2], 16) for i in range(0, len(text), 2)]
    return tuple(values + [255] * (4 - len(values)))


def _spread(lo: float, hi: float, colours: list) -> list:
    n = len(colours) - 1
    return [(lo + (hi - lo) * i / n, c, f"{lo + (hi - lo) * i / n:.4g}")
            for i, c in enumerate(colours)]


# output kind -> f(stats, reference) -> (renderer, stops); algorithms declare these kinds
STYLES: Registry = Registry("output kind")


def style_for(kind: str, stats: dict, reference: dict | None = None) -> tuple:
    """(renderer, stops) for an output of `kind` with band statistics `stats`
    (min, max, mean, std and, when known, low/high: the CUT and 1 - CUT quantiles);
    `reference` = statistics of the input DEM, so a super-resolved DEM is stretched exactly
    as its input."""
    return STYLES.get(kind)(stats, reference)


@STYLES.register("dem")
def _dem(stats: dict, reference: dict | None) -> tuple:
    ref = reference or stats
    return "pseudocolor", _spread(ref["min"], ref["max"], TERRAIN)


@STYLES.register("slope")
def _slope(stats: dict, reference: dict | None) -> tuple:
    return "pseudocolor", _spread(0.0, max(min(stats["max"], stats.get("high", stats["max"])),
                                           1.0), SLOPE)


@STYLES.register("aspect")
def _aspect(stats: dict, reference: dict | None) -> tuple:
    return "pseudocolor", circular_stops()


@STYLES.register("plan_curvature", "profile_curvature", "tangential_curvature", "error")
def _centred(stats: dict, reference: dict | None) -> tuple:
    """Centred on 0 (flat, or no error): ridges / too high red, valleys / too low blue,
    symmetric so 0 is white; quantiles, not σ, so one outlier cannot set it."""
    lo, hi = stats["min"], stats["max"]
    low, high = stats.get("low", lo), stats.get("high", hi)
    half = max(abs(low), abs(high)) or max(abs(lo), abs(hi)) or 1e-6
    return "pseudocolor", _spread(-half, half, DIVERGING)


@STYLES.register("uncertainty")
def _uncertainty(stats: dict, reference: dict | None) -> tuple:
    """UNCERTAINTY of Super-resolve DEM and Void repair: sequential from 0 m (certain, nearly
    white) to the upper quantile (dark purple), so one cliff's σ does not wash the rest out;
    in metres."""
    top = max(min(stats["max"], stats.get("high", stats["max"])), 1e-6)
    return "pseudocolor", [(v, c, f"{v:.3g} m") for v, c, _ in _spread(0.0, top, UNCERTAIN)]


@STYLES.register("flow_accumulation")
def _flow(stats: dict, reference: dict | None) -> tuple:
    return "pseudocolor", log_stops(max(stats["max"], 1.0), FLOW)


@STYLES.register("streams")
def _streams(stats: dict, reference: dict | None) -> tuple:
    return "paletted", [(0, TRANSPARENT, "no stream"), (1, STREAM_BLUE, "stream")]


@STYLES.register("filled_mask")
def _filled_mask(stats: dict, reference: dict | None) -> tuple:
    """Void repair's FILLED_MASK: 0 kept input cell, 1 filled by the first fill or the
    model, 2 filled from the auxiliary DEM (255 = nodata, not drawn)."""
    return "paletted", [(0, TRANSPARENT, "kept input cell"),
                        (1, FILLED, "filled (first fill / model)"),
                        (2, FILLED_AUX, "filled from the auxiliary DEM")]


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


def file_stats(path: str) -> dict:
    """min, max, mean, std and the CUT / 1 - CUT quantiles (low, high) of band 1, from an
    evenly spaced sample of cells (QGIS's cumulative cut bins the whole range: one outlier
    makes its bins too coarse to find the quantiles)."""
    import numpy as np

    from .core.raster.gdal_mode import osgeo_gdal

    gdal = osgeo_gdal()
    ds = gdal.Open(path)
    band = ds.GetRasterBand(1)
    w, h = ds.RasterXSize, ds.RasterYSize
    step = max(1, math.ceil(max(w, h) / SAMPLE))
    values = band.ReadAsArray(buf_xsize=max(1, w // step), buf_ysize=max(1, h // step),
                              resample_alg=gdal.GRIORA_NearestNeighbour).astype(np.float64)
    nodata = band.GetNoDataValue()
    ds = band = None
    valid = values[np.isfinite(values) & ((values != nodata) if nodata is not None else True)]
    if valid.size == 0:
        return {"min": 0.0, "max": 1.0, "mean": 0.5, "std": 0.0}
    low, high = np.quantile(valid, [CUT, 1.0 - CUT])
    return {"min": float(valid.min()), "max": float(valid.max()), "mean": float(valid.mean()),
            "std": float(valid.std()), "low": float(low), "high": float(high)}


def qml(renderer: str, stops: list) -> str:
    """A QGIS layer style file (.qml, symbology only) for style_for's (renderer, stops)."""
    def colour(c: str) -> str:
        r, g, b, a = rgba(c)
        return f'color="#{r:02x}{g:02x}{b:02x}" alpha="{a}"'

    def attr(text) -> str:
        return html.escape(str(text), quote=True)

    if renderer == "paletted":
        entries = "".join(f'<paletteEntry value="{attr(v)}" {colour(c)} label="{attr(label)}"/>'
                          for v, c, label in stops)
        body = (f'<rasterrenderer type="paletted" band="1" opacity="1" alphaBand="-1">'
                f"<colorPalette>{entries}</colorPalette></rasterrenderer>")
    else:
        lo, hi = stops[0][0], stops[-1][0]
        items = "".join(f'<item value="{attr(repr(float(v)))}" {colour(c)} '
                        f'label="{attr(label)}"/>' for v, c, label in stops)
        body = (f'<rasterrenderer type="singlebandpseudocolor" band="1" opacity="1" '
                f'alphaBand="-1" classificationMin="{lo!r}" classificationMax="{hi!r}">'
                f'<rastershader><colorrampshader colorRampType="INTERPOLATED" '
                f'classificationMode="1" clip="0" minimumValue="{lo!r}" '
                f'maximumValue="{hi!r}">{items}</colorrampshader></rastershader>'
                "</rasterrenderer>")
    return (f"{QML_MARK}\n<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>\n"
            f'<qgis styleCategories="Symbology"><pipe>{body}</pipe></qgis>\n')


def sidecar_path(output: str) -> str:
    return os.path.splitext(output)[0] + ".qml"


def write_sidecar(output: str, kind: str, reference_path: str = "") -> Optional[str]:
    """OUTPUT.qml beside a raster output, so QGIS opens it styled (it loads NAME.qml with
    NAME.tif); None where a .qml this plugin did not write is there (it is the user's)."""
    path = sidecar_path(output)
    if os.path.exists(path):
        with open(path, encoding="utf-8", errors="replace") as fh:
            if fh.readline().strip() != QML_MARK:
                return None
    reference = file_stats(reference_path) if kind == "dem" and reference_path else None
    write_atomic(path, qml(*style_for(kind, file_stats(output), reference)))
    return path
