"""The layer catalogue (``layers/catalog.toml``): which layers the map shows,
in which switchable group, drawn how, with which tooltip fields."""
from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from gis.base.errors import InputError
from gis.base.i18n import label
from gis.model.pipelines import default_layers_dir


@dataclass(frozen=True)
class Group:
    key: str
    label_zh: str
    label_en: str

    def label(self, lang: str = "zh") -> str:
        return label(self, lang)


@dataclass(frozen=True)
class LayerSpec:
    id: str
    label_zh: str
    label_en: str
    group: str
    source: str
    kinds: tuple[str, ...] = ()
    style: dict = field(default_factory=dict)
    tooltip: tuple[str, ...] = ()
    label_field: str | None = None
    #: ``geojson`` (the layer is embedded in the page) or ``tiles`` (a vector tile
    #: pyramid drawn on canvas, for layers of 100,000+ features: gis/vectortiles.py)
    render: str = "geojson"
    #: field whose value picks the fill colour from ``classes`` (value → {color, label_en})
    class_field: str | None = None
    classes: dict = field(default_factory=dict)

    def label(self, lang: str = "zh") -> str:
        return label(self, lang)

    @property
    def is_parcels(self) -> bool:
        return self.source == "parcels"

    @property
    def is_raster(self) -> bool:
        return self.source == "raster"

    @property
    def is_tiles(self) -> bool:
        return self.render == "tiles"


@dataclass(frozen=True)
class LayerCatalog:
    groups: dict[str, Group]
    layers: tuple[LayerSpec, ...]

    def in_group(self, group: str) -> list[LayerSpec]:
        return [lyr for lyr in self.layers if lyr.group == group]

    def drawn_kinds(self, hidden=()) -> set[str]:
        """The parcel kinds the map draws while the groups ``hidden`` are switched off."""
        return {k for lyr in self.layers if lyr.is_parcels and lyr.group not in hidden for k in lyr.kinds}

    def kind_aliases(self) -> dict[str, str]:
        """Map names that stand for one kind of parcel: a parcel layer's label, and a group's label
        when the group's parcel layers all show that one kind (``重点片区和地标`` → ``landmark``),
        in both languages. Labels of groups mixing kinds (parks and low-efficiency land) are left out."""
        out: dict[str, str] = {}
        for key, group in self.groups.items():
            kinds = {k for lyr in self.in_group(key) if lyr.is_parcels for k in lyr.kinds}
            if len(kinds) == 1:
                kind = next(iter(kinds))
                out.update({group.label_zh: kind, group.label_en: kind})
        for lyr in self.layers:
            if lyr.is_parcels and len(lyr.kinds) == 1:
                out.update({lyr.label_zh: lyr.kinds[0], lyr.label_en: lyr.kinds[0]})
        return out

    def get(self, layer_id: str) -> LayerSpec:
        for lyr in self.layers:
            if lyr.id == layer_id:
                return lyr
        raise InputError("error.no_layer", layer=layer_id)


def load_layer_catalog(path: Path | str | None = None) -> LayerCatalog:
    """Read ``catalog.toml`` (default: the checkout's ``layers/``).

    Raises:
        InputError: missing file, bad TOML, unknown group or duplicate id.
    """
    path = Path(path) if path else default_layers_dir() / "catalog.toml"
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
        groups = {k: Group(key=k, **v) for k, v in data["groups"].items()}
        layers = tuple(
            LayerSpec(**{**d, "kinds": tuple(d.get("kinds", ())), "tooltip": tuple(d.get("tooltip", ()))})
            for d in data["layers"]
        )
    except (OSError, tomllib.TOMLDecodeError, KeyError, TypeError) as e:
        raise InputError("error.bad_catalog", path=str(path), detail=str(e)) from e
    seen = set()
    for lyr in layers:
        if lyr.group not in groups:
            raise InputError("error.bad_catalog", path=str(path), detail=f"layer {lyr.id}: no group {lyr.group}")
        if lyr.render not in ("geojson", "tiles"):
            raise InputError("error.bad_catalog", path=str(path), detail=f"layer {lyr.id}: render {lyr.render}")
        if lyr.id in seen:
            raise InputError("error.bad_catalog", path=str(path), detail=f"duplicate layer {lyr.id}")
        seen.add(lyr.id)
    return LayerCatalog(groups=groups, layers=layers)
