"""Clumping, scoring, PRS evaluation."""
