"""Upload checks for evidence (photos and documents): pure functions over bytes, no store.

An upload is untrusted. Its type is sniffed from its first bytes (never from its
name or what the browser said); a name whose extension says something else is
refused. Sizes are capped, and the pixel count of an image is read from its
header without decoding it, so a small file declaring 50,000 × 50,000 pixels (a
decompression bomb) is refused before anything is allocated. PDFs are stored and
never rendered; one carrying JavaScript is flagged. Office documents are
recognised by their container (OOXML zip with ``[Content_Types].xml``, or OLE),
reading the zip's directory only, never inflating it.

From a photo's EXIF we read the time it was taken, where (GPS, WGS84 degrees)
and the direction the camera faced. ``strip_personal`` removes what is personal
(camera serial, owner, maker notes, GPS) from bytes that leave the store.

Raises (every function): ``InputError`` with a bilingual message.
"""
from __future__ import annotations

import datetime as dt
import io
import re
import warnings
import zipfile
from dataclasses import asdict, dataclass
from functools import cache

from PIL import Image, ImageOps

from gis.base import clock
from gis.base.errors import InputError

MAX_MB = 25                 # largest upload, megabytes
MAX_PIXELS = 60_000_000     # largest image, pixels (a 48 MP phone photo passes)
THUMB_PX = 320              # long side of a thumbnail
#: bytes a thumbnail may take: a gallery of 50 loads ≤ 300 KB (issue 17). A busy 320-px photo at quality 80
#: is ~20 KB, so the quality (then the size) steps down until it fits (bench/evidence.py)
THUMB_MAX_BYTES = 6000
THUMB_STEPS = ((1.0, 75), (1.0, 60), (0.8, 60), (0.8, 45), (0.625, 50), (0.5, 45), (0.4, 40))

PHOTO, DOCUMENT = "photo", "document"
IMAGE_TYPES = {"image/jpeg": "jpeg", "image/png": "png", "image/webp": "webp", "image/heic": "heic"}
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
PPTX = "application/vnd.openxmlformats-officedocument.presentationml.presentation"
DOC, XLS = "application/msword", "application/vnd.ms-excel"
PDF = "application/pdf"
#: what a file name's extension may say for each sniffed type
EXTENSIONS = {
    "image/jpeg": (".jpg", ".jpeg", ".jpe", ".jfif"), "image/png": (".png",), "image/webp": (".webp",),
    "image/heic": (".heic", ".heif", ".hif"), PDF: (".pdf",), DOCX: (".docx",), XLSX: (".xlsx",), PPTX: (".pptx",),
    DOC: (".doc", ".xls", ".ppt"), XLS: (".xls", ".doc", ".ppt"),
}
HEIF_BRANDS = {b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"hevm", b"hevs", b"mif1", b"msf1"}
_OLE = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"

# EXIF tags (CIPA DC-008)
_EXIF_IFD, _GPS_IFD = 0x8769, 0x8825
_DATETIME_ORIGINAL, _OFFSET_ORIGINAL, _DATETIME = 36867, 36881, 306
_GPS_LAT_REF, _GPS_LAT, _GPS_LON_REF, _GPS_LON, _GPS_DIR = 1, 2, 3, 4, 17
#: personal fields dropped from exported bytes: owner, serial numbers, maker notes, user comment, artist
PERSONAL_TAGS = (0x013B, 0x8298, 0xA430, 0xA431, 0xA435, 0x927C, 0x9286, 0xC62F)


@dataclass(frozen=True)
class MediaInfo:
    """What an upload is, as sniffed and read from its header."""

    kind: str                    # 'photo' | 'document'
    content_type: str
    size: int
    width: int | None = None
    height: int | None = None
    taken_at: str | None = None  # office-local ISO time from EXIF DateTimeOriginal
    lon: float | None = None     # WGS84 degrees (EXIF GPS)
    lat: float | None = None
    direction: float | None = None  # degrees from north the camera faced (GPSImgDirection)
    has_script: bool = False     # a PDF carrying JavaScript (stored, flagged, never rendered)

    def as_dict(self) -> dict:
        return asdict(self)


@cache
def _register_heif() -> bool:
    """HEIC/HEIF through pillow-heif, registered on first need: a heavy optional plugin."""
    try:
        import pillow_heif  # lazy: a native library only HEIC uploads need
    except ImportError:
        return False
    pillow_heif.register_heif_opener()
    return True


def sniff(data: bytes) -> str | None:
    """The content type the bytes really are, or None for a type we do not take."""
    head = data[:64]
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    if head[4:8] == b"ftyp" and (head[8:12] in HEIF_BRANDS or any(
            head[i:i + 4] in HEIF_BRANDS for i in range(16, min(len(head), int.from_bytes(head[:4], "big")), 4))):
        return "image/heic"
    if head.lstrip(b"\r\n\t ")[:5] == b"%PDF-":
        return PDF
    if head.startswith(_OLE):
        return DOC
    if head.startswith(b"PK\x03\x04"):
        return _ooxml_type(data)
    return None


def _ooxml_type(data: bytes) -> str | None:
    """DOCX/XLSX/PPTX from the zip's directory (names only: nothing is inflated)."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            names = set(z.namelist())
    except (zipfile.BadZipFile, OSError, ValueError):
        return None
    if "[Content_Types].xml" not in names:
        return None
    for prefix, ctype in (("word/", DOCX), ("xl/", XLSX), ("ppt/", PPTX)):
        if any(n.startswith(prefix) for n in names):
            return ctype
    return None


def _refuse(key: str, **params):
    raise InputError(key, **params)


def inspect(data: bytes, filename: str = "", *, max_mb: float = MAX_MB, max_pixels: int = MAX_PIXELS) -> MediaInfo:
    """Check an upload and read what it says about itself, without decoding an image.

    Raises:
        InputError: empty, over ``max_mb``, a type we do not take, a name whose extension
            says another type, an image over ``max_pixels`` or whose header cannot be read.
    """
    name = filename or "?"
    size = len(data)
    if size == 0:
        _refuse("evidence.empty", name=name)
    if size > max_mb * 1024 * 1024:
        _refuse("evidence.too_large", name=name, mb=f"{size / 1048576:.1f}", max=max_mb)
    ctype = sniff(data)
    if ctype is None:
        _refuse("evidence.unknown_type", name=name)
    ext = ("." + filename.rsplit(".", 1)[1].lower()) if "." in (filename or "") else ""
    if ext and ext not in EXTENSIONS[ctype]:
        _refuse("evidence.type_mismatch", name=name, ext=ext, real=ctype)
    if ctype == DOC and ext in (".xls",):
        ctype = XLS
    if ctype not in IMAGE_TYPES:
        return MediaInfo(kind=DOCUMENT, content_type=ctype, size=size,
                         has_script=ctype == PDF and pdf_has_script(data))
    with _open_header(data, name, max_pixels) as im:
        width, height = im.size
        exif = _exif_facts(im)
    return MediaInfo(kind=PHOTO, content_type=ctype, size=size, width=width, height=height, **exif)


class _Header:
    """An image opened for its header only (Pillow decodes nothing until asked), pixel cap checked."""

    def __init__(self, data: bytes, name: str, max_pixels: int):
        self.data, self.name, self.max_pixels = data, name, max_pixels
        self.im = None

    def __enter__(self) -> Image.Image:
        if sniff(self.data) == "image/heic" and not _register_heif():
            _refuse("evidence.no_heic", name=self.name)
        if self.data.startswith(b"\x89PNG\r\n\x1a\n") and self.data[12:16] == b"IHDR":
            # read straight from IHDR: refuse before even Pillow looks further
            w, h = int.from_bytes(self.data[16:20], "big"), int.from_bytes(self.data[20:24], "big")
            self._check(w, h)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error", Image.DecompressionBombWarning)
                self.im = Image.open(io.BytesIO(self.data))
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            _refuse("evidence.too_many_pixels", name=self.name, w="?", h="?", max=f"{self.max_pixels / 1e6:.0f}")
        except (OSError, ValueError, SyntaxError) as e:
            _refuse("evidence.bad_image", name=self.name, detail=str(e)[:200])
        self._check(*self.im.size)
        return self.im

    def _check(self, w: int, h: int) -> None:
        if w <= 0 or h <= 0 or w * h > self.max_pixels:
            _refuse("evidence.too_many_pixels", name=self.name, w=w, h=h, max=f"{self.max_pixels / 1e6:.0f}")

    def __exit__(self, *exc) -> None:
        if self.im is not None:
            self.im.close()


def _open_header(data: bytes, name: str, max_pixels: int) -> _Header:
    return _Header(data, name, max_pixels)


def _ratio(v) -> float:
    try:
        return float(v)
    except (TypeError, ValueError, ZeroDivisionError):
        return float("nan")


def _degrees(dms, ref) -> float | None:
    try:
        d, m, s = (_ratio(x) for x in dms)
    except (TypeError, ValueError):
        return None
    value = d + m / 60 + s / 3600
    if value != value:  # NaN: a zero denominator
        return None
    ref = ref.decode() if isinstance(ref, bytes) else str(ref or "")
    return round(-value if ref.strip().upper() in ("S", "W") else value, 7)


def _taken_at(stamp, offset) -> str | None:
    """EXIF ``YYYY:MM:DD HH:MM:SS`` (camera-local) as office-local ISO time. With ``OffsetTimeOriginal``
    the camera's zone is known; without it the camera is taken to be on the office's clock."""
    if not stamp:
        return None
    text = stamp.decode(errors="replace") if isinstance(stamp, bytes) else str(stamp)
    try:
        local = dt.datetime.strptime(text.strip().rstrip("\x00")[:19], "%Y:%m:%d %H:%M:%S")
    except ValueError:
        return None
    zone = clock.office_zone()
    off = str(offset or "").strip()
    if re.fullmatch(r"[+-]\d\d:\d\d", off):
        sign = -1 if off[0] == "-" else 1
        tz = dt.timezone(sign * dt.timedelta(hours=int(off[1:3]), minutes=int(off[4:6])))
        return local.replace(tzinfo=tz).astimezone(zone).isoformat(timespec="seconds")
    return local.replace(tzinfo=zone).isoformat(timespec="seconds")


def _exif_facts(im: Image.Image) -> dict:
    """taken_at, lon, lat, direction from an image's EXIF (None where absent or unreadable)."""
    out = {"taken_at": None, "lon": None, "lat": None, "direction": None}
    try:
        exif = im.getexif()
        sub = exif.get_ifd(_EXIF_IFD)
        gps = exif.get_ifd(_GPS_IFD)
    except Exception:  # noqa: BLE001 - a malformed EXIF block is no reason to refuse a photo
        return out
    out["taken_at"] = _taken_at(sub.get(_DATETIME_ORIGINAL) or exif.get(_DATETIME), sub.get(_OFFSET_ORIGINAL))
    if gps:
        lat, lon = _degrees(gps.get(_GPS_LAT), gps.get(_GPS_LAT_REF)), _degrees(gps.get(_GPS_LON), gps.get(_GPS_LON_REF))
        if lat is not None and lon is not None and -90 <= lat <= 90 and -180 <= lon <= 180 and (lat or lon):
            out["lat"], out["lon"] = lat, lon
        d = _ratio(gps.get(_GPS_DIR)) if gps.get(_GPS_DIR) is not None else None
        if d is not None and d == d:
            out["direction"] = round(d % 360, 2)
    return out


_JS = re.compile(rb"/(JavaScript|JS|OpenAction|AA|Launch)\b")


def pdf_has_script(data: bytes) -> bool:
    """Whether a PDF names JavaScript or an automatic action (``/JavaScript``, ``/JS``, ``/OpenAction``,
    ``/AA``, ``/Launch``): such a file is stored and flagged, never rendered."""
    return _JS.search(data) is not None


def thumbnail(data: bytes, px: int = THUMB_PX, *, max_pixels: int = MAX_PIXELS) -> bytes:
    """A JPEG of the image, long side at most ``px``, turned upright by its EXIF orientation, no EXIF kept.

    Raises:
        InputError: not an image we take, or over the pixel cap.
    """
    with _open_header(data, "?", max_pixels) as im:
        if im.format == "JPEG":
            im.draft("RGB", (px * 2, px * 2))  # decode at a fraction of the size: a 12 MP photo in ~30 ms
        try:
            im = ImageOps.exif_transpose(im)
            im.thumbnail((px, px))
            if im.mode not in ("RGB", "L"):
                im = _flatten(im)
            for scale, quality in THUMB_STEPS:  # the best that fits THUMB_MAX_BYTES (most photos: the first)
                small = im if scale == 1.0 else im.resize((max(1, round(im.width * scale)),
                                                           max(1, round(im.height * scale))), Image.Resampling.LANCZOS)
                out = io.BytesIO()
                small.save(out, "JPEG", quality=quality, optimize=True)
                if out.tell() <= THUMB_MAX_BYTES:
                    break
        except (OSError, ValueError, SyntaxError) as e:
            _refuse("evidence.bad_image", name="?", detail=str(e)[:200])
    return out.getvalue()


def _flatten(im: Image.Image) -> Image.Image:
    """RGB on white (a PNG's transparency would turn black in a JPEG)."""
    rgba = im.convert("RGBA")
    bg = Image.new("RGB", rgba.size, (255, 255, 255))
    bg.paste(rgba, mask=rgba.getchannel("A"))
    return bg


def strip_personal(data: bytes, *, max_pixels: int = MAX_PIXELS) -> bytes:
    """The photo for export: the same picture without personal EXIF (owner, serial numbers, maker
    notes, comments) and without GPS (the store keeps the location in its own columns); time taken and
    orientation stay. JPEG stays JPEG (re-encoded at high quality), others are saved in their format.
    Documents are returned as they are.

    Raises:
        InputError: an image over the pixel cap or unreadable.
    """
    ctype = sniff(data)
    if ctype not in IMAGE_TYPES:
        return data
    with _open_header(data, "?", max_pixels) as im:
        fmt = im.format
        exif = im.getexif()
        for tag in PERSONAL_TAGS:
            exif.pop(tag, None)
        sub = exif.get_ifd(_EXIF_IFD)
        for tag in PERSONAL_TAGS:
            sub.pop(tag, None)
        exif.pop(_GPS_IFD, None)
        if fmt == "JPEG":
            try:  # the same compressed picture, only its metadata segments rewritten: lossless, milliseconds
                return _jpeg_with_exif(data, exif.tobytes())
            except ValueError:  # a stream odd enough not to walk: decoded and saved again
                pass
        im.load()
        out = io.BytesIO()
        if fmt == "JPEG":
            im.save(out, "JPEG", quality=92, exif=exif.tobytes())
        elif fmt == "PNG":
            im.save(out, "PNG", exif=exif.tobytes())
        elif fmt == "WEBP":
            im.save(out, "WEBP", quality=92, exif=exif.tobytes())
        else:  # HEIC: exported as JPEG, which every office machine opens
            im.convert("RGB").save(out, "JPEG", quality=92, exif=exif.tobytes())
    return out.getvalue()


#: JPEG segments that never leave in an export: APP1 other than Exif (XMP: GPS, owner, history), APP3–APP15
#: (maker and editor data; APP13 holds IPTC bylines) and comments
_DROPPED_MARKERS = frozenset({0xFE, *range(0xE3, 0xF0)})


def _jpeg_with_exif(data: bytes, exif: bytes) -> bytes:
    """``data`` (a JPEG) with its Exif segment replaced by ``exif`` (``b"Exif\0\0"`` + TIFF) and the segments that
    may carry personal data dropped; everything from the first scan on is copied unchanged (no re-encoding).

    Raises:
        ValueError: not a JPEG stream this walk understands, or an Exif segment too long for one segment.
    """
    if data[:2] != b"\xff\xd8" or len(exif) > 0xFFFF - 2:
        raise ValueError("not a JPEG")
    out = bytearray(data[:2])
    i, n = 2, len(data)
    while i + 4 <= n:
        if data[i] != 0xFF:
            raise ValueError("no marker")
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker in (0xDA, 0xD9):  # start of scan (or end): the picture itself, as it is
            out += data[i:]
            return bytes(out)
        if 0xD0 <= marker <= 0xD7 or marker == 0x01:
            out += data[i:i + 2]
            i += 2
            continue
        length = int.from_bytes(data[i + 2:i + 4], "big")
        end = i + 2 + length
        if length < 2 or end > n:
            raise ValueError("bad segment length")
        payload = data[i + 4:end]
        if marker == 0xE1 and payload.startswith(b"Exif\0\0"):
            if exif:
                out += b"\xff\xe1" + (len(exif) + 2).to_bytes(2, "big") + exif
        elif marker != 0xE1 and marker not in _DROPPED_MARKERS:
            out += data[i:end]
        i = end
    raise ValueError("no scan")


def is_image(content_type: str) -> bool:
    return content_type in IMAGE_TYPES
