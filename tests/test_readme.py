"""The README's promises point at tests that exist."""
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_every_guarantee_names_existing_tests():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## Guarantees", 1)[1].split("\n## ", 1)[0]
    named = re.findall(r"`(?:([\w/]+\.py)::)?(test_\w+)`", section)
    assert len(named) >= 8
    current = None
    for path, name in named:
        if path:
            current = ROOT / "tests" / path
            assert current.is_file(), path
        assert current is not None
        assert re.search(rf"^def {name}\(", current.read_text(encoding="utf-8"), re.M), \
            f"{name} is not in {current.relative_to(ROOT)}"
