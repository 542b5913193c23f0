"""Reading a dotenv file (`secrets import FILE`) with python-dotenv, the parser the real app's tooling uses:
comments, single and double quotes, multi-line quoted values and ``export`` prefixes as it reads them, with
interpolation off (``${VAR}`` is kept as written: a password may contain ``$``).

What python-dotenv only logs (a line it cannot parse, a line without ``=``) is bad input here (exit 2), told by
its line number alone: such a line may well be a pasted value. Every value is registered with the redactor the
moment it is read.
"""

from __future__ import annotations

import io
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from arbiter_ops.core.errors import UsageError
from arbiter_ops.core.redact import REDACTOR
from arbiter_ops.secrets.value_from import looks_like_secret_value

MAX_BYTES = 1024 * 1024  # a dotenv file of secrets is a few KB; Secrets Manager holds at most 64 KB
KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")  # what a container's environment variable can be called
HINT = "write one KEY=value per line (quotes, comments and `export KEY=value` are fine)"


@dataclass(frozen=True)
class DotenvFile:
    path: str
    values: dict[str, str]  # in the file's order; the last of a repeated key wins, as in python-dotenv
    warnings: list[str] = field(default_factory=list)


def _text_of(path: str) -> str:
    p = Path(path)
    try:
        if p.is_dir():
            raise UsageError(f"{path} is a directory, not a dotenv file", hint=HINT, code="bad-dotenv")
        size = p.stat().st_size
        if size > MAX_BYTES:
            raise UsageError(
                f"{path} is {size} bytes: too large for a dotenv file of secrets", hint=HINT, code="bad-dotenv"
            )
        data = p.read_bytes()
    except FileNotFoundError:
        raise UsageError(
            f"dotenv file {path} does not exist", hint="give the path of a KEY=value file", code="file-not-found"
        ) from None
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror}", code="bad-dotenv") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise UsageError(f"{path} is not UTF-8 text (byte {exc.start})", hint=HINT, code="bad-dotenv") from None


def read_dotenv(path: str) -> DotenvFile:
    """The file's KEY -> value pairs, or a UsageError naming the first bad lines by number (never their text)."""
    from dotenv import dotenv_values
    from dotenv.parser import parse_stream

    text = _text_of(path)
    problems: list[str] = []
    lines: dict[str, list[int]] = {}
    for binding in parse_stream(io.StringIO(text)):
        line = binding.original.line
        if binding.error:
            problems.append(f"line {line} cannot be parsed")
        elif binding.key is None:
            continue  # a comment or a blank line
        elif binding.value is None:
            problems.append(f"line {line} has no '=' (KEY=value expected)")
        elif not KEY.fullmatch(binding.key) or looks_like_secret_value(binding.key):
            problems.append(f"line {line} does not start with a variable name (letters, digits, _)")
        else:
            lines.setdefault(binding.key, []).append(line)
    if problems:
        more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
        raise UsageError(f"{path}: {'; '.join(problems[:3])}{more}", hint=HINT, code="bad-dotenv")
    parsed = dotenv_values(stream=io.StringIO(text), interpolate=False)
    values = {k: v for k, v in parsed.items() if k in lines and v is not None}
    REDACTOR.add_payload(json.dumps(values))  # first thing: nothing downstream may print a value
    if not values:
        raise UsageError(f"{path} holds no KEY=value line", hint=HINT, code="bad-dotenv")
    warnings = [
        f"{key} is set {len(at)} times (lines {', '.join(map(str, at))}): the last one is used"
        for key, at in lines.items()
        if len(at) > 1
    ]
    return DotenvFile(path, values, warnings)
