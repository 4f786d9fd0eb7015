"""The collector's refusal of a rule, a silence or an acknowledgement, kept for the next render and shown beside the
field it names (`{"error": ..., "field": ...}`, collector/api/errors.py); what names no drawn field goes at the end."""

from __future__ import annotations

import streamlit as st

from dashboard.data import alerts_client
from dashboard.data.client import ApiError

Refusal = tuple[str | None, str]  # the field the collector named (None: none), its message


def reject(key: str, error: ApiError) -> None:
    """Keep why a request was refused under `key`: the field and the collector's own words when it named one."""
    if isinstance(error, alerts_client.RuleRejectedError):
        st.session_state[key] = (error.field, f"{error.field or 'rule'}: {error.message}")
    else:
        st.session_state[key] = (None, error.message)


class Beside:
    """Draws a kept refusal once: under the first field drawn that it names, else where `rest` is called."""

    def __init__(self, refusal: Refusal | None) -> None:
        self.refusal = refusal
        self.shown = refusal is None

    def show(self, *fields: str, about: str = "") -> None:
        """Call right after drawing the input of `fields`, in the same column; with `about`, only a message about it
        (`channels: channel 1: ...` is about `channel 1:`)."""
        if self.shown or self.refusal is None or self.refusal[0] not in fields:
            return
        if self.refusal[1].startswith(f"{self.refusal[0]}: {about}"):
            st.error(self.refusal[1], icon=":material/error:")
            self.shown = True

    def rest(self) -> None:
        """The refusal if no field drawn matched it (the body as a whole, or a field this form doesn't show)."""
        if not self.shown and self.refusal is not None:
            st.error(self.refusal[1], icon=":material/error:")
            self.shown = True
