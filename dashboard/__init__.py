"""The llmledger dashboard: Streamlit pages reading through the collector's query API."""
