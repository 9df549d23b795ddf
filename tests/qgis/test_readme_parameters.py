"""The README's parameter tables are the algorithms' own parameters: every parameter of each
algorithm (loaded in QGIS) has a row in its section's tables, with its description and its
Advanced flag, and every name in those tables is a parameter of that algorithm."""
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ROW = re.compile(r"^\| *(Advanced: )?(.+?) \(`([A-Z_0-9]+)`\) *\|", re.M)


def _section(text: str, anchor: str) -> str:
    """The '## ' section whose GitHub anchor is `anchor`, up to the next '## '."""
    for part in re.split(r"^(?=## )", text, flags=re.M):
        title = part.split("\n", 1)[0][3:]
        if re.sub(r"[^\w\- ]", "", title.strip().lower()).replace(" ", "-") == anchor:
            return part
    raise AssertionError(f"no README section #{anchor}")


def _table_rows(section: str) -> dict:
    """{NAME: (description, advanced)} of the parameter table rows of a section."""
    rows = {}
    for advanced, description, name in ROW.findall(section):
        assert name not in rows, f"{name} has two rows"
        rows[name] = (description, bool(advanced))
    return rows


def test_every_parameter_table_matches_its_algorithm(provider):
    from qgis.core import QgsProcessingParameterDefinition

    text = (ROOT / "README.md").read_text(encoding="utf-8")
    algs = provider.algorithms()
    assert len(algs) >= 5
    for alg in algs:
        rows = _table_rows(_section(text, alg.HELP_ANCHOR))
        params = {p.name(): p for p in alg.parameterDefinitions()}
        assert set(rows) == set(params), (
            alg.id(), "not in the README:", sorted(set(params) - set(rows)),
            "not parameters:", sorted(set(rows) - set(params)))
        for name, (description, advanced) in rows.items():
            p = params[name]
            assert description == p.description(), (alg.id(), name, p.description())
            flagged = bool(p.flags() & QgsProcessingParameterDefinition.Flag.FlagAdvanced)
            assert advanced == flagged, (alg.id(), name, "Advanced" if flagged else "basic")
