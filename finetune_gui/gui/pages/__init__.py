"""One page per step of the flow; each edits the shared AppState."""
