"""Folium elements and escaping that every map of the app shares.

User text shown in a map (tooltips, labels, legends) is data, never markup:
``escape_html`` for HTML and JS template literals, ``js_json`` for data put
inside a ``<script>``. ``RawMacroElement`` renders an element's parts once,
without branca compiling them as Jinja templates a second time.
"""
from __future__ import annotations

import html
import json
import re

import folium
import folium.map
from branca.element import Element, MacroElement
from folium.elements import ElementAddToElement


def escape_html(text) -> str:
    """User text → HTML that shows it literally, also inert inside a JS template literal.

    ``html.escape`` plus backtick, ``$``, backslash and braces as character
    references, so that ``${...}`` cannot run when folium puts the string
    between backticks, and ``{{ ... }}`` cannot run on the server when branca
    compiles folium's rendered output as a Jinja template a second time.
    """
    s = html.escape("" if text is None else str(text), quote=True)
    for a, b in (("`", "&#96;"), ("$", "&#36;"), ("\\", "&#92;"), ("{", "&#123;"), ("}", "&#125;")):
        s = s.replace(a, b)
    return s


_JSON_SAFE = (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"), ("'", "\\u0027"),
              ("\u2028", "\\u2028"), ("\u2029", "\\u2029"))


def js_json(obj) -> str:
    """JSON for embedding in a ``<script>``: no ``</script>``, ``<!--`` or quote can break out."""
    return safe_json_text(json.dumps(obj, ensure_ascii=False, separators=(",", ":"), allow_nan=False))


_JINJA_OPEN = re.compile(r"\{(?=[{%#])")


def safe_json_text(s: str) -> str:
    """The same escaping for an already-serialised JSON text.

    Those characters occur only inside JSON strings. So does a ``{`` followed
    by ``{``, ``%`` or ``#`` (a structural ``{`` is always followed by ``"``
    or ``}``): it becomes ``\\u007b``, so no Jinja delimiter survives.
    """
    for a, b in _JSON_SAFE:  # str.replace is C-fast on megabytes; translate() is not
        if a in s:
            s = s.replace(a, b)
    if "{{" in s or "{%" in s or "{#" in s:
        s = _JINJA_OPEN.sub(r"\\u007b", s)
    return s



class RawText(Element):
    """Text already rendered: put into the page as is."""

    def __init__(self, text: str):
        super().__init__()
        self._text = str(text)

    def render(self, **kwargs) -> str:
        return self._text


class RawMacroElement(MacroElement):
    """A MacroElement whose rendered parts are not compiled as Jinja templates again.

    branca's ``MacroElement.render`` wraps each rendered part in
    ``Element(text)``, which compiles the text as a Jinja template and renders
    it once more when the page is rendered: with a megabyte of GeoJSON that
    costs tens of milliseconds, and any ``{{ ... }}`` in the data would run as
    Python on the server (seen with folium 0.20 / branca 0.8: a feature name
    ``{{ lipsum.__globals__.os.getpid() }}`` came out as the server's pid).
    """

    def render(self, **kwargs):
        figure = self.get_root()
        module = self._template.module
        for part, target in (("header", figure.header), ("html", figure.html), ("script", figure.script)):
            macro = getattr(module, part, None)
            if macro is not None:
                target.add_child(RawText(macro(self, kwargs)), name=self.get_name())
        for element in self._children.values():
            element.render(**kwargs)


class RawAddTo(ElementAddToElement):
    """``child.addTo(parent);`` (what folium's Layer adds for a shown layer) without the second Jinja pass."""

    render = RawMacroElement.render


class RawFeatureGroup(folium.FeatureGroup):
    """folium's FeatureGroup rendered without branca's second Jinja pass (see :class:`RawMacroElement`): every
    run of the map page renders a dozen groups, and that pass compiled a template for each part of each
    (≈1 ms apiece, a third of a click's server time in a profile, issue 19). The output is the same."""

    def render(self, **kwargs):
        if self.show:
            self.add_child(RawAddTo(self.get_name(), self._parent.get_name()), name=self.get_name() + "_add")
        RawMacroElement.render(self, **kwargs)


class RawLayerControl(folium.LayerControl):
    """folium's LayerControl (the groups it switches collected as folium does) without the second Jinja pass."""

    def render(self, **kwargs):
        self.reset()
        for item in self._parent._children.values():
            if not isinstance(item, folium.map.Layer) or not item.control:
                continue
            if not item.overlay:
                self.base_layers[item.layer_name] = item.get_name()
            else:
                self.overlays[item.layer_name] = item.get_name()
        RawMacroElement.render(self, **kwargs)
