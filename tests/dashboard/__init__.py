"""Tests of the dashboard: every page through Streamlit's AppTest and in headless Chromium."""
