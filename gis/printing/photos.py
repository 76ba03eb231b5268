"""Site photos on printed pages: the latest one on a parcel's briefing page, a page of them in an atlas.

    site_photos(store, codes)              {code: [Attachment, ...]} newest first (one query per kind)
    draw_photo(page, rect, data, lines)    a photo fitted into a frame, with caption lines under it
    compose_photo_page(store, code, ...)   a page of a parcel's photos (up to PHOTOS_PER_PAGE)

Photos are decoded at the size they print (JPEG draft mode: a 5 MB photo decodes at 1/4 or 1/8 scale in a few
milliseconds), turned upright from their EXIF orientation and put in the page as JPEG; nothing of their EXIF
reaches the PDF. Restricted and withdrawn attachments are never printed.
"""
from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageOps

from gis.printing.pagekit import GREY, INK, Page, load_sheet, wrap
from gis.printing.pdfwriter import MM

PRINT_DPI = 200            # a photo's resolution on paper
PHOTOS_PER_PAGE = 6        # 3 × 2 on an A4 landscape page
#: (x, y, w, h) of the inset on a briefing page: the lower right corner of its map (10, 25, 173, 136)
INSET = (121.0, 113.0, 60.0, 46.0)


def site_photos(store, codes=None) -> dict[str, list]:
    """Printable photos (not restricted, not withdrawn) of the parcels ``codes`` (None: all) and of their
    stage events, newest first (time taken, else time added)."""
    want = None if codes is None else set(codes)
    out: dict[str, list] = {}
    # a few parcels: ask for theirs (each with its events'); an atlas of many: one listing of all
    found = (store.attachments(None, kind="photo") if want is None or len(want) > 20 else
             [a for c in sorted(want) for a in store.attachments(c, kind="photo")])
    for a in found:
        if a.restricted or a.target_kind not in ("parcel", "event") or (want is not None and a.target_code not in want):
            continue
        out.setdefault(a.target_code, []).append(a)
    for photos in out.values():
        photos.sort(key=lambda a: (a.taken_at or a.added_at or "", a.id), reverse=True)
    return out


def photo_pixels(data: bytes, w_mm: float, h_mm: float, dpi: int = PRINT_DPI) -> np.ndarray | None:
    """The photo as RGB pixels fitted into ``w_mm`` × ``h_mm`` at ``dpi``, upright; None if it cannot be read."""
    want = (max(1, round(w_mm / 25.4 * dpi)), max(1, round(h_mm / 25.4 * dpi)))
    try:
        img = Image.open(io.BytesIO(data))
        img.draft("RGB", want)  # JPEG: decode at a fraction of its size, no more than needed
        img = ImageOps.exif_transpose(img).convert("RGB")
        img.thumbnail(want, Image.Resampling.LANCZOS)
        return np.asarray(img)
    except (OSError, ValueError, Image.DecompressionBombError):  # a format Pillow cannot read (HEIC without
        return None                                              # its plug-in): the page says so instead


def draw_photo(page: Page, rect, data: bytes | None, lines: list[str], size: float = 6.5) -> None:
    """A photo fitted (aspect kept) into ``rect`` (A4 mm) above its caption ``lines``, on a white card."""
    x, y, w, h = rect
    pitch = size * 0.45
    cap_h = pitch * len(lines) + (1.2 if lines else 0)
    page.box(x, y, w, h, fc="#ffffff", ec="#999999", lw=0.4)
    img_w, img_h = w - 2.0, h - 2.0 - cap_h
    pix = photo_pixels(data, img_w, img_h) if data else None
    if pix is not None and img_h > 2:
        ph, pw = pix.shape[:2]
        scale = min(img_w / pw, img_h / ph)
        dw, dh = pw * scale, ph * scale
        ix, iy = x + 1.0 + (img_w - dw) / 2, y + 1.0 + (img_h - dh) / 2
        page.canvas.image(pix, page.px(ix), page.py(iy + dh), dw * page.k * MM, dh * page.k * MM)
    else:
        page.box(x + 1.0, y + 1.0, img_w, img_h, fc="#eeeeee", ec="none")
    page.lines(x + 1.2, y + h - cap_h + pitch + 0.2, [(ln, INK if i == 0 else GREY, "bold" if i == 0 else "normal")
                                                     for i, ln in enumerate(lines)], size, pitch)


def photo_lines(page: Page, a, width_mm: float, stage: str | None = None, size: float = 6.5) -> list[str]:
    """Caption lines of a photo: its caption (or file name); when taken, the stage event it documents."""
    first = wrap(a.caption or a.filename or "", width_mm, size, max_lines=1)[0] if (a.caption or a.filename) else ""
    when = (a.taken_at or a.added_at or "")[:16].replace("T", " ")
    second = " · ".join(s for s in (page.tr("evidence_io.photo_taken", date=when) if when else "", stage or "",
                                    f"{a.direction:.0f}°" if a.direction is not None else "") if s)
    return [s for s in (first, wrap(second, width_mm, size, max_lines=1)[0] if second else "") if s]


def _event_stage(store, code: str, kind: str, lang: str) -> dict[int, str]:
    cat = store.catalog
    return {e.id: cat.stage_label_or_key(kind, e.to_stage, lang) for e in store.history(code) if e.to_stage}


def draw_latest_photo(page: Page, store, code: str, photo) -> None:
    """The parcel's latest site photo as an inset in the lower right corner of its briefing map."""
    x, y, w, h = INSET
    stage = None
    if photo.event_id is not None:
        kind = store.parcel(code, page.lang)["kind"]
        stage = _event_stage(store, code, kind, page.lang).get(photo.event_id)
    lines = [page.tr("evidence_io.latest_photo"), *photo_lines(page, photo, w - 2.5, stage, 6.0)]
    draw_photo(page, (x, y, w, h), store.attachment_data(photo.id), lines[:3], 6.0)


def compose_photo_page(store, code: str, photos: list, paper: str = "A4", lang: str = "zh",
                       classification: str = "", number=None) -> Page:
    """A page of parcel ``code``'s site photos (the newest PHOTOS_PER_PAGE), each with its caption, time taken
    and the stage it documents."""
    sheet = load_sheet(store)
    p = store.parcel(code, lang)
    page = Page(paper, lang, classification, sheet, number)
    page.header(f"{p['name']}  {code}", page.tr("evidence_io.photo_page"), page.tr("brief.doc_parcel"))
    stages = _event_stage(store, code, p["kind"], lang)
    cols, rows = 3, 2
    x0, y0, gap = 10.0, 26.0, 4.0
    cw, ch = (277.0 - gap * (cols - 1)) / cols, (163.0 - gap * (rows - 1)) / rows
    if not photos:
        page.text(x0, y0 + 10, page.tr("evidence_io.no_photos"), 10, color=GREY)
    for i, a in enumerate(photos[:PHOTOS_PER_PAGE]):
        r, c = divmod(i, cols)
        rect = (x0 + c * (cw + gap), y0 + r * (ch + gap), cw, ch)
        draw_photo(page, rect, store.attachment_data(a.id),
                   photo_lines(page, a, cw - 2.5, stages.get(a.event_id) if a.event_id is not None else None), 7.0)
    if len(photos) > PHOTOS_PER_PAGE:
        page.text(287, 194.3, page.tr("evidence_io.more_photos", n=len(photos) - PHOTOS_PER_PAGE), 7, color=GREY,
                  ha="right")
    page.footer()
    return page
