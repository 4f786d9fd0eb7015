"""The dashboard's data: the collector's HTTP API, cached with st.cache_data (no Streamlit layout here)."""
