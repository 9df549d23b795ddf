"""demsr:derivatives through processing.run, against gdal:slope / gdal:aspect on real DEMs."""
import os

import numpy as np
import pytest
import rasterio
from qgis.core import (QgsApplication, QgsProcessingException, QgsProcessingFeedback,
                       QgsProcessingOutputRasterLayer)

from demsr.core.terrain.cellsize import metres_per_degree

OUTPUTS = ("SLOPE", "ASPECT", "PLAN_CURVATURE", "PROFILE_CURVATURE", "TANGENTIAL_CURVATURE",
           "FLOW_ACCUMULATION", "STREAMS")


def _run(params, feedback=None):
    import processing
    return processing.run("demsr:derivatives", params, feedback=feedback)


def _read(path):
    with rasterio.open(path) as ds:
        return ds.read(1, masked=True), ds


def _interior(ref_mask):
    inner = ~ref_mask
    inner[[0, -1], :] = False
    inner[:, [0, -1]] = False
    return inner


def test_algorithm_declares_chainable_outputs(provider):
    alg = QgsApplication.processingRegistry().algorithmById("demsr:derivatives")
    assert alg is not None and alg.displayName() == "Terrain derivatives"
    assert alg.group() == "Terrain" and alg.groupId() == "terrain"
    outs = {o.name(): o for o in alg.outputDefinitions()}
    assert set(OUTPUTS) <= set(outs)
    assert all(isinstance(outs[n], QgsProcessingOutputRasterLayer) for n in OUTPUTS)
    help_text = alg.shortHelpString()
    for name in ("INPUT", "BAND", "STREAM_THRESHOLD") + OUTPUTS:
        label = alg.parameterDefinition(name).description()
        assert f"<b>{label}</b> ({name})" in help_text


@pytest.mark.parametrize("name,window", [
    ("oso_landslide_lidar_1.83m.tif", (200, 300, 250, 250)),
    ("longyearbyen_1995_20m_xdem.tif", (300, 400, 250, 250)),
    ("flopy_sagehen_10m.tif", (440, 500, 250, 245)),        # nodata along two edges
])
def test_slope_matches_gdal_slope_on_projected_dems(provider, crop, tmp_path, name, window):
    import processing
    src = str(crop(name, *window))
    out = tmp_path / "out"
    out.mkdir()
    res = _run({"INPUT": src, "SLOPE": str(out / "slope.tif")})
    assert res["SLOPE"] == str(out / "slope.tif")
    assert all(res[k] is None for k in OUTPUTS if k != "SLOPE")   # only what was asked for
    assert os.listdir(out) == ["slope.tif"]
    ref = processing.run("gdal:slope", {"INPUT": src, "BAND": 1, "SCALE": 1,
                                        "OUTPUT": str(tmp_path / "gdal.tif")})["OUTPUT"]
    ours, _ = _read(res["SLOPE"])
    theirs, _ = _read(ref)
    inner = _interior(np.ma.getmaskarray(theirs))
    assert inner.sum() > 0.5 * ours.size
    assert np.abs(ours.data[inner] - theirs.data[inner]).max() < 1e-3
    # edges and void borders are computed too, never from nodata
    dem, _ = _read(src)
    assert np.array_equal(np.ma.getmaskarray(ours), np.ma.getmaskarray(dem))


def test_geographic_slope_matches_gdal_up_to_its_flat_earth_scale(provider, crop, tmp_path):
    """gdal:slope with SCALE=111120 treats a degree as 111 120 m both ways. Rescaling its
    gradient (from its slope and aspect) to metres per degree at each row's latitude must
    give our slope; its raw slope must not (east-west cells at 41°N are 25 % narrower)."""
    import processing
    src = str(crop("demcompare_srtm_ref_3arcsec_turkey.tif", 300, 300, 200, 200))
    ours_path = _run({"INPUT": src, "SLOPE": str(tmp_path / "s.tif")})["SLOPE"]
    g_slope = processing.run("gdal:slope", {"INPUT": src, "BAND": 1, "SCALE": 111120,
                                            "OUTPUT": str(tmp_path / "gs.tif")})["OUTPUT"]
    g_aspect = processing.run("gdal:aspect", {"INPUT": src, "BAND": 1,
                                              "OUTPUT": str(tmp_path / "ga.tif")})["OUTPUT"]
    ours, ds = _read(ours_path)
    s, _ = _read(g_slope)
    a, _ = _read(g_aspect)
    rows = np.arange(ours.shape[0])
    lat = ds.transform.f + (rows + 0.5) * ds.transform.e
    per_lon, per_lat = metres_per_degree(lat)
    t = np.tan(np.radians(s.data.astype(np.float64)))
    az = np.radians(np.where(np.ma.getmaskarray(a), 0.0, a.data))
    p = -t * np.sin(az) * 111120 / per_lon[:, None]      # dz/dx east, in m/m
    q = -t * np.cos(az) * 111120 / per_lat[:, None]
    rescaled = np.degrees(np.arctan(np.hypot(p, q)))
    inner = _interior(np.ma.getmaskarray(s))
    assert np.abs(ours.data[inner] - rescaled[inner]).max() < 1e-3
    steep = inner & (s.data > 5)
    assert np.median(np.abs(ours.data[steep] - s.data[steep])) > 0.5


def _with_void(path):
    """Punch a nodata hole (a lake mask, a cloud) into a real DEM crop."""
    with rasterio.open(path, "r+") as ds:
        z = ds.read(1)
        z[100:130, 80:140] = ds.nodata
        ds.write(z, 1)
    return str(path)


def test_all_outputs_with_nodata(provider, crop, tmp_path):
    src = _with_void(crop("flopy_sagehen_10m.tif", 440, 445, 250, 300))
    params = {"INPUT": src, "BAND": 1, "STREAM_THRESHOLD": 200}
    params.update({k: str(tmp_path / f"{k.lower()}.tif") for k in OUTPUTS})
    res = _run(params)
    dem, _ = _read(src)
    void = np.ma.getmaskarray(dem)
    assert void.any() and not void.all()
    acc, _ = _read(res["FLOW_ACCUMULATION"])
    st, st_ds = _read(res["STREAMS"])
    assert st_ds.dtypes[0] == "uint8" and st_ds.nodata == 255
    assert np.array_equal(np.ma.getmaskarray(acc), void)
    np.testing.assert_array_equal(st.data[~void], (acc.data[~void] >= 200).astype(np.uint8))
    assert 0 < st.data[~void].sum() < 0.2 * (~void).sum()
    for k in ("PLAN_CURVATURE", "PROFILE_CURVATURE", "TANGENTIAL_CURVATURE"):
        c, _ = _read(res[k])
        assert np.ma.getmaskarray(c)[void].all()
        assert c.compressed().std() > 0
        if k != "PLAN_CURVATURE":                        # plan curvature is 1/radius of contours
            assert 1e-5 < np.median(np.abs(c.compressed())) < 0.01   # 1/m on 10 m cells, not ×100


def test_bad_input_is_reported_before_work(provider, crop, tmp_path_factory):
    src = str(crop("pysheds_dem_3arcsec.tif", 0, 0, 60, 60))
    tmp_path = tmp_path_factory.mktemp("bad")
    with pytest.raises(QgsProcessingException, match="Band 3 does not exist"):
        _run({"INPUT": src, "BAND": 3, "SLOPE": str(tmp_path / "a.tif")})
    with pytest.raises(QgsProcessingException, match="does not exist"):
        _run({"INPUT": src, "SLOPE": str(tmp_path / "missing" / "a.tif")})
    with pytest.raises(QgsProcessingException):
        _run({"INPUT": src, "STREAM_THRESHOLD": 0, "STREAMS": str(tmp_path / "s.tif")})
    with pytest.raises(QgsProcessingException, match="No output requested"):
        _run({"INPUT": src})
    empty = tmp_path / "empty.tif"
    with rasterio.open(src) as ds:
        profile = ds.profile
    with rasterio.open(empty, "w", **profile) as out:
        out.write(np.full((1, 60, 60), profile["nodata"], profile["dtype"]))
    with pytest.raises(QgsProcessingException, match="no valid cells"):
        _run({"INPUT": str(empty), "SLOPE": str(tmp_path / "b.tif")})
    assert os.listdir(tmp_path) == ["empty.tif"]


def test_cancel_leaves_no_output(provider, crop, tmp_path):
    src = str(crop("pysheds_dem_3arcsec.tif"))
    out = tmp_path / "out"
    out.mkdir()
    feedback = QgsProcessingFeedback()
    feedback.progressChanged.connect(lambda p: feedback.cancel() if p > 20 else None)
    params = {"INPUT": src}
    params.update({k: str(out / f"{k}.tif") for k in OUTPUTS})
    with pytest.raises(QgsProcessingException, match="Cancelled"):
        _run(params, feedback)
    assert os.listdir(out) == []


def test_qgis_process_outputs_open_styled(qgis_app, qgis_process, crop, tmp_path):
    """qgis_process has no window to style the layers in: each raster output gets NAME.qml
    (layer_styles.write_sidecar), which QGIS loads with the file; a .qml of the user's own
    beside an output is left as it is."""
    from qgis.core import QgsRasterLayer

    from demsr import layer_styles as styles

    src = crop("flopy_sagehen_10m.tif", 100, 100, 120, 120)
    mine = tmp_path / "aspect.qml"
    mine.write_text("<qgis/>\n")
    proc = qgis_process("run", "demsr:derivatives", "--", f"INPUT={src}",
                        f"SLOPE={tmp_path / 'slope.tif'}", f"STREAMS={tmp_path / 'streams.tif'}",
                        f"ASPECT={tmp_path / 'aspect.tif'}")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert mine.read_text() == "<qgis/>\n"
    slope = QgsRasterLayer(str(tmp_path / "slope.tif"), "slope", "gdal")
    streams = QgsRasterLayer(str(tmp_path / "streams.tif"), "streams", "gdal")
    assert slope.isValid() and streams.isValid()
    assert slope.renderer().type() == "singlebandpseudocolor"
    ramp = slope.renderer().shader().rasterShaderFunction().colorRampItemList()
    _, stops = styles.style_for("slope", styles.file_stats(str(tmp_path / "slope.tif")))
    assert [(round(i.value, 6), i.color.name()) for i in ramp] == \
        [(round(v, 6), c) for v, c, _ in stops]
    assert streams.renderer().type() == "paletted"
    classes = {c.value: c.color.alpha() for c in streams.renderer().classes()}
    assert classes == {0: 0, 1: 255}                   # no stream transparent, streams blue
    aspect = QgsRasterLayer(str(tmp_path / "aspect.tif"), "aspect", "gdal")
    assert aspect.renderer().type() != "singlebandpseudocolor"  # the user's (empty) style
