"""The daily digest: overdue and due-soon targets and open follow-up orders, per unit, as markdown
for a group robot (WeCom 企业微信 and DingTalk 钉钉 both take ``{"msgtype": "markdown", ...}``).

Off by default: nothing is sent unless the setting ``digest_webhook`` names a URL
(an intranet deployment has its own robot gateway). ``renewal digest --dry-run``
prints the message. Sending is one JSON POST with a timeout; a refused or
unreachable webhook is an InputError, never a traceback.
"""
from __future__ import annotations

import json
import urllib.error
import urllib.request

from gis.base.clock import office_today
from gis.base.errors import InputError
from gis.base.i18n import t

MAX_LINES_PER_UNIT = 8
MAX_CHARS = 3800  # WeCom's markdown content limit is 4096 bytes of UTF-8; DingTalk's is larger


def _md(text) -> str:
    """User text made inert in the robots' markdown (no links, no emphasis)."""
    return "".join("\\" + c if c in "\\`*_[]()<>#|" else c for c in str(text or ""))


def _name(row: dict) -> str:
    return f"{row['object']} {row['name']}" if row.get("name") and row["name"] != row["object"] else row["object"]


def build_digest(store, as_of=None, lang: str = "zh") -> str:
    """The digest as markdown: per unit, its overdue and due-soon targets and its open orders."""
    when = as_of or office_today()
    rows = store.status_rows(when, lang=lang)
    orders = store.followups(open_only=True, as_of=when)
    late = [r for r in rows if r["status"] in ("overdue", "due_soon")]
    units = sorted({r["unit"] or "" for r in late} | {o["unit"] or "" for o in orders})
    n_over = sum(r["status"] == "overdue" for r in late)
    n_soon = sum(r["status"] == "due_soon" for r in late)
    n_open_late = sum(o["overdue"] for o in orders)
    out = [f"### {t('plans.digest_title', lang, date=str(when))}",
           t("plans.digest_summary", lang, overdue=n_over, due_soon=n_soon, orders=len(orders),
             orders_overdue=n_open_late)]
    for unit in units:
        mine = sorted((r for r in late if (r["unit"] or "") == unit), key=lambda r: -r["days_late"])
        mine_orders = [o for o in orders if (o["unit"] or "") == unit]
        out.append(f"\n**{_md(unit or t('plans.no_unit', lang))}**")
        for r in mine[:MAX_LINES_PER_UNIT]:
            if r["status"] == "overdue":
                out.append("- " + t("plans.digest_overdue", lang, object=_md(_name(r)), stage=_md(r["stage_label"]),
                                    due=r["due"], days=r["days_late"], baseline=_md(r["baseline_label"])))
            else:
                out.append("- " + t("plans.digest_due_soon", lang, object=_md(_name(r)), stage=_md(r["stage_label"]),
                                    due=r["due"], days=r["days_left"], baseline=_md(r["baseline_label"])))
        if len(mine) > MAX_LINES_PER_UNIT:
            out.append("- " + t("plans.digest_more", lang, n=len(mine) - MAX_LINES_PER_UNIT))
        for o in mine_orders[:MAX_LINES_PER_UNIT]:
            key = "plans.digest_order_overdue" if o["overdue"] else "plans.digest_order"
            out.append("- " + t(key, lang, id=o["id"], object=_md(o["on"]), due=o["due"],
                                state=t(f"plans.state_{o['state']}", lang)))
    text = "\n".join(out)
    if len(text.encode()) > MAX_CHARS:
        text = text.encode()[:MAX_CHARS].decode(errors="ignore").rsplit("\n", 1)[0] + "\n…"
    return text


def post_digest(url: str, text: str, timeout: float = 10.0) -> dict:
    """POST the digest as a markdown message; returns the robot's answer (JSON) with the HTTP status.

    Raises:
        InputError: not an http(s) URL, the robot unreachable or answering an error.
    """
    if not url.startswith(("http://", "https://")):
        raise InputError("plans.bad_webhook", url=url)
    body = json.dumps({"msgtype": "markdown", "markdown": {"content": text, "title": text.splitlines()[0][4:]}},
                      ensure_ascii=False).encode()
    req = urllib.request.Request(url, data=body, method="POST",
                                 headers={"Content-Type": "application/json; charset=utf-8"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310 (the office's own URL)
            raw = resp.read(65536)
            status = resp.status
    except (urllib.error.URLError, OSError, ValueError) as e:
        raise InputError("plans.webhook_failed", detail=str(getattr(e, "reason", e))) from None
    try:
        answer = json.loads(raw.decode() or "{}")
    except (UnicodeDecodeError, json.JSONDecodeError):
        answer = {"body": raw[:200].decode(errors="replace")}
    if isinstance(answer, dict) and answer.get("errcode") not in (None, 0):
        raise InputError("plans.webhook_failed", detail=f"errcode {answer.get('errcode')}: {answer.get('errmsg', '')}")
    return {"status": status, "answer": answer}
