"""Names the platform never holds in clear: each replaced by its cryptographic long-term key
(CLK, Schnell et al. 2009), a Bloom filter of the name's bigrams whose bit positions come from an
HMAC-SHA256 under a project's key, and compared by Dice similarity (`kind = "dice"`). Two files
encoded under the same key link on similar names; without the key, the bits tell nothing that a
dictionary attack on bigram frequencies would not need the key for.

The encoding is native Spark: the bigrams by higher-order functions, the HMAC by `sha2` over the
key's padded blocks joined as a one-row frame (`pseudo.hmac.with_keys`: the key is in no plan).
A CLK is stored as the sorted array of its set bits' positions (`array<int>`)."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence

from pyspark.sql import DataFrame

from pds_spark.jvm import select_sql
from pds_spark.pseudo.hmac import SecretKey, hmac_sha256, with_keys
from pds_spark.pseudo.keystore import KeyStore
from pds_spark.sqltext import quoted

BITS = 1024
HASHES = 16  # positions a bigram sets: 16 four-hex-digit slices of one HMAC-SHA256
PAD = "_"
SUFFIX = "_clk"
PROPERTY = "pds.bloom"


def _check(bits: int, hashes: int) -> None:
    if bits < 64 or bits > 65536 or bits & (bits - 1):
        raise ValueError(f"a CLK's length is a power of two from 64 to 65536, got {bits}")
    if not 1 <= hashes <= 16:
        raise ValueError(f"a bigram sets 1 to 16 positions, got {hashes}")


def clk_sql(column: str, bits: int = BITS, hashes: int = HASHES) -> str:
    """`column`'s CLK (null for a null or blank name) as SQL text, named `<column>_clk`, over a
    frame joined with one key (`pseudo.hmac.with_keys`)."""
    _check(bits, hashes)
    name = f"concat('{PAD}', upper(trim(CAST({quoted(column)} AS STRING))), '{PAD}')"
    bigrams = f"transform(sequence(1, length({name}) - 1), i -> substring({name}, i, 2))"
    digests = f"transform({bigrams}, g -> {hmac_sha256('g')})"
    positions = (f"transform({digests}, h -> transform(sequence(0, {hashes - 1}), "
                 f"j -> CAST(pmod(CAST(conv(substring(h, j * 4 + 1, 4), 16, 10) AS INT), {bits}) AS INT)))")
    blank = f"{quoted(column)} IS NULL OR trim(CAST({quoted(column)} AS STRING)) = ''"
    return (f"CASE WHEN {blank} THEN NULL ELSE array_sort(array_distinct(flatten({positions}))) END "
            f"AS {quoted(column + SUFFIX)}")


def encode_names(df: DataFrame, columns: Sequence[str], key: SecretKey, bits: int = BITS,
                 hashes: int = HASHES) -> DataFrame:
    """`df` with each of `columns` replaced by its CLK under `key`, named `<column>_clk` (a
    pseudonymisation policy that drops the name, as ours drops `nom`, keeps its CLK)."""
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ValueError(f"no column {', '.join(missing)} to encode")
    taken = [c + SUFFIX for c in columns if c + SUFFIX in df.columns]
    if taken:
        raise ValueError(f"the input already has a column {', '.join(taken)}")
    return select_sql(with_keys(df, key), [clk_sql(c, bits, hashes) if c in columns else quoted(c)
                                           for c in df.columns])


def encode_for_project(df: DataFrame, columns: Sequence[str], keys: KeyStore, project: str
                       ) -> tuple[DataFrame, dict[str, str]]:
    """`encode_names` under project `project`'s Bloom key (its latest version), and the table
    properties that say so: two files compare only when encoded under the same version."""
    name = f"bloom-{project.lower()}"
    info = keys.ensure(name)
    props = {f"{PROPERTY}.key": name, f"{PROPERTY}.version": str(info.versions),
             f"{PROPERTY}.columns": ",".join(c + SUFFIX for c in columns), f"{PROPERTY}.bits": str(BITS),
             f"{PROPERTY}.hashes": str(HASHES)}
    return encode_names(df, columns, keys.chain(name)[-1]), props


def clk(name: str | None, key: bytes, bits: int = BITS, hashes: int = HASHES) -> list[int] | None:
    """The same CLK in Python (a reference for tests; never on data)."""
    if name is None or not name.strip():
        return None
    padded = f"{PAD}{name.strip().upper()}{PAD}"
    out = set()
    for i in range(len(padded) - 1):
        digest = hmac.new(key, padded[i:i + 2].encode("utf-8"), hashlib.sha256).hexdigest()
        out |= {int(digest[j * 4:j * 4 + 4], 16) % bits for j in range(hashes)}
    return sorted(out)


def dice(a: Sequence[int], b: Sequence[int]) -> float:
    return 2 * len(set(a) & set(b)) / (len(a) + len(b)) if a or b else 0.0
