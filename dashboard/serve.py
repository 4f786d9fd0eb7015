"""The dashboard's process: Streamlit's command line (`python -m dashboard.serve run dashboard/app.py ...`), with
the libraries every page draws with imported before the server listens, so a cold server's first visitor does
not wait ~0.7 s for them. The dashboard's own modules stay for the first script run: their `st.cache_data`
functions need Streamlit's runtime, which exists only once the server has started."""

from __future__ import annotations

import importlib

PRELOADED = ("pandas", "altair", "pyarrow", "numpy")


def main() -> None:
    for name in PRELOADED:
        importlib.import_module(name)
    from streamlit.web import cli

    cli.main(prog_name="streamlit")  # as `python -m streamlit` calls it


if __name__ == "__main__":
    main()
