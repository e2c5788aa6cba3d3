"""How the harness says what went wrong: one line per exception, and one line per warning.

A run's `failure_reason` tag, a job's `error:` line and every `warning:` line on stderr are
made here, so the store and the terminal say a failure the same way.
"""

import sys

MAX_REASON = 500
NOTES = ("(raised as a result of", "[SQL:", "[parameters:", "(Background on this error")  # SQLAlchemy's asides


def said(text):
    """The lines of an exception's message that say what went wrong: without SQLAlchemy's asides
    (the autoflush preamble, the statement and its parameters, the link), stripped, none empty."""
    lines = [line.strip() for line in text.split("\n[SQL:")[0].splitlines()]
    return [line for line in lines if line and not line.startswith(NOTES)]


def reason(exc):
    """'Type: message' in one line: the message's first line, or for a heading such as TensorFlow's
    'Graph execution error:', its last line that says what went wrong; the root cause's if chained."""
    while exc.__cause__ is not None:
        exc = exc.__cause__
    lines = said(str(exc))
    text = lines[0] if lines else ""
    if len(lines) > 1 and text.endswith(":"):
        tail = [line for line in lines[1:] if not line.startswith(("[[", "File ", "Detected at node", "(most recent"))]
        text = tail[-1] if tail else text
    text = " ".join(text.split())
    return (f"{type(exc).__name__}: {text}" if text else type(exc).__name__)[:MAX_REASON]


def error_text(exc):
    """One `error:` line; a message of several lines (every mirror tried, say) follows it whole."""
    lines = said(getattr(exc, "details", ""))
    if len(lines) > 1:
        return "\n".join([f"error: {exc.kind}: {lines[0]}", *lines[1:]])
    return "error: " + str(exc).split("\n")[0]


def warn(message):
    print(f"warning: {message}", file=sys.stderr, flush=True)
