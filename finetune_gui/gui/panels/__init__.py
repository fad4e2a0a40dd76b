"""Panels: the parts a page is made of, each a widget with its own small module."""
