"""The README and its companions say what the code does: the bundled-model table is the
code's rule, the guarantees point at tests that exist, and the two changelogs agree."""
import configparser
import re

from _checkout import PACKAGE, ROOT


def _readme() -> str:
    return (ROOT / "README.md").read_text(encoding="utf-8")


def _section(text: str, heading: str) -> str:
    """The text under `heading` (a whole heading line) up to the next heading of its level
    or above."""
    level = len(heading.split(" ", 1)[0])
    body = text.split("\n" + heading + "\n", 1)[1]
    return re.split(rf"^#{{1,{level}}} ", body, maxsplit=1, flags=re.M)[0]


def test_models_and_factors_table_is_the_bundled_rule():
    """Row for row: the factors, the model, the finish and the blend of bundled.RULE."""
    import demsr  # noqa: F401 - the working tree as the package (tests/conftest.py)
    from demsr.core.nets import bundled

    words = {"area average": bundled.AVERAGE, "cubic spline": bundled.SPLINE, "—": ""}
    table = _section(_readme(), "### Models and factors")
    rows = [line.strip("|").split("|") for line in table.splitlines()
            if line.startswith("|") and not line.startswith("|---")][1:]
    assert len(rows) == len(bundled.RULE)
    for cells, rule in zip(rows, bundled.RULE):
        factor, model, finish, blend = (c.strip() for c in cells)
        assert re.fullmatch(re.escape(rule.factors_text()) + r"(, e\.g\. ×[\d.]+)?", factor), \
            (factor, rule)
        assert (model, words[finish], blend) == (f"`{rule.model}`", rule.finish,
                                                 "yes" if rule.blend else "no"), (cells, rule)


def test_readme_names_no_other_bundled_factor_rule():
    """The bundled factor-range models are named in the README's table alone (a second
    copy of the rule is how the README came to contradict itself)."""
    text = _readme()
    table = _section(text, "### Models and factors")
    outside = text.replace(table, "")
    assert not re.search(r"demsr_fast_x\d_f[\d-]+", outside), \
        re.findall(r".*demsr_fast_x\d_f[\d-]+.*", outside)


def _guarantee_titles(section: str) -> list:
    return re.findall(r"^- \*\*(.+?)\*\*", section, flags=re.M)


def test_every_guarantee_names_existing_tests():
    """Each promise of the README's Guarantees is in docs/testing.md with the tests that
    hold it, and every test named there exists."""
    promised = _guarantee_titles(_section(_readme(), "## Guarantees"))
    testing = _section((ROOT / "docs" / "testing.md").read_text(encoding="utf-8"),
                       "## Guarantees")
    assert len(promised) >= 8 and promised == _guarantee_titles(testing)
    named = re.findall(r"`(?:([\w/]+\.py)::)?(test_\w+)`", testing)
    assert len(named) >= 8
    current = None
    for path, name in named:
        if path:
            current = ROOT / "tests" / path
            assert current.is_file(), path
        assert current is not None
        assert re.search(rf"^def {name}\(", current.read_text(encoding="utf-8"), re.M), \
            f"{name} is not in {current.relative_to(ROOT)}"


def test_changelog_and_metadata_agree():
    """Each version of metadata.txt's changelog (what the Plugin Manager shows) is a heading
    of CHANGELOG.md whose first paragraph is the same text, and no version is missing."""
    cfg = configparser.ConfigParser(interpolation=None)
    cfg.read(PACKAGE / "metadata.txt", encoding="utf-8")
    meta = {}
    for line in cfg["general"]["changelog"].splitlines():
        if line.strip():
            version, text = re.match(r"\s*(Unreleased|\d+\.\d+\.\d+):? (.+)", line).groups()
            meta[version] = " ".join(text.split())
    log = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    parts = re.split(r"^## (.+)\n", log, flags=re.M)[1:]
    changelog = {v.strip(): " ".join(body.strip().split("\n\n")[0].split())
                 for v, body in zip(parts[::2], parts[1::2])}
    assert list(changelog) == list(meta)
    assert changelog == meta
