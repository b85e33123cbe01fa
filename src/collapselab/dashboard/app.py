"""The Streamlit script of the dashboard: `streamlit run` (through `collapselab dashboard`)
executes this file on every rerun; everything it does is in `layout.main`."""

from collapselab.dashboard.layout import main

main()
