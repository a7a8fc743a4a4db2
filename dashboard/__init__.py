"""A Streamlit dashboard over the refined layer's DuckDB file (`make dashboard`)."""
