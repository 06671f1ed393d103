"""How a tool on the operator's side reaches a cluster's internal endpoints.

Rule: the cluster credential of the config (``$DTM_CLUSTER_SECRET`` wins, as for every component)
and, with ``[tls]``, a client context that trusts the cluster's CA and shows the operator's
certificate; nothing else is needed to read a node's or the sync's status.
"""

from __future__ import annotations

import os
import ssl

from dtm.auth import Credential, load_credential
from dtm.config import ClusterConfig


def credential(cfg: ClusterConfig) -> Credential | None:
    return load_credential(cfg.secret_path, os.environ)


def tls_context(cfg: ClusterConfig) -> ssl.SSLContext | None:
    if cfg.tls is None:
        return None
    from dtm.tls import OPERATOR, client_context

    return client_context(cfg, OPERATOR)
