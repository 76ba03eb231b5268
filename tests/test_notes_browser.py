"""A URL or an e-mail address typed into a note is shown as text in the parcel panel, never as a live link."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from gis.devtools.devserver import running_app
from gis.store.open import open_store_at
from tests.conftest import sign_in
from tests.test_browser import _open_parcel
from ui.common import plain

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "data" / "parcels" / "demo.gpkg"
NOTE = "见 https://evil.example/login 与 www.evil.example，联系 boss@evil.example"


def test_plain_breaks_every_autolink_pattern():
    shown = plain(NOTE)
    for pattern in ("https:", "https\\:", "www.", "www\\.", "s@e", "s\\@e"):
        assert pattern not in shown
    assert shown.replace("\u2060", "").replace("\\", "") == NOTE  # reads the same


@pytest.mark.browser
def test_a_url_in_a_note_is_text_in_the_panel(tmp_path, page):
    shutil.copy(DEMO, tmp_path / "renewal.gpkg")
    store = open_store_at(str(tmp_path / "renewal.gpkg"))
    row = store.parcels(kind="village", zone="north").iloc[0]
    store.set_note(row["code"], NOTE, by="admin")
    with running_app(tmp_path) as app:
        page.set_viewport_size({"width": 1400, "height": 900})
        sign_in(page, app["url"], "admin", "renewal-admin")
        _open_parcel(page, row["code"], row["geometry"])
        page.get_by_text("evil.example/login").first.wait_for(timeout=30000)
        links = page.evaluate("() => [...document.querySelectorAll('a')].map(a => a.href)")
        assert not [h for h in links if "evil.example" in h]
        shots = os.environ.get("RENEWAL_SCREENSHOTS")
        if shots:
            page.screenshot(path=str(Path(shots) / "note_as_text.png"))
            page.set_viewport_size({"width": 390, "height": 844})
            page.wait_for_timeout(1500)
            page.screenshot(path=str(Path(shots) / "note_as_text_phone.png"), full_page=True)
