"""The engine: data, models, training, runs and export. Never imports Qt."""
