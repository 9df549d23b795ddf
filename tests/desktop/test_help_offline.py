"""Help without a network: in the QGIS window each algorithm's Help button opens its section
of the README shipped in the plugin."""
from pathlib import Path

import pytest
from qgis.PyQt.QtCore import QUrl

from _checkout import ROOT
from demsr.desktop import help as demsr_help


@pytest.fixture
def with_iface(qgis_iface, monkeypatch):
    import qgis.utils
    monkeypatch.setattr(qgis.utils, "iface", qgis_iface)


def test_help_buttons_open_the_bundled_readme_section(provider, with_iface, tmp_path,
                                                      monkeypatch):
    monkeypatch.setattr(demsr_help.tempfile, "gettempdir", lambda: str(tmp_path))
    # the README that make install and the ZIP put beside the package (a checkout keeps it
    # at the top)
    monkeypatch.setattr(demsr_help, "README", str(ROOT / "README.md"))
    readme = Path(demsr_help.README).read_text(encoding="utf-8")
    for alg in provider.algorithms():
        url = QUrl(alg.helpUrl())
        assert url.isLocalFile(), (alg.id(), url.toString())
        page = Path(url.toLocalFile())
        assert page.is_file() and page.parent.parent == tmp_path
        text = page.read_text(encoding="utf-8")
        title = alg.displayName()
        assert f"## {title}" in readme and title in text, alg.id()
        assert "https://github.com/" in text     # and the online version one click away
        assert (page.parent / "README.html").is_file()
    assert len(provider.algorithms()) >= 5
