"""Every algorithm's Help button opens a section of the README that exists."""
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _slugs(markdown: str) -> set:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens."""
    out = set()
    for title in re.findall(r"^#{1,6} (.+)$", markdown, flags=re.M):
        slug = re.sub(r"[^\w\- ]", "", title.strip().lower()).replace(" ", "-")
        out.add(slug)
    return out


def test_every_algorithm_links_to_an_existing_readme_section(provider, monkeypatch):
    """Without a window (qgis_process, scripts) the online README; in the window the bundled
    copy of the same section (tests/desktop/test_help_offline.py)."""
    import qgis.utils

    monkeypatch.setattr(qgis.utils, "iface", None)
    slugs = _slugs((ROOT / "README.md").read_text(encoding="utf-8"))
    algs = provider.algorithms()
    assert len(algs) >= 5
    for alg in algs:
        url = alg.helpUrl()
        assert url.startswith("https://") and "#" in url, alg.id()
        assert url.rsplit("#", 1)[1] in slugs, (alg.id(), url)
