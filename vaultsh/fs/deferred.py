"""A stand-in for a module that imports the real one the first time one of its attributes is read."""

# importlib.util.LazyLoader does not help here: on Python 3.11 a plain `import name` of a lazy
# module already reads its __spec__, which executes it. The stand-in is a module of its own
# with no spec, so `import name` hands it over as it is, and only an attribute it lacks loads
# the real module (which then takes its place in sys.modules).
# This module must stay light: the worker imports it before anything else.

from __future__ import annotations

import sys
import types


class _Deferred(types.ModuleType):
    """Module `name` until an attribute is read; from then on, a view of the real module."""

    def __getattr__(self, attr: str) -> object:  # only for names not (yet) in this module
        name = self.__name__
        if sys.modules.get(name) is self:
            del sys.modules[name]
        real = __import__(name)
        for part in name.split(".")[1:]:
            real = getattr(real, part)
        self.__dict__.update(vars(real))  # later reads through the stand-in find them here
        return getattr(real, attr)


def defer(name: str) -> None:
    """Put a stand-in for the module `name` in sys.modules unless it is loaded already."""
    if name not in sys.modules:
        stand_in = _Deferred(name)
        stand_in.__spec__ = None
        sys.modules[name] = stand_in
