"""Access and authorisations: who may do what, on which data, for which project, until when."""

from pds_spark.access.model import ROLES, Refused, Resource
from pds_spark.access.requests import Requests
from pds_spark.access.store import Governance, GovernanceError

__all__ = ["ROLES", "Governance", "GovernanceError", "Refused", "Requests", "Resource"]
