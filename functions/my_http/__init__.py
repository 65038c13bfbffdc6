"""HTTP: My page's subscriber API (M1, S8, S10), ``/api/my/{tenant}/...``.

Every endpoint is a subscriber endpoint (``Endpoint(subscriber=True)``): the caller is a
login of the tenant's identity provider (bearer token) or My page's session, and each
acts only on subscribers that login is linked to (``self_service.authorize``).
"""

from __future__ import annotations

import azure.functions as func

bp = func.Blueprint()

from . import group, personal  # noqa: E402,F401  (mydata: personal data and group endpoints register on bp)
