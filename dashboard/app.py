"""The dashboard's entrypoint (`streamlit run dashboard/app.py`): page config, shared sidebar, navigation."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from dashboard import signin
from dashboard.parts import filters

VIEWS = Path(__file__).with_name("views")

st.set_page_config(page_title="llmledger", page_icon=":material/monitoring:", layout="wide")
signin.gate()
page = st.navigation(
    [
        st.Page(VIEWS / "overview.py", title="Overview", icon=":material/dashboard:", default=True),
        st.Page(VIEWS / "spend.py", title="Spend", icon=":material/payments:"),
        st.Page(VIEWS / "latency.py", title="Latency", icon=":material/timer:"),
        st.Page(VIEWS / "errors.py", title="Errors & limits", icon=":material/error:"),
        st.Page(VIEWS / "calls.py", title="Calls", icon=":material/list:"),
        st.Page(VIEWS / "exports.py", title="Exports", icon=":material/download:"),
        st.Page(VIEWS / "chargeback.py", title="Chargeback", icon=":material/account_balance:"),
        st.Page(VIEWS / "sql.py", title="SQL", icon=":material/terminal:"),
        st.Page(VIEWS / "reconciliation.py", title="Reconciliation", icon=":material/receipt_long:"),
        st.Page(VIEWS / "alerts.py", title="Alerts", icon=":material/notifications:"),
        st.Page(VIEWS / "guard.py", title="Guard", icon=":material/shield:"),
        st.Page(VIEWS / "readiness.py", title="Readiness", icon=":material/verified:"),
    ]
)
filters.sidebar()
page.run()
