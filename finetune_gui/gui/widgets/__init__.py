"""Reusable widgets: config forms, plots, the layer tree, the confusion matrix."""
