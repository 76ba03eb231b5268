"""In a real browser: a sign-in cookie copied before 退出登录 no longer signs anyone in after it."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from gis.devtools.devserver import running_app
from tests.conftest import map_frame as _map_frame
from tests.conftest import poll, sign_in

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "data" / "parcels" / "demo.gpkg"


@pytest.mark.browser
def test_a_copied_cookie_is_refused_after_sign_out(tmp_path, page):
    shutil.copy(DEMO, tmp_path / "renewal.gpkg")
    with running_app(tmp_path) as app:
        sign_in(page, app["url"], "viewer", "renewal-viewer")
        _map_frame(page)
        assert poll(lambda: any(c["name"] == "renewal_session" for c in page.context.cookies()))
        copied = [c for c in page.context.cookies() if c["name"] == "renewal_session"]
        page.get_by_role("button", name="退出登录").click()
        page.get_by_label("用户名").wait_for(timeout=30000)
        assert poll(lambda: not any(c["name"] == "renewal_session" for c in page.context.cookies()))
        page.context.add_cookies(copied)  # someone kept the cookie and presents it again
        page.reload(wait_until="domcontentloaded")
        page.get_by_label("用户名").wait_for(timeout=30000)  # the login form: the token is dead
        assert not page.get_by_text("当前用户：查看者").count()
