"""Uploaded files, handled as untrusted: staged in a private temporary folder,
sized, unzipped with limits, checked to be what their name says, and only then
read — through GDAL for Shapefile, GeoPackage, KML and DXF, in Python for
GeoJSON and CSV.

Why so careful (DESIGN.md section 5): GDAL opens a file by its content, not
its extension. A "parcels.geojson" that is really an OGR VRT (or a GDALG
pipeline) makes GDAL read any local file or fetch a URL; a SQLite file can
declare VirtualOGR tables that do the same; a zip can hold ``../`` paths or
expand a few kilobytes into gigabytes. Therefore:

- GDAL's VRT and GDALG drivers are skipped (``GDAL_SKIP``, set in
  ``gis/__init__.py`` before GDAL loads; :func:`ensure_gdal_hardened`
  deregisters them if pyogrio was imported first);
- every file's content must match its declared format (:func:`sniff`), and
  any text containing ``<OGRVRTDataSource`` is refused outright;
- GDAL is only ever given a path this module wrote, inside the private
  folder: never a ``/vsi`` path, a URL or a name with a driver prefix;
- sizes are bounded: the upload, each zip's member count and total
  uncompressed size (from the directory, then again while extracting, in case
  the directory lies).
"""
from __future__ import annotations

import ctypes
import errno
import os
import re
import shutil
import sqlite3
import stat
import tempfile
import time
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import pyogrio

from gis.base.errors import InputError

MB = 1024 * 1024
#: the largest file accepted (an upload, or one file given on the command line)
MAX_UPLOAD_BYTES = 300 * MB
#: the most a zip (or KMZ) may expand to, all members together
MAX_UNZIPPED_BYTES = 1024 * MB
#: the most members a zip may have
MAX_ZIP_MEMBERS = 2000
#: the most a zip member, or a whole zip, may expand (uncompressed : compressed); shapefiles and
#: GeoPackages compress 3–20:1, a DBF of wide, mostly blank text fields up to ~60:1
MAX_ZIP_RATIO = 100
#: output below which a ratio is not held against a zip (tiny members compress absurdly well)
ZIP_RATIO_FLOOR = 8 * MB
#: staged copies older than this are removed by the next upload (a killed import leaves its folder)
STALE_UPLOAD_S = 6 * 3600
_STAGE_PREFIX = "renewal-import-"

#: declared extension → format
FORMATS = {
    ".zip": "zip", ".kmz": "kmz",
    ".shp": "shp", ".dbf": "shp", ".shx": "shp", ".prj": "shp", ".cpg": "shp",
    ".gpkg": "gpkg",
    ".geojson": "geojson", ".json": "geojson",
    ".kml": "kml",
    ".dxf": "dxf",
    ".csv": "csv", ".txt": "csv",
}
SHAPEFILE_PARTS = (".shp", ".shx", ".dbf", ".prj", ".cpg")
# sidecars that come with shapefiles and are harmless to leave out
_IGNORED_SIDECARS = {".sbn", ".sbx", ".xml", ".qix", ".qmd", ".fix", ".aih", ".ain", ".atx", ".mxs", ".qml", ".lyr"}

_RISKY_DRIVERS = ("OGR_VRT", "GDALG")
_VRT_MARK = b"<ogrvrtdatasource"
_GPKG_APP_IDS = {0x47504B47, 0x47503130, 0x47503131}  # 'GPKG', 'GP10', 'GP11'
_DBF_VERSIONS = {0x02, 0x03, 0x04, 0x05, 0x30, 0x31, 0x32, 0x43, 0x63, 0x83, 0x8B, 0x8E, 0xCB, 0xE5, 0xF5, 0xFB}


@dataclass(frozen=True)
class LayerRef:
    """One readable layer of an upload: which file, which format, which GDAL layer."""

    name: str          # what the user chooses (a GeoPackage layer, a shapefile's name, …)
    format: str        # shp, gpkg, geojson, kml, dxf, csv
    path: Path         # inside the private folder
    layer: str | None = None  # GDAL layer name (GeoPackage, KML)


@dataclass
class Upload:
    """Files staged in a private temporary folder (0700). Use as a context manager, or call ``close``."""

    folder: Path
    layers: list[LayerRef] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)
    source_name: str = ""

    def __enter__(self) -> "Upload":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)

    def layer_names(self) -> list[str]:
        return [r.name for r in self.layers]

    def layer(self, name: str | None = None) -> LayerRef:
        """The layer called ``name``; without a name, the only one, or one called ``parcels``.

        Raises:
            InputError: no such layer, or several and none chosen.
        """
        if name:
            for r in self.layers:
                if r.name == name:
                    return r
            raise InputError("import.no_such_layer", layer=name, known="、".join(self.layer_names()))
        if len(self.layers) == 1:
            return self.layers[0]
        for r in self.layers:
            if r.name == "parcels":
                return r
        raise InputError("import.choose_layer", known="、".join(self.layer_names()))

    def inside(self, path: Path) -> Path:
        """``path`` if it lies inside the private folder and is a plain path GDAL can be given.

        Raises:
            InputError: anything else (a /vsi path, a URL, a driver prefix, a path outside).
        """
        text = str(path)
        if text.startswith("/vsi") or "://" in text or re.match(r"^[A-Za-z][A-Za-z0-9_ ]+:", text):
            raise InputError("import.bad_path")
        resolved = Path(path).resolve()
        if not resolved.is_relative_to(self.folder.resolve()):
            raise InputError("import.bad_path")
        return resolved


# ------------------------------------------------------------------ GDAL
def _libgdal_paths() -> list[str]:
    try:
        with open("/proc/self/maps", encoding="utf-8", errors="replace") as f:
            return sorted({line.split()[-1] for line in f if "libgdal" in line and line.split()[-1].startswith("/")})
    except OSError:
        return []


def ensure_gdal_hardened() -> None:
    """Make sure GDAL's VRT and GDALG drivers cannot open anything in this process.

    ``GDAL_SKIP`` (set in ``gis/__init__``) only works if it was in the
    environment when GDAL registered its drivers; if pyogrio was imported
    earlier, deregister them through the GDAL library pyogrio loaded.

    Raises:
        InputError: they are still registered (then GDAL is not used at all).
    """
    present = [d for d in _RISKY_DRIVERS if d in pyogrio.list_drivers()]
    if not present:
        return
    for lib_path in _libgdal_paths():
        try:
            lib = ctypes.CDLL(lib_path)
            lib.GDALGetDriverByName.restype = ctypes.c_void_p
            lib.GDALGetDriverByName.argtypes = [ctypes.c_char_p]
            lib.GDALDeregisterDriver.argtypes = [ctypes.c_void_p]
            for name in present:
                handle = lib.GDALGetDriverByName(name.encode())
                if handle:
                    lib.GDALDeregisterDriver(handle)
        except (OSError, AttributeError):
            continue
    if any(d in pyogrio.list_drivers() for d in _RISKY_DRIVERS):
        raise InputError("import.unsafe_gdal")


# ------------------------------------------------------------------ staging
def _ext(name: str) -> str:
    return PurePosixPath(name.replace("\\", "/")).suffix.lower()


def _stem(name: str) -> str:
    return PurePosixPath(name.replace("\\", "/")).stem


def new_upload(source_name: str = "") -> Upload:
    """An empty upload with its own private folder (mode 0700, under the system temp dir).

    The folder's name carries the process id and the time (``renewal-import-<pid>-<epoch>-…``), so that
    the folders of a killed import can be told from live ones and removed (:func:`remove_stale_uploads`,
    run here first).
    """
    remove_stale_uploads()
    prefix = f"{_STAGE_PREFIX}{os.getpid()}-{int(time.time())}-"
    try:
        return Upload(folder=Path(tempfile.mkdtemp(prefix=prefix)), source_name=source_name)
    except OSError as e:
        raise _disk_error(e) from None


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def remove_stale_uploads(max_age_s: float = STALE_UPLOAD_S, now: float | None = None) -> list[Path]:
    """Remove staged copies left behind in the temp folder: those of a process that is gone, and any
    (but this process's own) older than ``max_age_s``. Only folders of this user. Returns what was removed."""
    now = time.time() if now is None else now
    removed = []
    try:
        entries = list(os.scandir(tempfile.gettempdir()))
    except OSError:
        return removed
    for entry in entries:
        if not entry.name.startswith(_STAGE_PREFIX):
            continue
        try:
            st = entry.stat(follow_symlinks=False)
        except OSError:
            continue
        if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.getuid():
            continue
        m = re.match(re.escape(_STAGE_PREFIX) + r"(\d+)-(\d+)-", entry.name)
        pid, made = (int(m.group(1)), float(m.group(2))) if m else (None, st.st_mtime)
        dead = pid is not None and pid != os.getpid() and not _pid_alive(pid)
        old = now - made > max_age_s and pid != os.getpid()
        if dead or old:
            shutil.rmtree(entry.path, ignore_errors=True)
            removed.append(Path(entry.path))
    return removed


def _disk_error(e: OSError) -> Exception:
    """A full disk (or quota) said as such; any other OSError unchanged."""
    if e.errno in (errno.ENOSPC, errno.EDQUOT):
        return InputError("import.disk_full")
    return e


def stage_files(files: list[tuple[str, bytes | Path]], *, max_bytes: int = MAX_UPLOAD_BYTES,
                max_unzipped: int = MAX_UNZIPPED_BYTES, max_members: int = MAX_ZIP_MEMBERS) -> Upload:
    """Stage uploaded files — ``(original name, bytes or a local path)`` pairs — and find their layers.

    One upload is one dataset: a zip (of shapefiles or anything else below), a
    loose shapefile set (.shp with .dbf, .shx, .prj, .cpg), a GeoPackage,
    GeoJSON, KML/KMZ, DXF or CSV.

    Raises:
        InputError: too large, unsupported, a bad zip, content that does not
            match its name, a disguised VRT — with the reason.
    """
    if not files:
        raise InputError("import.no_file")
    up = new_upload(source_name=", ".join(n for n, _ in files))
    try:
        staged: list[tuple[str, Path]] = []
        for i, (name, data) in enumerate(files):
            name = str(name).replace("\\", "/").split("/")[-1] or f"file{i}"
            ext = _ext(name)
            if ext not in FORMATS:
                raise InputError("import.unsupported", name=name, known=_known())
            size = len(data) if isinstance(data, (bytes, bytearray)) else Path(data).stat().st_size
            if size > max_bytes:
                raise InputError("import.too_large", name=name, mb=max_bytes // MB)
            target = up.folder / f"u{i}{ext}"
            try:
                if isinstance(data, (bytes, bytearray)):
                    target.write_bytes(data)
                else:
                    _copy_limited(Path(data), target, max_bytes, name)
            except OSError as e:
                raise _disk_error(e) from None
            if FORMATS[ext] in ("zip", "kmz"):
                members = _extract_zip(target, up.folder / f"z{i}", max_unzipped, max_members, name, up.ignored)
                target.unlink()
                if FORMATS[ext] == "kmz":
                    kml = [m for m in members if _ext(m[0]) == ".kml"]
                    if not kml:
                        raise InputError("import.kmz_no_kml", name=name)
                    doc = next((m for m in kml if m[0].lower().endswith("doc.kml")), kml[0])
                    staged.append((_stem(name) + ".kml", doc[1]))
                else:
                    staged.extend(members)
            else:
                staged.append((name, target))
        up.layers = _find_layers(up, staged)
        if not up.layers:
            raise InputError("import.nothing_readable", known=_known())
        return up
    except BaseException:
        up.close()
        raise


def stage_path(path: Path | str, **limits) -> Upload:
    """Stage a local file for import; a ``.shp`` brings the parts of its set that sit beside it.

    Raises:
        InputError: missing file, or as :func:`stage_files`.
    """
    path = Path(path)
    if str(path).startswith("/vsi") or "://" in str(path) or not path.is_file():
        raise InputError("import.no_such_file", path=str(path))
    files: list[tuple[str, Path]] = [(path.name, path)]
    if _ext(path.name) in SHAPEFILE_PARTS:
        files = []
        for sibling in sorted(path.parent.iterdir()):
            if sibling.stem == path.stem and sibling.suffix.lower() in SHAPEFILE_PARTS and sibling.is_file():
                files.append((sibling.name, sibling))
    return stage_files(files, **limits)


def _known() -> str:
    return "zip(Shapefile)、shp/dbf/shx/prj/cpg、gpkg、geojson、kml、kmz、dxf、csv"


def _copy_limited(src: Path, dst: Path, limit: int, name: str) -> None:
    written = 0
    with open(src, "rb") as fin, open(dst, "xb") as fout:
        while chunk := fin.read(MB):
            written += len(chunk)
            if written > limit:
                raise InputError("import.too_large", name=name, mb=limit // MB)
            fout.write(chunk)


# ------------------------------------------------------------------ zip
def _member_name(info: zipfile.ZipInfo) -> str:
    """The member's name, decoded: zips made on Chinese Windows name files in GBK without saying so."""
    name = info.filename
    if not info.flag_bits & 0x800:
        try:
            raw = name.encode("cp437")
        except UnicodeEncodeError:
            return name
        for enc in ("utf-8", "gb18030"):
            try:
                return raw.decode(enc)
            except UnicodeDecodeError:
                continue
    return name


def _check_member_name(name: str, zip_name: str) -> None:
    n = name.replace("\\", "/")
    parts = PurePosixPath(n).parts
    if (not n or "\x00" in n or n.startswith("/") or re.match(r"^[A-Za-z]:", n) or ".." in parts):
        raise InputError("import.zip_bad_member", name=zip_name, member=name)


def _extract_zip(path: Path, dest: Path, max_unzipped: int, max_members: int, zip_name: str,
                 ignored: list[str]) -> list[tuple[str, Path]]:
    """Extract the readable members of a zip into ``dest`` under generated names.

    Limits are checked on the directory first, then on the bytes actually
    produced (a forged directory cannot get past them).
    """
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, ValueError):
        raise InputError("import.bad_zip", name=zip_name) from None
    with zf:
        infos = zf.infolist()
        if len(infos) > max_members:
            raise InputError("import.zip_members", name=zip_name, n=len(infos), max=max_members)
        declared = sum(max(i.file_size, 0) for i in infos)
        if declared > max_unzipped:
            raise InputError("import.zip_bomb", name=zip_name, mb=max_unzipped // MB)
        archive = max(path.stat().st_size, 1)
        if _over_ratio(declared, archive) or any(_over_ratio(i.file_size, i.compress_size) for i in infos):
            raise InputError("import.zip_ratio", name=zip_name, ratio=MAX_ZIP_RATIO)
        dest.mkdir(mode=0o700)
        out: list[tuple[str, Path]] = []
        total = 0
        for k, info in enumerate(infos):
            name = _member_name(info)
            _check_member_name(name, zip_name)
            mode = (info.external_attr >> 16) & 0o170000
            if mode == stat.S_IFLNK:
                raise InputError("import.zip_bad_member", name=zip_name, member=name)
            if info.is_dir():
                continue
            if info.flag_bits & 0x1:
                raise InputError("import.zip_encrypted", name=zip_name)
            ext = _ext(name)
            if ext not in FORMATS or FORMATS[ext] in ("zip", "kmz"):  # no nested archives
                if ext not in _IGNORED_SIDECARS and not PurePosixPath(name).name.startswith("."):
                    ignored.append(name)
                continue
            target = dest / f"m{k}{ext}"
            written = 0
            try:
                with zf.open(info) as src, open(target, "xb") as fout:
                    while chunk := src.read(MB):
                        written += len(chunk)
                        total += len(chunk)
                        if written > info.file_size or total > max_unzipped:
                            raise InputError("import.zip_bomb", name=zip_name, mb=max_unzipped // MB)
                        # again on the bytes produced, before they are written: the directory may lie
                        if _over_ratio(written, info.compress_size) or _over_ratio(total, archive):
                            raise InputError("import.zip_ratio", name=zip_name, ratio=MAX_ZIP_RATIO)
                        fout.write(chunk)
            except InputError:
                target.unlink(missing_ok=True)
                raise
            except OSError as e:
                if _disk_error(e) is not e:
                    raise InputError("import.disk_full") from None
                raise InputError("import.bad_zip", name=zip_name) from None
            except (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, EOFError, ValueError,
                    NotImplementedError):
                # a CRC mismatch (e.g. a directory that understates a member's size), a corrupt stream
                raise InputError("import.bad_zip", name=zip_name) from None
            out.append((name, target))
        return out


def _over_ratio(expanded: int, compressed: int) -> bool:
    """Whether ``expanded`` bytes from ``compressed`` is more than a zip bomb's bound allows."""
    return expanded > ZIP_RATIO_FLOOR and expanded > MAX_ZIP_RATIO * max(compressed, 1)


# ------------------------------------------------------------------ finding layers
def _find_layers(up: Upload, staged: list[tuple[str, Path]]) -> list[LayerRef]:
    layers: list[LayerRef] = []
    sets: dict[str, dict[str, Path]] = {}
    labels: dict[str, str] = {}
    for name, path in staged:
        fmt = FORMATS[_ext(name)]
        if fmt == "shp":
            key = name.replace("\\", "/").rsplit(".", 1)[0].lower()
            sets.setdefault(key, {})[_ext(name)] = path
            labels.setdefault(key, _stem(name))
            continue
        sniff(path, fmt, name)
        label = _stem(name)
        if fmt == "gpkg":
            for lyr in gpkg_layers(path):
                layers.append(LayerRef(name=lyr, format="gpkg", path=path, layer=lyr))
        elif fmt == "kml":
            ensure_gdal_hardened()
            try:
                names = [str(n) for n, _ in pyogrio.list_layers(up.inside(path))]
            except Exception as e:  # pyogrio's DataSourceError and friends: GDAL could not read it
                raise InputError("import.unreadable", name=name, detail=str(e)[:200] or "KML") from None
            for lyr in names:
                layers.append(LayerRef(name=lyr if len(names) > 1 else label, format="kml", path=path, layer=lyr))
        else:
            layers.append(LayerRef(name=label, format=fmt, path=path))
    for key, parts in sets.items():
        label = labels[key]
        if ".shp" not in parts or ".dbf" not in parts:
            missing = "、".join(e for e in (".shp", ".dbf") if e not in parts)
            raise InputError("import.shp_incomplete", name=label, missing=missing)
        folder = parts[".shp"].parent
        stem = f"s{len(layers)}_{abs(hash(key)) % 10**8}"
        for ext, p in parts.items():
            sniff(p, "shp", label + ext)
            p.rename(folder / f"{stem}{ext}")
        layers.append(LayerRef(name=label, format="shp", path=folder / f"{stem}.shp"))
    names = [r.name for r in layers]
    if len(set(names)) != len(names):  # two shapefiles of one name in different folders of a zip
        layers = [LayerRef(name=f"{r.name} ({i + 1})" if names.count(r.name) > 1 else r.name, format=r.format,
                           path=r.path, layer=r.layer) for i, r in enumerate(layers)]
    return layers


# ------------------------------------------------------------------ content checks
def _head(path: Path, n: int = 65536) -> bytes:
    with open(path, "rb") as f:
        return f.read(n)


def _marks_in(path: Path, marks: tuple[bytes, ...]) -> set[bytes]:
    """Which of ``marks`` (lower-case) occur anywhere in the file, case-insensitively; read in 1 MB
    chunks (a mark split across two chunks is found too), never the whole file at once."""
    found: set[bytes] = set()
    keep = max(len(m) for m in marks) - 1
    tail = b""
    with open(path, "rb") as f:
        while chunk := f.read(MB):
            block = tail + chunk.lower()
            found.update(m for m in marks if m in block)
            if len(found) == len(marks):
                break
            tail = block[-keep:] if keep else b""
    return found


def _contains_vrt(path: Path) -> bool:
    """Whether the file holds an OGR VRT root element anywhere (case-insensitive)."""
    return bool(_marks_in(path, (_VRT_MARK,)))


def _strip_text_start(head: bytes) -> bytes:
    for bom in (b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff"):
        if head.startswith(bom):
            head = head[len(bom):]
    return head.lstrip()


def sniff(path: Path, fmt: str, name: str) -> None:
    """Check that a staged file's content is the format its name declares.

    Raises:
        InputError: it is not (``import.vrt_rejected`` for a disguised OGR VRT).
    """
    size = path.stat().st_size
    head = _head(path)
    text_like = fmt in ("geojson", "kml", "dxf", "csv") or _ext(name) in (".prj", ".cpg")
    if text_like and _contains_vrt(path):
        raise InputError("import.vrt_rejected", name=name)
    start = _strip_text_start(head)
    ok = True
    if fmt == "shp":
        ext = _ext(name)
        if ext in (".shp", ".shx"):
            ok = size >= 100 and head[:4] == b"\x00\x00\x27\x0a"
        elif ext == ".dbf":
            ok = size >= 32 and head[0] in _DBF_VERSIONS
        elif ext in (".prj", ".cpg"):
            ok = size <= 65536 and not start.startswith(b"<") and b"\x00" not in head
    elif fmt == "gpkg":
        ok = head.startswith(b"SQLite format 3\x00")
    elif fmt == "geojson":
        ok = start.startswith(b"{")
    elif fmt == "kml":
        ok = start.startswith(b"<") and b"<kml" in head.lower()
        if ok:  # the whole file, streamed: a DOCTYPE or a NetworkLink may sit past any first block
            marks = _marks_in(path, (b"<!doctype", b"<!entity", b"<networklink"))
            if b"<!doctype" in marks or b"<!entity" in marks:
                raise InputError("import.kml_doctype", name=name)
            if b"<networklink" in marks:
                raise InputError("import.kml_network", name=name)
    elif fmt == "dxf":
        ok = _looks_like_dxf(start)
    elif fmt == "csv":
        ok = b"\x00" not in head and not start.startswith((b"<", b"{"))
    if not ok:
        raise InputError("import.content_mismatch", name=name, format=fmt)
    if fmt == "gpkg":
        _check_gpkg(path, name)


def _looks_like_dxf(start: bytes) -> bool:
    lines = [ln.strip() for ln in start[:4096].splitlines()]
    i = 0
    while i + 1 < len(lines) and lines[i] == b"999":  # comment group
        i += 2
    return len(lines) > i + 1 and lines[i] == b"0" and lines[i + 1].upper() == b"SECTION"


def _check_gpkg(path: Path, name: str) -> None:
    """A GeoPackage: right application id, the gpkg_contents table, no virtual tables but R-trees."""
    uri = "file:" + str(path) + "?mode=ro&immutable=1"
    try:
        con = sqlite3.connect(uri, uri=True)
    except sqlite3.Error:
        raise InputError("import.content_mismatch", name=name, format="gpkg") from None
    try:
        app_id = con.execute("PRAGMA application_id").fetchone()[0]
        rows = con.execute("SELECT type, name, sql FROM sqlite_master").fetchall()
    except sqlite3.Error:
        raise InputError("import.content_mismatch", name=name, format="gpkg") from None
    finally:
        con.close()
    tables = {r[1] for r in rows if r[0] == "table"}
    if app_id not in _GPKG_APP_IDS or "gpkg_contents" not in tables:
        raise InputError("import.content_mismatch", name=name, format="gpkg")
    for kind, _name, sql in rows:
        if "VIRTUALOGR" in (sql or "").upper():
            raise InputError("import.gpkg_virtual", name=name)
        if kind == "table" and _virtual_module(sql) not in (None, "rtree"):
            raise InputError("import.gpkg_virtual", name=name)


_SQL_TOKEN = re.compile(r"""\s+|--[^\n]*(?:\n|$)|/\*.*?(?:\*/|$)|"(?:[^"]|"")*"|`(?:[^`]|``)*`|\[[^\]]*\]"""
                        r"""|'(?:[^']|'')*'|\w+|.""", re.S)


def _sql_words(sql: str) -> list[str]:
    """The tokens of an SQL statement, comments and blanks dropped (quoted names kept whole)."""
    return [t for t in _SQL_TOKEN.findall(sql or "") if not t.isspace() and not t.startswith(("--", "/*"))]


def _virtual_module(sql: str | None) -> str | None:
    """The module of a ``CREATE VIRTUAL TABLE`` statement, lower-case (``rtree``, ``fts4``, …); None for a
    statement that creates no virtual table; ``"?"`` for one that cannot be parsed (refused too).

    Parsed as SQLite does: CREATE VIRTUAL TABLE [IF NOT EXISTS] [schema.]name USING module[(args)], so a
    module's arguments (``fts4(a, "USING rtree")``) or a comment cannot pass for the module.
    """
    words = _sql_words(sql or "")
    upper = [w.upper() for w in words]
    if upper[:3] != ["CREATE", "VIRTUAL", "TABLE"]:
        return None
    i = 3
    if upper[i:i + 3] == ["IF", "NOT", "EXISTS"]:
        i += 3
    i += 1  # the name
    if i < len(words) and words[i] == ".":
        i += 2  # schema.name
    if i + 1 < len(words) and upper[i] == "USING":
        module = words[i + 1].strip('"`[]').lower()
        return module if re.fullmatch(r"\w+", module) else "?"
    return "?"


def gpkg_layers(path: Path) -> list[str]:
    """Spatial layers of a GeoPackage (features tables), in the order they were written."""
    uri = "file:" + str(path) + "?mode=ro&immutable=1"
    con = sqlite3.connect(uri, uri=True)
    try:
        rows = con.execute(
            "SELECT c.table_name FROM gpkg_contents c JOIN gpkg_geometry_columns g ON g.table_name = c.table_name"
            " WHERE c.data_type = 'features' ORDER BY c.rowid"
        ).fetchall()
    except sqlite3.Error:
        raise InputError("import.content_mismatch", name=path.name, format="gpkg") from None
    finally:
        con.close()
    return [r[0] for r in rows]
