"""Turn untrusted notebook cells into safe HTML for the teacher's export.

Everything a submission holds is treated as hostile: markdown and HTML outputs are cleaned with nh3
(an allow-list of formatting and table tags, no ``style``, no event handlers, no scripts), images are
kept only as validated ``data:image/...`` URIs, links lose their targets, and JavaScript or widget
outputs are dropped. SVG figures are rebuilt from an allow-list (``labkit.classroom._svg``) and shown
as ``data:`` images. Each page also carries a strict Content-Security-Policy (no scripts, no remote
resources), so a sanitiser bug alone could still not run code or fetch anything.

The sanitiser's input is bounded before nh3 or the markdown parser sees it, so no submission can
make an export slow: HTML nested deeper than ``MAX_DEPTH`` (found by a linear scan of its tags) or
longer than ``MAX_HTML``, markdown longer than ``MAX_MARKDOWN`` per cell or past a page's
``PAGE_MARKDOWN``, and text past ``MAX_TEXT`` are shown as plain, escaped, cut text with a note.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import html
import re
from typing import Any, Mapping

import nh3

from labkit.classroom._svg import clean_svg

__all__ = ["clean_html", "markdown_to_html", "render_cell", "render_output", "page", "CSS", "Budget"]

MAX_DEPTH = 100
"""The deepest HTML nesting cleaned (a pandas table is ~6 deep; nh3's time grows with the cube of the depth)."""
MAX_HTML = 2_000_000
MAX_MARKDOWN = 10_000
"""The longest markdown cell rendered (the report's longest is under 1,000 characters)."""
PAGE_MARKDOWN = 20_000
"""Markdown rendered per page; later cells are shown as text (pathological markdown costs ~50 us a character)."""
MAX_TEXT = 200_000
"""The longest text (stream, traceback, code) shown; the rest is cut with a note."""
MAX_IMAGE = 20_000_000
MAX_OUTPUTS = 200
"""The most outputs shown per code cell."""
_TAG = re.compile(r"<(/?)([A-Za-z][A-Za-z0-9:-]*)[^>]*?(/?)>")
_VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param", "source", "track",
         "wbr", "p", "li", "dt", "dd", "tr", "td", "th", "option", "optgroup", "rb", "rt", "rp", "thead", "tbody",
         "tfoot", "colgroup", "caption"}
"""Elements that never nest (void) or are closed implicitly by their next sibling: not counted as depth."""

TAGS = {"a", "abbr", "b", "blockquote", "br", "caption", "code", "col", "colgroup", "dd", "del", "details", "div",
        "dl", "dt", "em", "figcaption", "figure", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "i", "img", "ins",
        "kbd", "li", "mark", "ol", "p", "pre", "q", "s", "samp", "small", "span", "strike", "strong", "sub",
        "summary", "sup", "table", "tbody", "td", "tfoot", "th", "thead", "tr", "tt", "u", "ul", "var", "wbr"}
CONTENT_TAGS = {"script", "style", "noscript", "template", "iframe", "object", "embed", "svg", "math", "textarea",
                "title", "xmp", "noembed", "noframes", "select", "button", "frameset"}
"""Tags removed together with their content (never shown as text)."""
ATTRIBUTES = {"img": {"src", "alt", "width", "height"}, "a": {"href"}, "td": {"colspan", "rowspan"},
              "th": {"colspan", "rowspan", "scope"}, "ol": {"start"}, "*": {"title"}}
IMAGE_TYPES = {"image/png": b"\x89PNG\r\n\x1a\n", "image/jpeg": b"\xff\xd8\xff", "image/gif": b"GIF8",
               "image/svg+xml": None}
_DATA_URI = re.compile(r"^data:(image/(?:png|jpeg|gif|svg\+xml));base64,([A-Za-z0-9+/=]+)$")
_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")
DROPPED = ("application/javascript", "text/javascript", "application/vnd.jupyter.widget-view+json",
           "application/vnd.jupyter.widget-state+json")

CSS = """
body { font: 15px/1.5 system-ui, -apple-system, "Segoe UI", sans-serif; color: #1d232a; margin: 0;
  background: #f5f6f8; }
header, main, footer { max-width: 1200px; margin: 0 auto; padding: 0 24px; }
header { padding-top: 18px; }
h1 { margin: 4px 0; font-size: 26px; }
.members { font-size: 17px; margin: 2px 0 4px; }
.meta, footer, .crumb { color: #5b6470; font-size: 13px; }
.problems { background: #fff4e5; border: 1px solid #f0b35a; border-radius: 6px; padding: 8px 14px; }
.problems ul { margin: 4px 0; }
.ok { color: #22703a; }
.cell { background: #fff; border: 1px solid #dde1e6; border-radius: 6px; margin: 14px 0; padding: 10px 16px;
  overflow-x: auto; }
.cell.code { border-left: 4px solid #4a7fc1; }
.cell.markdown { border-left: 4px solid #9aa4b0; }
.cell.answer { border-left: 4px solid #d08a1c; background: #fffdf7; }
details summary { color: #5b6470; font-size: 13px; cursor: pointer; }
pre { background: #f3f4f6; padding: 8px 10px; border-radius: 4px; overflow-x: auto; font-size: 13px; }
pre.error { background: #fdecec; color: #8a1f1f; }
pre.stderr { background: #fff7e6; }
.note { color: #8a1f1f; font-style: italic; }
table { border-collapse: collapse; font-size: 13px; margin: 6px 0; }
th, td { border: 1px solid #d5d9de; padding: 4px 8px; text-align: right; vertical-align: top; }
th { background: #eef1f4; }
tbody th { text-align: left; font-weight: 600; }
tbody tr:nth-child(even) td { background: #fafbfc; }
table.labkit-report { width: 100%; }
table.labkit-report th { overflow-wrap: anywhere; hyphens: auto; }
table.labkit-report td { white-space: nowrap; }
table.labkit-report td:first-child, table.labkit-report td:nth-child(2),
table.labkit-report td:nth-last-child(-n+3) { text-align: left; white-space: normal; overflow-wrap: anywhere; }
table.labkit-report td:first-child { font-weight: 600; min-width: 8em; }
table.labkit-report td:nth-last-child(2) { min-width: 7em; }
table.index th, table.index td { text-align: left; overflow-wrap: anywhere; }
h1, .members, .meta, .problems, .cell { overflow-wrap: anywhere; }
img { max-width: 100%; height: auto; }
a { color: #1f5fa8; }
"""


class Budget:
    """What one page may still spend on markdown rendering (characters), shared by its cells."""

    def __init__(self, markdown: int = PAGE_MARKDOWN) -> None:
        """:param markdown: the characters of markdown the page may render."""
        self.markdown = markdown

    def take(self, size: int) -> bool:
        """Return True (and spend ``size``) when ``size`` characters of markdown may still be rendered."""
        if size > self.markdown:
            return False
        self.markdown -= size
        return True


def nesting(fragment: str, stop: int | None = None) -> int:
    """Return how deep ``fragment``'s elements nest, by one linear scan of its tags (an upper bound).

    :param fragment: untrusted HTML.
    :param stop: return as soon as the depth reaches this (None: scan it all).
    """
    depth = deepest = 0
    for match in _TAG.finditer(fragment):
        closing, name, selfclosing = match.groups()
        if selfclosing or name.lower() in _VOID:
            continue
        if closing:
            depth = max(depth - 1, 0)
            continue
        depth += 1
        if depth > deepest:
            deepest = depth
            if stop is not None and depth >= stop:
                break
    return deepest


def _as_text(text: str, why: str) -> str:
    """Return untrusted text as escaped, cut plain text with a note saying why it was not rendered."""
    return f'<p class="note">[{html.escape(why)}: shown as text]</p>{_pre(text)}'


def _valid_image(mime: str, payload: str) -> str | None:
    """Return ``payload`` as clean base64 when it decodes to an image of type ``mime``, else None."""
    if mime not in IMAGE_TYPES or not isinstance(payload, str) or len(payload) > MAX_IMAGE:
        return None
    compact = re.sub(r"\s+", "", payload)
    try:
        raw = base64.b64decode(compact, validate=True)
    except (binascii.Error, ValueError):
        return None
    magic = IMAGE_TYPES[mime]
    if magic is not None and not raw.startswith(magic):
        return None
    if magic is None and b"<svg" not in raw[:4096]:
        return None
    return compact


def _image_src(value: str, attachments: Mapping[str, Any]) -> str | None:
    """Return a safe ``data:`` URI for an image source, or None to drop it (remote, relative, scripts)."""
    if value.startswith("attachment:"):
        bundle = attachments.get(value[len("attachment:"):], {}) if isinstance(attachments, Mapping) else {}
        for mime in IMAGE_TYPES:
            payload = _valid_image(mime, bundle.get(mime)) if isinstance(bundle, Mapping) else None
            if payload:
                return f"data:{mime};base64,{payload}"
        return None
    match = _DATA_URI.match(value.strip())
    if match and _valid_image(match.group(1), match.group(2)):
        return value.strip()
    return None


def clean_html(fragment: str, attachments: Mapping[str, Any] | None = None) -> str:
    """Return ``fragment`` with everything but plain formatting, tables and inline images removed.

    Scripts, styles, frames and forms go with their content; event handlers and ``style`` attributes
    go; images survive only as valid ``data:image`` URIs (or the cell's own attachments); links keep
    their text but lose their target, so nothing points or loads outside the page.

    :param fragment: untrusted HTML.
    :param attachments: a markdown cell's attachments (``{name: {mime: base64}}``) for ``attachment:`` images.
    """
    fragment = str(fragment)
    if len(fragment) > MAX_HTML:
        return _as_text(fragment, f"HTML of {len(fragment):,} characters is too long to clean")
    if nesting(fragment, stop=MAX_DEPTH + 1) > MAX_DEPTH:
        return _as_text(fragment, f"HTML nested more than {MAX_DEPTH} deep is too deep to clean")
    attachments = attachments or {}

    def keep(tag: str, attribute: str, value: str) -> str | None:
        if attribute == "href":
            return None
        if tag == "img" and attribute == "src":
            return _image_src(value, attachments)
        return value

    return nh3.clean(fragment, tags=TAGS, clean_content_tags=CONTENT_TAGS, attributes=ATTRIBUTES,
                     allowed_classes={"table": {"labkit-report", "dataframe"}}, attribute_filter=keep,
                     url_schemes={"data", "attachment"}, link_rel=None, strip_comments=True)


def markdown_to_html(text: str, attachments: Mapping[str, Any] | None = None, budget: Budget | None = None) -> str:
    """Render untrusted markdown (with the raw HTML Jupyter allows in it) to clean HTML.

    :param text: the markdown source.
    :param attachments: the cell's attachments, for ``![...](attachment:name.png)`` images.
    :param budget: the page's markdown budget (None: only the per-cell limit applies).
    """
    text = str(text)
    if len(text) > MAX_MARKDOWN:
        return _as_text(text, f"markdown of {len(text):,} characters is too long to render")
    if budget is not None and not budget.take(len(text)):
        return _as_text(text, "this page already rendered as much markdown as one page may")
    try:
        import mistune
    except ImportError:  # mistune comes with Jupyter (nbconvert); plain text is the safe fallback
        return f"<pre>{html.escape(text)}</pre>"
    renderer = mistune.HTMLRenderer(escape=False, allow_harmful_protocols=True)  # nh3 decides what survives
    convert = mistune.create_markdown(renderer=renderer, plugins=["table", "strikethrough"])
    return clean_html(convert(text), attachments)


def _text(value: Any) -> str:
    return "".join(value) if isinstance(value, list) else str(value or "")


def _pre(text: str, kind: str = "") -> str:
    cls = f' class="{kind}"' if kind else ""
    cut = f"\n[... {len(text) - MAX_TEXT:,} more characters not shown]" if len(text) > MAX_TEXT else ""
    return f"<pre{cls}>{html.escape(_ANSI.sub('', text[:MAX_TEXT]) + cut)}</pre>"


def _svg(data: Mapping[str, Any]) -> str:
    """Return an SVG figure as a ``data:`` image of its allow-listed rebuild, else a note."""
    svg = clean_svg(_text(data["image/svg+xml"]))
    if svg is None:
        return '<p class="note">[invalid SVG image removed]</p>'
    return f'<img src="data:image/svg+xml;base64,{base64.b64encode(svg.encode()).decode()}" alt="figure">'


def render_output(output: Mapping[str, Any], budget: Budget | None = None) -> str:
    """Return one cell output as safe HTML: the richest type that can be shown safely, else a note.

    :param output: an nbformat output (stream, display_data, execute_result or error).
    :param budget: the page's markdown budget.
    """
    kind = output.get("output_type")
    if kind == "stream":
        name = output.get("name")
        return _pre(_text(output.get("text")), "stderr" if name == "stderr" else "stream")
    if kind == "error":
        trace = "\n".join(_text(line) for line in output.get("traceback") or [])
        return _pre(trace or f"{output.get('ename')}: {output.get('evalue')}", "error")
    data = output.get("data") or {}
    if not isinstance(data, Mapping):
        return '<p class="note">[unreadable output removed]</p>'
    if "text/html" in data:
        return f'<div class="html">{clean_html(_text(data["text/html"]))}</div>'
    for mime in IMAGE_TYPES:
        if mime == "image/svg+xml" and mime in data:
            return _svg(data)
        if mime in data:
            payload = _valid_image(mime, _text(data[mime]))
            if payload is None:
                return '<p class="note">[invalid image removed]</p>'
            return f'<img src="data:{mime};base64,{payload}" alt="figure">'
    if "text/markdown" in data:
        return f'<div class="markdown">{markdown_to_html(_text(data["text/markdown"]), budget=budget)}</div>'
    if "text/plain" in data:
        return _pre(_text(data["text/plain"]))
    if any(m in data for m in DROPPED):
        return '<p class="note">[JavaScript / widget output removed]</p>'
    return ""


def _outputs(cell: Mapping[str, Any], budget: Budget | None) -> str:
    """Return a code cell's outputs as safe HTML, at most ``MAX_OUTPUTS`` of them."""
    outputs = [o for o in cell.get("outputs") or [] if isinstance(o, Mapping)]
    shown = "".join(render_output(o, budget) for o in outputs[:MAX_OUTPUTS])
    if len(outputs) > MAX_OUTPUTS:
        shown += f'<p class="note">[{len(outputs) - MAX_OUTPUTS:,} more outputs not shown]</p>'
    return shown or '<p class="note">[no output: this cell was not run]</p>'


def render_cell(cell: Mapping[str, Any], *, answer: bool = False, budget: Budget | None = None) -> str:
    """Return one notebook cell as a safe HTML section: markdown rendered, code folded, outputs shown.

    A cell that cannot be shown (whatever the reason) becomes a note; it never stops the page.

    :param cell: an nbformat cell.
    :param answer: mark the cell as a pair's answer (highlighted).
    :param budget: the page's markdown budget (None: only the per-cell limits apply).
    """
    kind = cell.get("cell_type")
    try:
        source = _text(cell.get("source"))
        if kind == "markdown":
            classes = "cell markdown answer" if answer else "cell markdown"
            attachments = cell.get("attachments")
            attachments = attachments if isinstance(attachments, Mapping) else {}
            return f'<section class="{classes}">{markdown_to_html(source, attachments, budget)}</section>'
        if kind != "code":
            return f'<section class="cell raw">{_pre(source)}</section>'
        return (f'<section class="cell code"><details><summary>code</summary>{_pre(source)}</details>'
                f'<div class="outputs">{_outputs(cell, budget)}</div></section>')
    except Exception as err:  # noqa: BLE001 - a hostile cell may break a parser; it must not break the page
        note = f"[this cell could not be shown safely ({type(err).__name__})]"
        return f'<section class="cell"><p class="note">{html.escape(note)}</p></section>'


def page(title: str, body: str) -> str:
    """Return a complete HTML document around ``body`` (trusted: build it from sanitised parts only).

    The Content-Security-Policy allows inline images (``data:``) and this page's own style sheet, and
    nothing else: no script of any kind, no remote image, font, frame or form target.

    :param title: the page title (escaped here).
    :param body: the page body's HTML.
    """
    digest = base64.b64encode(hashlib.sha256(CSS.encode()).digest()).decode()
    policy = (f"default-src 'none'; img-src data:; style-src 'sha256-{digest}'; script-src 'none'; "
              "base-uri 'none'; form-action 'none'")
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">\n'
            f'<meta http-equiv="Content-Security-Policy" content="{policy}">\n'
            f'<meta name="referrer" content="no-referrer">\n'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">\n'
            f"<title>{html.escape(title)}</title>\n<style>{CSS}</style></head>\n<body>\n{body}\n</body></html>\n")
