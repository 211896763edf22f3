"""Helpers of the CLI tests (importable as ``from cli_checks import …``, like ``browser``)."""

from __future__ import annotations


def one_error(capsys, *needles: object) -> str:
    """The single ``modalbridge: error:`` line of stderr: no traceback, and it names every one of ``needles``."""
    err = capsys.readouterr().err
    assert "Traceback" not in err, err
    lines = [line for line in err.splitlines() if line.startswith("modalbridge: error:")]
    assert len(lines) == 1, err
    for needle in needles:
        assert str(needle) in lines[0], lines[0]
    return lines[0]
