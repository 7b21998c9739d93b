"""Bokeh figures per stage."""
