"""The worker's deferred modules: nothing loaded until an attribute is read, then the real module."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

from vaultsh.fs import deferred

REPO = Path(__file__).resolve().parents[2]


def _fresh(code: str) -> dict[str, object]:
    """Run `code` in an isolated interpreter with this checkout on its path; the JSON it prints."""
    prelude = f"import sys; sys.path.insert(0, {str(REPO)!r})\n"
    cp = subprocess.run(
        [sys.executable, "-I", "-S", "-c", prelude + textwrap.dedent(code)],
        capture_output=True,
        text=True,
        check=True,
    )
    result: dict[str, object] = json.loads(cp.stdout)
    return result


def test_a_documented_dataclass_does_not_load_inspect_and_inspect_still_works() -> None:
    got = _fresh(
        """
        import json, sys
        from vaultsh.fs.deferred import defer
        defer("inspect")
        import dataclasses

        @dataclasses.dataclass(frozen=True)
        class Point:
            "A point."
            x: int
            y: int = 0

        # vars(): reading an attribute of the stand-in would load the real module
        loaded = [n for n in ("inspect", "ast", "dis") if n in sys.modules]
        before = sorted(n for n in loaded if "__file__" in vars(sys.modules[n]))
        import inspect
        sig = str(inspect.signature(Point))
        real = sys.modules["inspect"]
        print(json.dumps({"before": before, "sig": sig, "eq": Point(1) == Point(1, 0),
                          "real": bool(getattr(real, "__file__", None)),
                          "same": dataclasses.inspect.signature is real.signature}))
        """
    )
    assert got["before"] == []  # neither inspect nor what it imports was executed
    assert got["sig"] == "(x: int, y: int = 0) -> None"
    assert got["eq"] and got["real"] and got["same"]


def test_an_undocumented_dataclass_gets_the_same_docstring_as_without_the_stand_in() -> None:
    code = """
        import json, sys
        {defer}
        import dataclasses

        @dataclasses.dataclass
        class Point:
            x: int

        print(json.dumps({{"doc": Point.__doc__, "ast": "ast" in sys.modules}}))
        """
    plain = _fresh(code.format(defer=""))
    deferred_run = _fresh(code.format(defer='from vaultsh.fs.deferred import defer; defer("inspect")'))
    assert deferred_run == plain == {"doc": "Point(x: int)", "ast": True}


def test_a_loaded_module_is_left_as_it_is() -> None:
    before = sys.modules["json"]
    deferred.defer("json")
    assert sys.modules["json"] is before


def test_logging_formats_an_exception_through_a_deferred_traceback() -> None:
    got = _fresh(
        """
        import json, sys
        from vaultsh.fs.deferred import defer
        defer("traceback")
        import io, logging
        out = io.StringIO()
        logging.basicConfig(stream=out)
        loaded_before = "__file__" in vars(sys.modules["traceback"])
        try:
            raise KeyError("boom")
        except KeyError:
            logging.getLogger("t").exception("failed")
        print(json.dumps({"before": loaded_before, "log": out.getvalue()}))
        """
    )
    assert got["before"] is False
    log = str(got["log"])
    assert log.startswith("ERROR:t:failed\nTraceback (most recent call last):\n")
    assert log.rstrip().endswith("KeyError: 'boom'")
