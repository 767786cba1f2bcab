"""Extraction and targeting: care events from the SNDS tables, cohorts built over them."""
