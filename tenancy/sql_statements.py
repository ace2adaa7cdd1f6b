"""Split a SQL script into its statements, the way psql does, for servers that need them one by one.

Citus forwards some DDL to the workers with the *whole* query string it arrived in, and a
worker refuses a string of several commands ("cannot insert multiple commands into a prepared
statement", citusdata/citus#6608): Tenantry's scripts (a rendered revision, the head DDL) go to a
Citus coordinator one statement at a time (tenancy/citus.py decides when).

A `;` ends a statement unless it is inside a string ('...', E'...', "..."), a dollar-quoted
body ($$...$$, $tag$...$tag$), a comment (-- and nested /* */), parentheses, or the
BEGIN ... END body of a SQL-standard CREATE FUNCTION/PROCEDURE (psql's rules, psqlscan.l).
Pieces holding only comments and whitespace are dropped.
"""

import re
from functools import lru_cache

_NON_ASCII = r"[^\x00-\x7f]"
"""Any character from U+0080 up, as psql counts it into identifiers. Written negated: a class
spanning U+0080 to U+10FFFF took 3 to 5 ms to compile, in every process that imports this."""
_IDENTIFIER_CHAR = re.compile(rf"[A-Za-z0-9_$]|{_NON_ASCII}")
_WORD = re.compile(rf"(?:[A-Za-z_]|{_NON_ASCII})(?:[A-Za-z0-9_$]|{_NON_ASCII})*")
_DOLLAR_TAG = re.compile(rf"\$(?:(?:[A-Za-z_]|{_NON_ASCII})(?:[A-Za-z0-9_]|{_NON_ASCII})*)?\$")
_ROUTINE = re.compile(r"CREATE\s+(?:OR\s+REPLACE\s+)?(?:FUNCTION|PROCEDURE)\b", re.IGNORECASE)


@lru_cache(maxsize=256)
def split_statements(script: str) -> tuple[str, ...]:
    """The statements of `script`, each without its terminating `;`, in order."""
    statements: list[str] = []
    start = 0
    position = 0
    depth = 0  # parentheses
    begin_depth = 0  # BEGIN ... END of a SQL-standard routine body
    meaningful = False  # the current piece holds more than comments and whitespace
    length = len(script)
    while position < length:
        char = script[position]
        if char == "-" and script.startswith("--", position):
            newline = script.find("\n", position)
            position = length if newline < 0 else newline + 1
            continue
        if char == "/" and script.startswith("/*", position):
            position = _end_of_block_comment(script, position)
            continue
        if char in " \t\r\n\f":
            position += 1
            continue
        meaningful = True
        if char == "'":
            escapes = (
                position > 0
                and script[position - 1] in "eE"
                and not _word_before(script, position - 1)
            )
            position = _end_of_quoted(script, position, "'", backslash=escapes)
        elif char == '"':
            position = _end_of_quoted(script, position, '"', backslash=False)
        elif char == "$" and not _word_before(script, position):
            tag = _DOLLAR_TAG.match(script, position)
            if tag is None:
                position += 1  # a parameter ($1) or a stray dollar
            else:
                end = script.find(tag.group(), tag.end())
                position = length if end < 0 else end + len(tag.group())
        elif char == "(":
            depth += 1
            position += 1
        elif char == ")":
            depth = max(0, depth - 1)
            position += 1
        elif char == ";" and depth == 0 and begin_depth == 0:
            _add(statements, script[start:position])
            position += 1
            start = position
            meaningful = False
        elif not _word_before(script, position) and (word := _WORD.match(script, position)):
            keyword = word.group().upper()
            if keyword in ("BEGIN", "CASE") and (begin_depth or keyword == "BEGIN"):
                if begin_depth or _ROUTINE.match(script[start:position].lstrip()):
                    begin_depth += 1
            elif keyword == "END" and begin_depth:
                begin_depth -= 1
            position = word.end()
        else:
            position += 1
    if meaningful:
        _add(statements, script[start:])
    return tuple(statements)


def _add(statements: list[str], piece: str) -> None:
    if _has_code(piece):
        statements.append(piece.strip())


def _has_code(piece: str) -> bool:
    """True unless `piece` is only comments and whitespace."""
    position = 0
    while position < len(piece):
        if piece.startswith("--", position):
            newline = piece.find("\n", position)
            position = len(piece) if newline < 0 else newline + 1
        elif piece.startswith("/*", position):
            position = _end_of_block_comment(piece, position)
        elif piece[position].isspace():
            position += 1
        else:
            return True
    return False


def _word_before(script: str, position: int) -> bool:
    return position > 0 and _IDENTIFIER_CHAR.match(script[position - 1]) is not None


def _end_of_block_comment(script: str, position: int) -> int:
    """Past the `*/` closing the comment opened at `position` (block comments nest)."""
    nesting = 0
    while position < len(script):
        if script.startswith("/*", position):
            nesting += 1
            position += 2
        elif script.startswith("*/", position):
            nesting -= 1
            position += 2
            if nesting == 0:
                return position
        else:
            position += 1
    return position


def _end_of_quoted(script: str, position: int, quote: str, *, backslash: bool) -> int:
    """Past the quote closing the string opened at `position` (a doubled quote is a quote)."""
    position += 1
    while position < len(script):
        char = script[position]
        if backslash and char == "\\":
            position += 2
        elif char == quote:
            if script.startswith(quote, position + 1):
                position += 2
            else:
                return position + 1
        else:
            position += 1
    return position
