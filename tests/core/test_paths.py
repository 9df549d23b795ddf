"""core.paths: an output is compared with every input and output by the real file."""
import os

import pytest

from demsr.core.errors import DemSrError
from demsr.core.paths import check_distinct_paths, same_file


def test_same_file_sees_through_aliases(tmp_path):
    a = tmp_path / "a.tif"
    a.write_bytes(b"x")
    (tmp_path / "sub").mkdir()
    link = tmp_path / "link.tif"
    link.symlink_to(a)
    hard = tmp_path / "hard.tif"
    os.link(a, hard)
    for alias in (str(a), f"{tmp_path}/./a.tif", f"{tmp_path}/sub/../a.tif", str(link), str(hard)):
        assert same_file(str(a), alias), alias
    assert not same_file(str(a), str(tmp_path / "b.tif"))
    # two outputs that do not exist yet, one through a symlinked folder
    (tmp_path / "dirlink").symlink_to(tmp_path / "sub")
    assert same_file(str(tmp_path / "sub" / "new.tif"), str(tmp_path / "dirlink" / "new.tif"))


def test_case_follows_the_file_system(tmp_path):
    a = tmp_path / "Dem.tif"
    a.write_bytes(b"x")
    upper = tmp_path / "DEM.tif"
    # on a case-sensitive file system these are two files; on a case-insensitive one, one
    assert same_file(str(a), str(upper)) == upper.exists()


def test_check_names_both_parameters(tmp_path):
    a = str(tmp_path / "a.tif")
    open(a, "wb").close()
    with pytest.raises(DemSrError, match="OUTPUT and INPUT are the same file"):
        check_distinct_paths({"INPUT": a}, {"OUTPUT": f"{tmp_path}/./a.tif"})
    with pytest.raises(DemSrError, match="SLOPE and ASPECT are the same file"):
        check_distinct_paths({"INPUT": a}, {"SLOPE": str(tmp_path / "s.tif"),
                                            "ASPECT": str(tmp_path / "s.tif")})
    with pytest.raises(DemSrError, match="OUTPUT_MODEL and INPUT are the same file"):
        check_distinct_paths({"INPUT": [str(tmp_path / "b.tif"), a]}, {"OUTPUT_MODEL": a})
    check_distinct_paths({"INPUT": a, "MODEL": None, "SPECTRAL": ""},
                         {"OUTPUT": str(tmp_path / "o.tif"), "MASK": str(tmp_path / "m.tif")})
