"""Dashboard pages, one script per page, run by `st.navigation` from dashboard/app.py."""
