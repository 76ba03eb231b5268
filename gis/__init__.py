"""Renewal Atlas core library: data, stages, maps and exports. Never imports streamlit."""

__version__ = "0.1.0"
