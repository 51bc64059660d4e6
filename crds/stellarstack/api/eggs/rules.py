"""Laravel validation rules (what eggs carry) to and from the typed `VariableRules`.

Eggs write rules as `"required|string|max:20"` or as a list of the same pieces. Every rule found
in public eggs is translated; a rule with no faithful translation is an error rather than being
dropped, so an imported blueprint never accepts values the egg would refuse without saying so.

Rules that are accepted but carry no meaning here: `sometimes`, `present` and `bail` (a
variable always has a value, and all problems are reported anyway).
"""

from __future__ import annotations

import csv
import re
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from pydantic import ValidationError

from stellarstack.api.blueprint import VariableFormat, VariableRules, VariableType
from stellarstack.api.eggs.errors import EggError, validation_reason

_TYPES: Final = {
    "string": VariableType.STRING,
    "integer": VariableType.INTEGER,
    # `int` and `bool` are not Laravel rules (Laravel fails on them), but eggs use them with an
    # unmistakable meaning.
    "int": VariableType.INTEGER,
    "numeric": VariableType.NUMERIC,
    "boolean": VariableType.BOOLEAN,
    "bool": VariableType.BOOLEAN,
}
# When several type rules are given, all must hold; the narrowest one decides how `min`/`max`
# measure the value (Laravel measures numbers once `numeric` or `integer` is present).
_TYPE_PRECEDENCE: Final = (
    VariableType.BOOLEAN,
    VariableType.INTEGER,
    VariableType.NUMERIC,
    VariableType.STRING,
)
_FORMATS: Final = {
    "alpha": VariableFormat.ALPHA,
    "alpha_num": VariableFormat.ALPHA_NUM,
    "alpha_dash": VariableFormat.ALPHA_DASH,
    "url": VariableFormat.URL,
    "ip": VariableFormat.IP,
    "ipv4": VariableFormat.IPV4,
    "ipv6": VariableFormat.IPV6,
    "email": VariableFormat.EMAIL,
    "uuid": VariableFormat.UUID,
    "json": VariableFormat.JSON,
}
_FORMAT_RULES: Final = {shape: rule for rule, shape in _FORMATS.items()}
# The most digits `VariableRules.digitsMax` accepts.
MAX_DIGITS: Final = 64
_IGNORED: Final = frozenset({"sometimes", "present", "bail"})
_NUMBER: Final = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)$")
_INTEGER: Final = re.compile(r"^[+-]?\d+$")

# PHP allows these bracket pairs as pattern delimiters, e.g. `([a-z]+)`.
_BRACKET_DELIMITERS: Final = {"(": ")", "[": "]", "{": "}", "<": ">"}
# Delimiters that are not regex syntax, so `\<delimiter>` inside the pattern is just the character.
# (`#` is not among them: it starts a comment under the x modifier.)
_PLAIN_DELIMITERS: Final = frozenset("/~@%!,;:=`'\"")
# PHP modifiers that change nothing for a Python str pattern used for a yes/no match.
_NEUTRAL_FLAGS: Final = frozenset("uSXn\n\r\t ")
_POSIX_CLASSES: Final = {
    "alpha": "a-zA-Z",
    "digit": "0-9",
    "alnum": "a-zA-Z0-9",
    "upper": "A-Z",
    "lower": "a-z",
    "space": r" \t\n\r\f\v",
    "blank": r" \t",
    "punct": r"!-/:-@\[-`{-~",
    "xdigit": "0-9A-Fa-f",
    "word": r"\w",
    "cntrl": r"\x00-\x1f\x7f",
    "print": r"\x20-\x7e",
    "graph": r"\x21-\x7e",
}


def split_rules(raw: Any, field_name: str) -> list[str]:
    """The individual rules of an egg variable: from a `|`-joined string or a list."""
    if raw is None:
        return []
    if isinstance(raw, str):
        return _split_rule_string(raw)
    if isinstance(raw, list | tuple):
        rules: list[str] = []
        for index, item in enumerate(raw):
            if not isinstance(item, str):
                raise EggError(f"{field_name}[{index}]: a rule must be a string, got {item!r}")
            rules.append(item)
        return rules
    raise EggError(f"{field_name}: must be a rule string or a list of rules")


def _split_rule_string(text: str) -> list[str]:
    # A `|` inside a delimited regex is part of the pattern, not a rule separator.
    pieces = text.split("|")
    rules: list[str] = []
    index = 0
    while index < len(pieces):
        piece = pieces[index]
        name = piece.partition(":")[0].strip().lower()
        if name in ("regex", "not_regex"):
            while not _regex_closed(piece.partition(":")[2]) and index + 1 < len(pieces):
                index += 1
                piece += "|" + pieces[index]
        rules.append(piece)
        index += 1
    return rules


def _regex_closed(parameter: str) -> bool:
    try:
        split_php_pattern(parameter)
    except EggError:
        return False
    return True


@dataclass
class _Collected:
    types: set[VariableType] = field(default_factory=set)
    values: dict[str, Any] = field(default_factory=dict)
    greater_than: list[tuple[str, int | float]] = field(default_factory=list)
    less_than: list[tuple[str, int | float]] = field(default_factory=list)


def parse_rules(raw: Any, field_name: str) -> VariableRules:
    """Typed rules from an egg variable's `rules`; `field_name` prefixes every error."""
    collected = _Collected()
    for rule in split_rules(raw, field_name):
        try:
            _collect(rule.strip(), collected)
        except EggError as exc:
            raise EggError(f"{field_name}: {exc}") from None
    values = collected.values
    chosen = next((kind for kind in _TYPE_PRECEDENCE if kind in collected.types), None)
    kind = chosen or VariableType.STRING
    if chosen is not None:
        values["type"] = chosen
    for rule, bound in collected.greater_than:
        values["min"] = _tighter(values.get("min"), _exclusive(rule, bound, kind, +1), max)
    for rule, bound in collected.less_than:
        values["max"] = _tighter(values.get("max"), _exclusive(rule, bound, kind, -1), min)
    try:
        return VariableRules.model_validate(values)
    except ValidationError as exc:
        raise EggError(f"{field_name}: {validation_reason(exc)}") from None


def _exclusive(rule: str, bound: int | float, kind: VariableType, step: int) -> int | float:
    # `gt:0` on whole numbers (or on lengths) is exactly `min:1`; on decimals it has no
    # inclusive equivalent, and rounding would accept values the egg refuses.
    if kind is VariableType.NUMERIC or isinstance(bound, float):
        raise EggError(f'rule "{rule}" on decimal numbers has no exact translation')
    return bound + step


def _tighter(current: Any, new: int | float, pick: Any) -> int | float:
    return new if current is None else pick(current, new)


def _collect(rule: str, collected: _Collected) -> None:
    if not rule:
        return  # "required|" leaves an empty piece; Laravel skips it too
    name, has_parameter, parameter = rule.partition(":")
    name = name.strip().lower()
    values = collected.values
    # Laravel ignores a parameter given to a rule that takes none (`nullable:string` is
    # `nullable`), so these accept and drop one.
    if name in _IGNORED:
        return
    if name in ("required", "filled"):
        values["required"] = True
    elif name == "nullable":
        values["nullable"] = True
    elif name in _TYPES:
        collected.types.add(_TYPES[name])
    elif name in _FORMATS and not has_parameter:
        shape = _FORMATS[name]
        if values.get("format") not in (None, shape):
            raise EggError(f'rule "{rule}": only one format rule is supported')
        values["format"] = shape
    elif name in ("min", "gte"):
        values["min"] = _tighter(values.get("min"), _one_number(rule, parameter), max)
    elif name in ("max", "lte"):
        values["max"] = _tighter(values.get("max"), _one_number(rule, parameter), min)
    elif name == "size":
        size = _one_number(rule, parameter)
        values["min"] = _tighter(values.get("min"), size, max)
        values["max"] = _tighter(values.get("max"), size, min)
    elif name == "between":
        low, high = _two_numbers(rule, parameter)
        values["min"] = _tighter(values.get("min"), low, max)
        values["max"] = _tighter(values.get("max"), high, min)
    elif name == "gt":
        collected.greater_than.append((rule, _one_number(rule, parameter)))
    elif name == "lt":
        collected.less_than.append((rule, _one_number(rule, parameter)))
    elif name == "digits":
        digits = _one_integer(rule, parameter)
        _digits(rule, digits, digits, values)
    elif name == "digits_between":
        low, high = _two_numbers(rule, parameter)
        if not isinstance(low, int) or not isinstance(high, int):
            raise EggError(f'rule "{rule}": expects two whole numbers')
        _digits(rule, low, high, values)
    elif name in ("in", "not_in") and has_parameter:
        options = _csv(parameter)
        key = "in" if name == "in" else "notIn"
        if key in values and name == "in":
            options = [option for option in values[key] if option in options]
        elif key in values:
            options = [*values[key], *(o for o in options if o not in values[key])]
        values[key] = options
    elif name in ("regex", "not_regex") and has_parameter:
        key = "regex" if name == "regex" else "notRegex"
        if values.get(key) is not None:
            raise EggError(f'rule "{rule}": only one {name} rule is supported')
        values[key] = php_to_python_pattern(parameter, f'rule "{rule}"')
    else:
        raise EggError(f'unknown rule "{rule}"')


def _digits(rule: str, low: int, high: int, values: dict[str, Any]) -> None:
    if high <= MAX_DIGITS:
        values["digitsMin"] = low
        values["digitsMax"] = high
        return
    # More digits than the typed field allows: Laravel's check (only the digits 0-9, a length
    # within the bounds) is exactly this expression.
    if "regex" in values:
        raise EggError(f'rule "{rule}": more than {MAX_DIGITS} digits and a regex cannot combine')
    values["regex"] = f"^[0-9]{{{low},{high}}}$"


def _one_number(rule: str, parameter: str) -> int | float:
    text = parameter.strip()
    if not _NUMBER.match(text):
        raise EggError(f'rule "{rule}": expects a number')
    return int(text) if _INTEGER.match(text) else float(text)


def _one_integer(rule: str, parameter: str) -> int:
    number = _one_number(rule, parameter)
    if not isinstance(number, int):
        raise EggError(f'rule "{rule}": expects a whole number')
    return number


def _two_numbers(rule: str, parameter: str) -> tuple[int | float, int | float]:
    parts = parameter.split(",")
    if len(parts) != 2:
        raise EggError(f'rule "{rule}": expects two numbers separated by a comma')
    return _one_number(rule, parts[0]), _one_number(rule, parts[1])


def _csv(parameter: str) -> list[str]:
    # Laravel reads rule parameters with str_getcsv, so `in:"a,b",c` has two options.
    return next(csv.reader([parameter]), None) or [""]


def split_php_pattern(parameter: str) -> tuple[str, str, str]:
    """Split a PHP `preg` pattern into (delimiter, body, modifiers), the way PHP finds its end."""
    text = parameter.lstrip()
    if not text:
        raise EggError("empty pattern")
    opening = text[0]
    if opening.isalnum() or opening == "\\" or opening.isspace():
        raise EggError(f"pattern must start with a delimiter such as /, not {opening!r}")
    closing = _BRACKET_DELIMITERS.get(opening, opening)
    depth = 0
    index = 1
    while index < len(text):
        char = text[index]
        if char == "\\":
            index += 2
            continue
        if char == closing and depth == 0:
            return opening, text[1:index], text[index + 1 :]
        if opening != closing:
            if char == opening:
                depth += 1
            elif char == closing:
                depth -= 1
        index += 1
    raise EggError(f"pattern has no closing delimiter {closing!r}")


def php_to_python_pattern(parameter: str, field_name: str) -> str:
    """A Python regular expression that matches what the PHP (PCRE) pattern matches."""
    try:
        opening, body, modifiers = split_php_pattern(parameter)
    except EggError as exc:
        raise EggError(f"{field_name}: {exc}") from None
    unknown = sorted(set(modifiers) - set("imsxADU") - _NEUTRAL_FLAGS)
    if unknown:
        raise EggError(f"{field_name}: unknown pattern modifier(s) {''.join(unknown)!r}")
    if "U" in modifiers:
        raise EggError(f"{field_name}: the U (ungreedy) modifier has no Python equivalent")
    dollar_end = "D" in modifiers and "m" not in modifiers
    pattern = _translate_pcre(body, opening, dollar_end, field_name)
    if "A" in modifiers:
        pattern = rf"\A(?:{pattern})"
    inline = "".join(flag for flag in "imsx" if flag in modifiers)
    if inline:
        pattern = f"(?{inline}){pattern}"
    try:
        with warnings.catch_warnings():
            # Python warns (FutureWarning) on set syntax it will reinterpret; treat as unusable.
            warnings.simplefilter("error")
            re.compile(pattern)
    except (re.error, FutureWarning, DeprecationWarning) as exc:
        raise EggError(f"{field_name}: pattern cannot be used in Python: {exc}") from None
    return pattern


_ESCAPES_OUTSIDE: Final = {"z": r"\Z", "Z": r"(?=\n?\Z)", "h": r"[ \t]", "e": r"\x1b"}
_ESCAPES_INSIDE: Final = {"h": r" \t", "e": r"\x1b"}
_UNSUPPORTED_ESCAPES: Final = frozenset("GKRXCQEgkNpPHVv")


def _translate_pcre(body: str, delimiter: str, dollar_end: bool, field_name: str) -> str:
    out: list[str] = []
    index = 0
    in_class = False
    class_start = 0
    while index < len(body):
        char = body[index]
        if char == "\\" and index + 1 < len(body):
            escaped = body[index + 1]
            index += 2
            if escaped == "/" or (escaped == delimiter and delimiter in _PLAIN_DELIMITERS):
                # `\/` and `\<delimiter>` only escaped the delimiter for PHP; the character is
                # plain text to the regex engine.
                out.append(escaped)
            elif escaped in _UNSUPPORTED_ESCAPES:
                raise EggError(f"{field_name}: \\{escaped} has no Python equivalent")
            elif in_class and escaped in _ESCAPES_INSIDE:
                out.append(_ESCAPES_INSIDE[escaped])
            elif not in_class and escaped in _ESCAPES_OUTSIDE:
                out.append(_ESCAPES_OUTSIDE[escaped])
            else:
                out.append("\\" + escaped)
            continue
        if in_class:
            posix = re.match(r"\[:(\^?)([a-z]+):\]", body[index:])
            if posix is not None:
                if posix.group(1) or posix.group(2) not in _POSIX_CLASSES:
                    raise EggError(f"{field_name}: POSIX class {posix.group()} is not supported")
                out.append(_POSIX_CLASSES[posix.group(2)])
                index += posix.end()
                continue
            if char == "]" and index > class_start:
                in_class = False
                out.append(char)
            elif char == "[" or (char in "-&~|" and body[index - 1 : index] == char):
                # A literal here, but Python reads `[` and doubled `--&&~~||` as future set syntax.
                out.append("\\" + char)
            else:
                out.append(char)
            index += 1
            continue
        if char == "[":
            in_class = True
            out.append(char)
            index += 1
            if body[index : index + 1] == "^":
                out.append("^")
                index += 1
            class_start = index + 1 if body[index : index + 1] == "]" else index
            if body[index : index + 1] == "]":
                out.append(r"\]")
                index += 1
            continue
        if body.startswith("(?<", index) and body[index + 3 : index + 4] not in ("=", "!"):
            out.append("(?P<")
            index += 3
            continue
        if body.startswith("(?'", index):
            end = body.find("'", index + 3)
            if end == -1:
                raise EggError(f"{field_name}: unterminated group name")
            out.append(f"(?P<{body[index + 3 : end]}>")
            index = end + 1
            continue
        if char == "$" and dollar_end:
            out.append(r"\Z")
        else:
            out.append(char)
        index += 1
    return "".join(out)


def python_to_php_pattern(pattern: str) -> str:
    """A `/.../` PHP pattern for a Python expression produced by `php_to_python_pattern`."""
    out: list[str] = []
    index = 0
    while index < len(pattern):
        char = pattern[index]
        if char == "\\" and index + 1 < len(pattern):
            escaped = pattern[index + 1]
            out.append(r"\z" if escaped == "Z" else "\\" + escaped)
            index += 2
            continue
        out.append(r"\/" if char == "/" else char)
        index += 1
    return "/" + "".join(out) + "/"


def format_rules(rules: VariableRules) -> list[str]:
    """Laravel rules equivalent to `rules`, in a conventional order."""
    out: list[str] = []
    if rules.required:
        out.append("required")
    if rules.nullable:
        out.append("nullable")
    out.append(rules.type.value)
    if rules.min is not None:
        out.append(f"min:{_number_text(rules.min)}")
    if rules.max is not None:
        out.append(f"max:{_number_text(rules.max)}")
    if rules.digits_min is not None and rules.digits_min == rules.digits_max:
        out.append(f"digits:{rules.digits_min}")
    elif rules.digits_min is not None or rules.digits_max is not None:
        # Laravel has no one-sided digit rule; 1 and 64 are the widest bounds the model allows.
        out.append(f"digits_between:{rules.digits_min or 1},{rules.digits_max or 64}")
    if rules.in_ is not None:
        out.append("in:" + _csv_text(rules.in_))
    if rules.not_in is not None:
        out.append("not_in:" + _csv_text(rules.not_in))
    if rules.regex is not None:
        out.append("regex:" + python_to_php_pattern(rules.regex))
    if rules.not_regex is not None:
        out.append("not_regex:" + python_to_php_pattern(rules.not_regex))
    if rules.format is not None:
        out.append(_FORMAT_RULES[rules.format])
    return out


def join_rules(rules: Sequence[str]) -> str | list[str]:
    """The `|`-joined string form, or the list itself when a pattern contains `|`."""
    if any("|" in rule for rule in rules):
        return list(rules)
    return "|".join(rules)


def _number_text(number: int | float) -> str:
    if isinstance(number, float) and number.is_integer():
        return str(int(number))
    return str(number)


def _csv_text(options: Sequence[str]) -> str:
    if list(options) in ([], [""]):
        return '""'
    return ",".join(
        '"' + option.replace('"', '""') + '"' if re.search(r'[,"\r\n]', option) else option
        for option in options
    )
