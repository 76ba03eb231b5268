"""The error tree. Each error carries a catalogue key so that it can be shown
in Chinese (the UI) or in both languages (the CLI) at one edge each.

    RenewalError
    ├── InputError (ValueError)        bad input: file, argument, value
    │   └── UnknownCRSError            no usable coordinate system
    ├── NotFoundError (LookupError)    unknown parcel, village, layer
    ├── StageTransitionError (ValueError)  illegal stage move
    ├── PermissionRefused (PermissionError)
    ├── ConflictError                  changed by someone else since read
    └── BulkRefused                    a bulk update refused as a whole (every failed parcel named)
"""
from __future__ import annotations

from gis.base.i18n import t


class RenewalError(Exception):
    """Root of every error the project raises on purpose.

    ``key`` names a message in the catalogues (``gis/locales``); ``params``
    fill its placeholders.
    """

    key = "error.generic"
    exit_code = 2

    def __init__(self, key: str | None = None, **params):
        self.key = key or self.key
        self.params = params
        super().__init__(self.message("en"))

    def message(self, lang: str = "zh") -> str:

        # a parameter may itself be bilingual: {"zh": ..., "en": ...}
        params = {k: v.get(lang, v.get("zh")) if isinstance(v, dict) else v for k, v in self.params.items()}
        return t(self.key, lang, **params)

    def bilingual(self) -> str:
        zh, en = self.message("zh"), self.message("en")
        return zh if zh == en else f"{zh} / {en}"


class InputError(RenewalError, ValueError):
    key = "error.input"


class UnknownCRSError(InputError):
    key = "error.unknown_crs"


class NotFoundError(RenewalError, LookupError):
    key = "error.not_found"


class StageTransitionError(RenewalError, ValueError):
    key = "error.transition"


class PermissionRefused(RenewalError, PermissionError):
    key = "error.permission"
    exit_code = 3


class ConflictError(RenewalError):
    key = "error.conflict"
    exit_code = 4


class BulkRefused(RenewalError):
    """A bulk update refused as a whole: nothing was written.

    ``failures`` lists ``(code, error)`` for every parcel that failed. The exit
    code is that of the gravest failure: 3 when any was refused, else 4 when any
    had changed since read, else 2.
    """

    key = "error.bulk_refused"
    SHOWN = 5  # reasons spelt out in the message; every code is named

    def __init__(self, failures):
        self.failures = list(failures)
        codes = ", ".join(c for c, _ in self.failures)
        more = len(self.failures) - self.SHOWN
        detail = {}
        for lang, sep in (("zh", "；"), ("en", "; ")):
            text = sep.join(f"{c}: {e.message(lang)}" for c, e in self.failures[:self.SHOWN])
            detail[lang] = text + (sep + "…" if more > 0 else "")
        super().__init__(n=len(self.failures), codes=codes, detail=detail)
        kinds = [type(e) for _, e in self.failures]
        self.exit_code = (3 if any(issubclass(k, PermissionRefused) for k in kinds)
                          else 4 if any(issubclass(k, ConflictError) for k in kinds) else 2)

    @property
    def codes(self) -> list[str]:
        return [c for c, _ in self.failures]
