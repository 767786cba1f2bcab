"""Disclosure control: re-identification risk of record-level extracts, small-cell and
secondary suppression of tables of counts."""
