"""Who is calling: the authenticated identity, never one the caller can choose.

Without Hadoop security (the embedded default, a local master, a standalone cluster)
that is the operating-system user of the driver process; with Kerberos, the principal
(or the proxy user the submission service set). `SPARK_USER`, `HADOOP_USER_NAME` and
`HADOOP_PROXY_USER` (environment variables or Java system properties) are honoured by
Spark and Hadoop under simple authentication: the front door and the session builder
remove them, and a Spark user that differs from the authenticated one is refused.
"""

from __future__ import annotations

import os
import pwd
from collections.abc import MutableMapping

from pds_spark.errors import ExitCode, PdsError
from pds_spark.jvm import hadoop_security

IDENTITY_VARIABLES = ("SPARK_USER", "HADOOP_USER_NAME", "HADOOP_PROXY_USER")


class IdentityError(PdsError):
    """The Spark user is not the authenticated identity."""

    exit_code = ExitCode.REFUSED


def os_user() -> str:
    """The operating-system user of this process (its effective uid, not $USER)."""
    try:
        return pwd.getpwuid(os.geteuid()).pw_name
    except KeyError:  # a uid with no passwd entry (some containers)
        return f"uid-{os.geteuid()}"


def neutralise_environment(environ: MutableMapping[str, str] | None = None) -> list[str]:
    """Remove the variables that would let a caller choose their Spark user; returns the names removed."""
    env: MutableMapping[str, str] = os.environ if environ is None else environ
    return [name for name in IDENTITY_VARIABLES if env.pop(name, None) is not None]


def authenticated_user(spark) -> str:
    """The caller of this session: the Spark user when Hadoop security authenticates it
    (and nothing in the environment could have chosen it), the OS user otherwise.
    Raises IdentityError when the Spark user is another name."""
    spark_user = spark.sparkContext.sparkUser()
    secure, properties = hadoop_security(spark, IDENTITY_VARIABLES)
    chosen = [n for n in IDENTITY_VARIABLES if os.environ.get(n)] + properties
    if secure and not chosen:
        return spark_user
    user = os_user()
    if spark_user != user:
        raise IdentityError(f"refused: the Spark user {spark_user!r} is not the authenticated user {user!r} "
                            f"({', '.join(sorted(set(chosen))) or 'a Java system property'} chose it; "
                            "the platform does not honour it)")
    return user
