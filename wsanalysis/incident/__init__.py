"""Incident analysis: detectors that find, bound and attribute what went wrong.

`analyze.analyze(data)` runs every detector that can run on an `IncidentData`; each
returns `Finding`s (see findings.py) or says why it could not run.

The package is also the public call `wsanalysis.incident(data=... | prometheus=...)`
(`analyze.incident`): the name is both, and a package's name on `wsanalysis` is the
package itself once it is imported, so the package answers the call.
"""

import sys
import types
from typing import Any


class _CallablePackage(types.ModuleType):
    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        from wsanalysis.incident.analyze import incident

        return incident(*args, **kwargs)


sys.modules[__name__].__class__ = _CallablePackage
