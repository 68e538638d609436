"""Untrusted SVG figures (``image/svg+xml`` outputs) rebuilt from an allow-list, for the teacher's export.

The SVG is parsed with defusedxml (no entity expansion, no external DTD or entity fetched) and rebuilt
element by element: only drawing elements (paths, shapes, text, groups, gradients, clip paths) and
their presentation attributes survive. Scripts, ``foreignObject``, animation, event handlers and any
reference that is not a local ``#id`` are dropped. The export then shows the result as
``<img src="data:image/svg+xml;base64,...">``: an SVG loaded as an image can neither run script nor
fetch anything, and the page's Content-Security-Policy allows only ``data:`` images.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

__all__ = ["clean_svg", "MAX_SVG", "MAX_ELEMENTS"]

MAX_SVG = 5_000_000
"""The largest SVG shown, in characters (a matplotlib figure is 10-200 kB)."""
MAX_ELEMENTS = 50_000
MAX_DEPTH = 64
SVG = "http://www.w3.org/2000/svg"
XLINK = "http://www.w3.org/1999/xlink"
XML = "http://www.w3.org/XML/1998/namespace"
ELEMENTS = {"svg", "g", "defs", "symbol", "use", "path", "rect", "circle", "ellipse", "line", "polyline", "polygon",
            "text", "tspan", "title", "desc", "clipPath", "mask", "linearGradient", "radialGradient", "stop",
            "pattern", "marker", "style"}
ATTRIBUTES = {"id", "class", "x", "y", "x1", "y1", "x2", "y2", "cx", "cy", "r", "rx", "ry", "fx", "fy", "width",
              "height", "d", "points", "transform", "viewBox", "preserveAspectRatio", "version", "fill", "fill-opacity",
              "fill-rule", "stroke", "stroke-width", "stroke-linecap", "stroke-linejoin", "stroke-dasharray",
              "stroke-dashoffset", "stroke-opacity", "stroke-miterlimit", "opacity", "clip-path", "clip-rule", "mask",
              "font-family", "font-size", "font-weight", "font-style", "text-anchor", "dominant-baseline", "dx", "dy",
              "letter-spacing", "style", "type", "offset", "stop-color", "stop-opacity", "gradientUnits",
              "gradientTransform", "patternUnits", "patternTransform", "clipPathUnits", "markerWidth", "markerHeight",
              "refX", "refY", "orient", "marker-start", "marker-mid", "marker-end", "visibility", "display",
              "href", f"{{{XLINK}}}href", f"{{{XML}}}space"}
_REMOTE = re.compile(r"url\s*\(\s*(?!['\"]?#)|@import|javascript:|expression\s*\(|\\|<", re.IGNORECASE)
_LOCAL = re.compile(r"^#[A-Za-z_][\w.:-]*$")


def _local(tag: str) -> str | None:
    """Return the SVG element name of ``tag`` (``{svg-ns}path`` -> ``path``), None for other namespaces."""
    if tag.startswith(f"{{{SVG}}}"):
        return tag[len(SVG) + 2:]
    return None


def _attributes(element: ET.Element) -> dict[str, str]:
    """Return the allowed attributes of ``element`` whose values reference nothing outside the figure."""
    kept = {}
    for name, value in element.attrib.items():
        if name not in ATTRIBUTES or _REMOTE.search(value):
            continue
        if name.endswith("href") and not _LOCAL.match(value.strip()):
            continue
        kept[name] = value
    return kept


def _copy(source: ET.Element, target: ET.Element, count: list[int]) -> None:
    """Copy the allowed children of ``source`` under ``target``, breadth-first (no recursion)."""
    queue = [(source, target, 0)]
    while queue:
        old, new, depth = queue.pop()
        for child in old:
            name = _local(child.tag) if isinstance(child.tag, str) else None
            count[0] += 1
            if name not in ELEMENTS or depth >= MAX_DEPTH or count[0] > MAX_ELEMENTS:
                continue   # with everything inside it
            text = child.text
            if name == "style" and text and _REMOTE.search(text):
                continue
            copy = ET.SubElement(new, f"{{{SVG}}}{name}", _attributes(child))
            copy.text, copy.tail = text, child.tail
            queue.append((child, copy, depth + 1))


def clean_svg(text: str) -> str | None:
    """Return ``text`` rebuilt as an SVG of drawing elements only, or None when it is not a readable SVG.

    :param text: an untrusted ``image/svg+xml`` output.
    """
    from defusedxml import ElementTree as SafeET
    from defusedxml.common import DefusedXmlException

    if not isinstance(text, str) or len(text) > MAX_SVG or "<svg" not in text[:4096]:
        return None
    try:
        root = SafeET.fromstring(text.encode("utf-8", "replace"))
    except (ET.ParseError, DefusedXmlException, ValueError, RecursionError):
        return None
    if _local(root.tag) != "svg":
        return None
    clean = ET.Element(f"{{{SVG}}}svg", _attributes(root))
    _copy(root, clean, [0])
    ET.register_namespace("", SVG)
    ET.register_namespace("xlink", XLINK)
    return ET.tostring(clean, encoding="unicode")
