"""Helpers every layer uses that belong to no stage: each option's rules (``params``), progress
bars and lazy package exports."""
