"""Pseudonymisation: keyed HMAC-SHA256 as native Spark expressions."""

from pds_spark.pseudo.hmac import SecretKey, hmac_sha256, pseudonymise

__all__ = ["SecretKey", "hmac_sha256", "pseudonymise"]
