"""Ingestion: discover delivery files, parse with quarantine, write Delta, ledger, updates."""
