"""Linkage (appariement) of a research file with the SNDS or with another file: blocking,
comparisons, Fellegi-Sunter estimation on aggregated comparison vectors, scoring."""
