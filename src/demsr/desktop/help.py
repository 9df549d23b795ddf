"""Help that works offline: the README shipped in the plugin, rendered to HTML pages (the
whole guide, and one page per section for the algorithms' Help buttons: browsers drop a
#section of a local file on most systems)."""
from __future__ import annotations

import html
import os
import re
import tempfile

from ..core.atomic import write_atomic

PLUGIN_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
README = os.path.join(PLUGIN_DIR, "README.md")


def slug(title: str) -> str:
    """GitHub's heading anchor: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", title.strip().lower()).replace(" ", "-")


def sections(markdown: str) -> dict:
    """{slug: text} of each '## ' section (its heading included), outside code blocks."""
    out, current, in_code = {}, None, False
    for line in markdown.splitlines(keepends=True):
        if line.startswith("```"):
            in_code = not in_code
        if not in_code and line.startswith("## "):
            current = slug(line[3:])
            out[current] = ""
        if current is not None:
            out[current] += line
    return out


def to_html(markdown: str, title: str, links: str = "") -> str:
    """A standalone page; Qt's own Markdown reader (GitHub dialect), nothing to install."""
    from qgis.PyQt.QtGui import QTextDocument

    doc = QTextDocument()
    doc.setMarkdown(markdown, QTextDocument.MarkdownFeature.MarkdownDialectGitHub)
    body = doc.toHtml()
    body = body[body.find("<body"):body.rfind("</body>")]
    body = body[body.find(">") + 1:]
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}"
            "</title><style>body{font-family:sans-serif;max-width:60em;margin:1em auto;"
            "padding:0 1em}pre{background:#f4f4f4;padding:.5em;overflow:auto}"
            "td,th{border:1px solid #ccc;padding:2px 6px}</style></head><body>"
            f"<p style='font-size:small'>{links}</p>{body}</body></html>")


def help_folder() -> str:
    """Per user (a shared temp folder may hold another user's pages)."""
    user = os.environ.get("USER") or os.environ.get("USERNAME") or "user"
    return os.path.join(tempfile.gettempdir(), f"demsr-help-{user}")


def local_help_url(anchor: str = "", online: str = "") -> str:
    """file:// URL of the README page (the section `anchor` when it exists), written when the
    README is newer than the pages; "" when the plugin ships no README."""
    if not os.path.isfile(README):
        return ""
    folder = help_folder()
    guide = os.path.join(folder, "README.html")
    page = os.path.join(folder, f"README-{anchor}.html") if anchor else guide
    stamp = os.path.getmtime(README)
    if not os.path.isfile(page) or os.path.getmtime(page) < stamp:
        with open(README, encoding="utf-8") as f:
            text = f.read()
        os.makedirs(folder, exist_ok=True)
        online_link = f" · <a href='{html.escape(online)}'>online version</a>" if online else ""
        write_atomic(guide, to_html(text, "DEM Super-Resolution — user's guide",
                              f"Bundled with the plugin ({html.escape(README)}){online_link}"))
        for key, part in sections(text).items():
            write_atomic(os.path.join(folder, f"README-{key}.html"), to_html(
                part, "DEM Super-Resolution — " + part.splitlines()[0][3:].strip(),
                f"<a href='README.html'>Whole user's guide</a>{online_link}"))
    from qgis.PyQt.QtCore import QUrl

    return QUrl.fromLocalFile(page if os.path.isfile(page) else guide).toString()
