"""Egg import/export: hostile documents, placeholder and rule translation, format details."""

from __future__ import annotations

import copy
import json
import re
from typing import Any

import pytest

from stellarstack.api.blueprint import StopSignal, StopType, VariableFormat, VariableType
from stellarstack.api.eggs import (
    MAX_DEPTH,
    MAX_DOCUMENT_BYTES,
    EggError,
    blueprint_from_egg,
    blueprint_name,
    dump_egg,
    export_egg,
    format_rules,
    import_egg,
    load_document,
    parse_rules,
)
from stellarstack.api.eggs.placeholders import (
    export_config_value,
    export_startup,
    import_config_value,
    import_startup,
)
from stellarstack.api.eggs.rules import php_to_python_pattern, python_to_php_pattern

TOY_EGG: dict[str, Any] = {
    "_comment": "test egg",
    "meta": {"version": "PTDL_v2", "update_url": None},
    "exported_at": "2024-05-01T10:00:00+00:00",
    "name": "Toy Server (Java)",
    "author": "toy@example.com",
    "description": "A toy.",
    "features": ["eula"],
    "docker_images": {"Java 21": "localhost/yolks:java_21", "Java 17": "localhost/yolks:java_17"},
    "file_denylist": [],
    "startup": "java -Xmx{{SERVER_MEMORY}}M -jar {{SERVER_JARFILE}} --port {{SERVER_PORT}}",
    "config": {
        "files": json.dumps(
            {
                "server.properties": {
                    "parser": "properties",
                    "find": {
                        "server-port": "{{server.build.default.port}}",
                        "motd": "{{server.build.env.MOTD}}",
                    },
                }
            }
        ),
        "startup": json.dumps({"done": ")! For help, type "}),
        "logs": "{}",
        "stop": "stop",
    },
    "scripts": {
        "installation": {
            "script": "#!/bin/bash\r\necho install\r\n",
            "container": "localhost/installers:debian",
            "entrypoint": "bash",
        }
    },
    "variables": [
        {
            "name": "Jar file",
            "description": "The jar to run.",
            "env_variable": "SERVER_JARFILE",
            "default_value": "server.jar",
            "user_viewable": True,
            "user_editable": True,
            "rules": "required|regex:/^([\\w\\d._-]+)(\\.jar)$/",
            "field_type": "text",
        },
        {
            "name": "MOTD",
            "description": "",
            "env_variable": "MOTD",
            "default_value": "Hello",
            "user_viewable": True,
            "user_editable": True,
            "rules": "required|string|max:64",
            "field_type": "text",
        },
    ],
}


def egg(**changes: Any) -> dict[str, Any]:
    """A fresh copy of TOY_EGG with top-level fields replaced."""
    document = copy.deepcopy(TOY_EGG)
    document.update(changes)
    return document


def with_files(files: dict[str, Any]) -> dict[str, Any]:
    document = egg()
    document["config"]["files"] = json.dumps(files)
    return document


def rejected(document: Any) -> str:
    """The EggError message for a document (data, or text/bytes to parse)."""
    convert: Any = import_egg if isinstance(document, str | bytes) else blueprint_from_egg
    with pytest.raises(EggError) as caught:
        convert(document)
    return str(caught.value)


def test_toy_egg_imports() -> None:
    blueprint = import_egg(json.dumps(TOY_EGG))
    spec = blueprint.spec
    assert blueprint.metadata.name == "toy-server-java"
    assert [image.name for image in spec.images] == ["Java 21", "Java 17"]
    assert spec.startup_commands[0].name == "Default"
    assert spec.stop.type is StopType.COMMAND
    assert spec.stop.command == "stop"
    assert spec.readiness.console_patterns == [")! For help, type "]
    assert spec.config_files[0].edits[0].value == "{{SERVER_PORT}}"
    assert spec.config_files[0].edits[1].value == "{{MOTD}}"
    assert spec.install is not None
    assert spec.install.script == "#!/bin/bash\necho install\n"
    assert spec.variables[0].rules.regex == r"^([\w\d._-]+)(\.jar)$"
    assert spec.source is not None
    assert spec.source.format == "PTDL_v2"
    assert spec.features == ["eula"]


def test_name_argument_wins() -> None:
    assert import_egg(json.dumps(TOY_EGG), name="custom").metadata.name == "custom"
    assert rejected_with_name("Not A Label").startswith("metadata.name: must be lowercase")
    assert rejected_with_name("a" * 64).startswith("metadata.name: at most 63 characters")


def rejected_with_name(name: str) -> str:
    with pytest.raises(EggError) as caught:
        import_egg(json.dumps(TOY_EGG), name=name)
    return str(caught.value)


@pytest.mark.parametrize(
    ("egg_name", "slug"),
    [
        ("Paper", "paper"),
        ("Toy Server (Java)", "toy-server-java"),
        ("  --Ünïcödé  Egg--  ", "unicode-egg"),
        ("Rust [Staging] / Carbon", "rust-staging-carbon"),
        ("日本語", "egg"),
        ("a" * 80, "a" * 63),
        ("x" * 62 + " y", "x" * 62),
    ],
)
def test_blueprint_name(egg_name: str, slug: str) -> None:
    assert blueprint_name(egg_name) == slug


# --- hostile documents --------------------------------------------------------------------


def test_oversized_bytes_are_refused_before_parsing() -> None:
    message = rejected(b" " * (MAX_DOCUMENT_BYTES + 1))
    assert message.startswith("document:")
    assert "2 MiB" in message


def test_oversized_text_is_refused_by_encoded_size() -> None:
    # 0.7 Mi characters of three UTF-8 bytes each is more than 2 MiB.
    message = rejected('{"name": "' + "€" * (MAX_DOCUMENT_BYTES // 3 + 1) + '"}')
    assert "larger than the limit" in message


def test_deep_json_is_refused_before_parsing() -> None:
    assert "nested deeper than 32 levels" in rejected("[" * 100_000 + "]" * 100_000)


def test_depth_limit_is_exact() -> None:
    at_limit = '{"a": ' * (MAX_DEPTH - 1) + "[]" + "}" * (MAX_DEPTH - 1)
    assert load_document(at_limit) is not None
    assert "nested deeper" in rejected('{"a": ' * MAX_DEPTH + "[]" + "}" * MAX_DEPTH)


def test_brackets_inside_strings_do_not_count() -> None:
    assert load_document(json.dumps({"text": "[" * 1000})) == {"text": "[" * 1000}


def test_deep_json_inside_a_json_text_field_names_the_field() -> None:
    document = egg()
    document["config"]["files"] = "[" * 50 + "]" * 50
    assert rejected(document) == "config.files: nested deeper than 32 levels"


@pytest.mark.parametrize(
    "text",
    [
        "a:\n" + "".join("  " * level + "- \n" for level in range(1, 40)),
        "a: " + "[" * 40 + "]" * 40,
        "a: " + "{b: " * 40 + "}" * 40,
    ],
    ids=["block", "flow-sequence", "flow-mapping"],
)
def test_deep_yaml_is_refused(text: str) -> None:
    assert "nested deeper than 32 levels" in rejected(text)


BILLION_LAUGHS = """
a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: [*d,*d,*d,*d,*d,*d,*d,*d,*d]
"""


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        (BILLION_LAUGHS, "YAML anchors (&a) are not accepted"),
        ("a: *x\n", "YAML aliases (*x) are not accepted"),
        ("base: &base {x: 1}\nother:\n  <<: *base\n", "YAML anchors (&base)"),
        ("!!python/object/apply:os.system ['true']\n", "not valid YAML"),
        ("a: b\n---\nc: d\n", "not valid YAML"),
        ("a: [unclosed\n", "not valid YAML"),
        ("a: b\x00\n", "not valid YAML"),
    ],
)
def test_unsafe_or_broken_yaml_is_refused(text: str, reason: str) -> None:
    message = rejected(text)
    assert message.startswith("document:")
    assert reason in message


def test_yaml_node_count_is_bounded() -> None:
    text = "a: [" + ",".join(["1"] * 200_001) + "]\n"
    assert "YAML nodes" in rejected(text)


@pytest.mark.parametrize(
    ("document", "reason"),
    [
        (b"\xff\xfe{}", "document: not UTF-8 text"),
        ("", "document: empty"),
        ("   \n", "document: empty"),
        ("[1, 2]", "document: the top level must be a mapping (an egg), not a list"),
        ('"egg"', "document: the top level must be a mapping (an egg), not a string"),
        ("42", "document: the top level must be a mapping (an egg), not int"),
        ("{not json", "document: not valid JSON"),
        ('{"name": "x"}', "meta: must be a mapping, not null"),
        ('{"meta": []}', "meta.version: unknown format null"),
    ],
)
def test_malformed_documents(document: str | bytes, reason: str) -> None:
    assert reason in rejected(document)


@pytest.mark.parametrize("version", ["PTDL_v9", "PLCN_v4", "ptdl_v2", "", 2])
def test_unknown_format(version: Any) -> None:
    document = egg(meta={"version": version})
    message = rejected(document)
    assert message.startswith(f"meta.version: unknown format {json.dumps(version)}")
    assert "PTDL_v1" in message


@pytest.mark.parametrize(
    "path",
    [
        "../x",
        "a/../../x",
        "config/../../../etc/passwd",
        "C:\\Windows\\x.ini",
        "c:/x.ini",
        "\\\\server\\share\\x.ini",
        "\\x.ini",
        "x\x00.ini",
        "/../x",
        ".",
    ],
)
def test_config_file_outside_the_server_directory(path: str) -> None:
    document = with_files({path: {"parser": "file", "find": {"a": "b"}}})
    message = rejected(document)
    assert message.startswith(f"config.files[{json.dumps(path)}]: path must be relative")


@pytest.mark.parametrize(
    ("path", "stored"),
    [
        ("/etc/passwd", "etc/passwd"),
        ("/.local/share/Game/server_config.sii", ".local/share/Game/server_config.sii"),
        ("./config/./server.cfg", "config/server.cfg"),
        ("a\\b.ini", "a/b.ini"),
    ],
)
def test_config_file_paths_are_resolved_inside_the_server_directory(path: str, stored: str) -> None:
    # The node daemon resolves a leading `/` against the server directory, as we do.
    document = with_files({path: {"parser": "file", "find": {"a": "b"}}})
    assert blueprint_from_egg(document).spec.config_files[0].path == stored


def test_duplicate_variable_names() -> None:
    document = egg()
    document["variables"].append(dict(document["variables"][1], name="Other"))
    assert rejected(document) == (
        "variables[2].env_variable: 'MOTD' is defined twice (also variables[1])"
    )


def test_variable_named_like_a_builtin() -> None:
    document = egg()
    document["variables"][1]["env_variable"] = "SERVER_PORT"
    assert rejected(document).startswith("variables[1].env_variable: SERVER_PORT is set by")


@pytest.mark.parametrize(
    ("rules", "reason"),
    [
        ("required|foo:1", 'variables[1].rules: unknown rule "foo:1"'),
        (["required", "starts_with:a"], 'variables[1].rules: unknown rule "starts_with:a"'),
        ("max:abc", 'variables[1].rules: rule "max:abc": expects a number'),
        ("between:1", 'variables[1].rules: rule "between:1": expects two numbers'),
        ("numeric|gt:0.5", 'rule "gt:0.5" on decimal numbers has no exact translation'),
        ("regex:abc", 'variables[1].rules: rule "regex:abc": pattern must start with a delimiter'),
        ("regex:^abc$", "pattern has no closing delimiter '^'"),
        ("regex:/abc", "pattern has no closing delimiter '/'"),
        ("regex:/a/U", "the U (ungreedy) modifier has no Python equivalent"),
        ("regex:/a/q", "unknown pattern modifier(s) 'q'"),
        ("regex:/(a/", "pattern cannot be used in Python"),
        ("regex:/\\Ga/", "\\G has no Python equivalent"),
        ("min:10|max:5", "min (10) is greater than max (5)"),
        ("url|email", 'rule "email": only one format rule is supported'),
        (42, "variables[1].rules: must be a rule string or a list of rules"),
        (["required", 5], "variables[1].rules[1]: a rule must be a string"),
    ],
)
def test_invalid_rules(rules: Any, reason: str) -> None:
    document = egg()
    document["variables"][1]["rules"] = rules
    assert reason in rejected(document)


@pytest.mark.parametrize(
    ("files", "reason"),
    [
        (
            {"a.toml": {"parser": "toml", "find": {"a": "b"}}},
            'config.files["a.toml"].parser: unknown parser "toml"',
        ),
        (
            {"a.ini": {"parser": "ini", "find": {"a": "{{server.build.cpu}}"}}},
            'config.files["a.ini"].find["a"]: placeholder {{server.build.cpu}} has no',
        ),
        (
            {"a.ini": {"parser": "ini", "find": {"a": "{{UNDECLARED}}"}}},
            'config.files["a.ini"].find["a"]: placeholder {{UNDECLARED}} has no',
        ),
        (
            {"a.ini": {"parser": "ini", "find": {"a": ["list"]}}},
            'config.files["a.ini"].find["a"]: must be a text, number or boolean value',
        ),
        ({"a.ini": "not an object"}, 'config.files["a.ini"]: must be a mapping, not a string'),
        (
            {"a.ini": {"parser": "ini", "find": {"": "x"}}},
            "only the file parser accepts an empty key",
        ),
    ],
)
def test_invalid_config_files(files: dict[str, Any], reason: str) -> None:
    assert reason in rejected(with_files(files))


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"docker_images": {}}, "docker_images: at least one image is required"),
        ({"docker_images": {"Java": ""}}, 'docker_images["Java"]: must be an image reference'),
        (
            {"docker_images": {"Java": "localhost/a", " Java ": "localhost/b"}},
            "docker_images: names must be unique (Java)",
        ),
        ({"startup": "  "}, "startup: a startup command is required"),
        ({"startup": "run {{server.build.cpu}}"}, "startup: placeholder {{server.build.cpu}}"),
        ({"name": ""}, "name: required"),
        ({"name": "x" * 200}, "name: String should have at most 191 characters"),
        ({"variables": {"a": 1}}, "variables: must be a list, not dict"),
        ({"tags": "minecraft"}, "tags: must be a list, not a string"),
        ({"exported_at": "yesterday"}, "exported_at: Input should be a valid datetime"),
        ({"config": "stop"}, "config: must be a mapping, not a string"),
    ],
)
def test_invalid_fields_name_the_egg_field(changes: dict[str, Any], reason: str) -> None:
    assert reason in rejected(egg(**changes))


def test_multi_line_stop_command() -> None:
    document = egg()
    document["config"]["stop"] = "save\nstop"
    assert rejected(document).startswith("config.stop: ")


# --- placeholders -------------------------------------------------------------------------

KNOWN = {"MOTD", "MAX_PLAYERS", "QUERY_PORT"}


@pytest.mark.parametrize(
    ("egg_value", "ours"),
    [
        ("{{server.build.default.port}}", "{{SERVER_PORT}}"),
        ("{{server.allocations.default.port}}", "{{SERVER_PORT}}"),
        ("{{server.build.default.ip}}", "{{SERVER_IP}}"),
        ("{{server.allocations.default.ip}}", "{{SERVER_IP}}"),
        ("{{server.build.memory}}", "{{SERVER_MEMORY}}"),
        ("{{server.uuid}}", "{{SERVER_UUID}}"),
        ("{{server.build.env.MOTD}}", "{{MOTD}}"),
        ("{{server.environment.MOTD}}", "{{MOTD}}"),
        ("{{env.MOTD}}", "{{MOTD}}"),
        ("{{ env.MOTD }}", "{{MOTD}}"),
        ("{{server.build.env.SERVER_MEMORY}}", "{{SERVER_MEMORY}}"),
        ("{{env.P_SERVER_UUID}}", "{{SERVER_UUID}}"),
        ("{{server.build.env.TZ}}", "{{TZ}}"),
        ("{{server.build.env.UNDECLARED}}", ""),
        ("{{config.docker.interface}}", "{{config.docker.interface}}"),
        ("{{QUERY_PORT}}", "{{QUERY_PORT}}"),
        ("{{SERVER_PORT}}", "{{SERVER_PORT}}"),
        ("0.0.0.0:{{server.build.default.port}}", "0.0.0.0:{{SERVER_PORT}}"),
        (
            "{{env.MAX_PLAYERS}} of {{server.build.env.MAX_PLAYERS}}",
            "{{MAX_PLAYERS}} of {{MAX_PLAYERS}}",
        ),
        ("plain ${HOME} {text}", "plain ${HOME} {text}"),
    ],
)
def test_config_placeholders_import(egg_value: str, ours: str) -> None:
    assert import_config_value(egg_value, KNOWN, "f") == ours


@pytest.mark.parametrize(
    ("ours", "pterodactyl", "pelican"),
    [
        ("{{SERVER_PORT}}", "{{server.build.default.port}}", "{{server.allocations.default.port}}"),
        ("{{SERVER_IP}}", "{{server.build.default.ip}}", "{{server.allocations.default.ip}}"),
        ("{{SERVER_MEMORY}}", "{{server.build.memory}}", "{{server.build.memory}}"),
        ("{{SERVER_UUID}}", "{{server.uuid}}", "{{server.uuid}}"),
        ("{{MOTD}}", "{{server.build.env.MOTD}}", "{{server.environment.MOTD}}"),
        (
            "{{config.docker.interface}}",
            "{{config.docker.interface}}",
            "{{config.docker.interface}}",
        ),
        ("a {{MOTD}} b", "a {{server.build.env.MOTD}} b", "a {{server.environment.MOTD}} b"),
    ],
)
def test_config_placeholders_export(ours: str, pterodactyl: str, pelican: str) -> None:
    assert export_config_value(ours, pelican=False) == pterodactyl
    assert export_config_value(ours, pelican=True) == pelican
    assert import_config_value(pterodactyl, KNOWN, "f") == ours
    assert import_config_value(pelican, KNOWN, "f") == ours


@pytest.mark.parametrize(
    ("egg_command", "ours"),
    [
        ("java -Xmx{{SERVER_MEMORY}}M -jar x.jar", "java -Xmx{{SERVER_MEMORY}}M -jar x.jar"),
        (
            "./srv +port {{SERVER_PORT}} +ip {{SERVER_IP}}",
            "./srv +port {{SERVER_PORT}} +ip {{SERVER_IP}}",
        ),
        ("./srv --motd {{MOTD}}", "./srv --motd {{MOTD}}"),
        ("./srv --motd {{ MOTD }}", "./srv --motd {{MOTD}}"),
        ("./srv --port {{server.build.default.port}}", "./srv --port {{SERVER_PORT}}"),
        ("./srv --id {{P_SERVER_UUID}}", "./srv --id {{SERVER_UUID}}"),
        # The images' entrypoint turns an unknown {{X}} into ${X} for the shell.
        ("./srv {{CLIENT_MODS}}", "./srv ${CLIENT_MODS}"),
        ("./srv --motd {{server.build.env.MOTD}}", "./srv --motd {{MOTD}}"),
        ("./srv --x {{env.UNDECLARED}}", "./srv --x ${UNDECLARED}"),
        ("./srv --tz {{server.environment.TZ}}", "./srv --tz {{TZ}}"),
        ("./srv --port ${SERVER_PORT} $EXTRA", "./srv --port ${SERVER_PORT} $EXTRA"),
    ],
)
def test_startup_placeholders_import(egg_command: str, ours: str) -> None:
    assert import_startup(egg_command, KNOWN, "startup") == ours


def test_startup_placeholders_export() -> None:
    assert export_startup("./srv {{SERVER_PORT}} {{MOTD}}") == "./srv {{SERVER_PORT}} {{MOTD}}"
    assert export_startup("./srv --id {{SERVER_UUID}}") == "./srv --id {{P_SERVER_UUID}}"


# --- rules --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("laravel", "typed"),
    [
        ("required|string|max:20", {"required": True, "max": 20}),
        (["required", "string", "max:20"], {"required": True, "max": 20}),
        ("nullable|string", {"nullable": True}),
        ("nullable:string", {"nullable": True}),
        ("required|", {"required": True}),
        ("", {}),
        (None, {}),
        ("sometimes|present|bail|string", {}),
        (
            "required|integer|between:1,100",
            {"required": True, "type": "integer", "min": 1, "max": 100},
        ),
        ("required|int|max:64", {"required": True, "type": "integer", "max": 64}),
        (
            "required|numeric|between:0.1,64",
            {"required": True, "type": "numeric", "min": 0.1, "max": 64},
        ),
        ("required|string|in:true,false", {"required": True, "in": ["true", "false"]}),
        ("nullable|in:,beta", {"nullable": True, "in": ["", "beta"]}),
        ('in:"a,b",c', {"in": ["a,b", "c"]}),
        ("not_in:root,admin", {"notIn": ["root", "admin"]}),
        ("boolean", {"type": "boolean"}),
        ("string|boolean", {"type": "boolean"}),
        ("numeric|integer", {"type": "integer"}),
        ("required|integer|gt:0", {"required": True, "type": "integer", "min": 1}),
        ("integer|lt:10", {"type": "integer", "max": 9}),
        ("string|alpha_num|size:32", {"format": "alphaNum", "min": 32, "max": 32}),
        ("digits_between:1,3", {"digitsMin": 1, "digitsMax": 3}),
        ("digits:4", {"digitsMin": 4, "digitsMax": 4}),
        ("numeric|digits_between:1,100", {"type": "numeric", "regex": "^[0-9]{1,100}$"}),
        ("min:1|min:5|max:10|max:8", {"min": 5, "max": 8}),
        ("max:76561202255233023", {"max": 76561202255233023}),
        ("alpha_dash", {"format": "alphaDash"}),
        ("url", {"format": "url"}),
        ("ipv4", {"format": "ipv4"}),
        ("uuid", {"format": "uuid"}),
        ("json", {"format": "json"}),
        ("regex:/^[\\w.-]*$/", {"regex": "^[\\w.-]*$"}),
        ("regex:([a-z-0-9]+$)", {"regex": "[a-z-0-9]+$"}),
        ("regex:/^(?:a|b)$/|max:3", {"regex": "^(?:a|b)$", "max": 3}),
        ("not_regex:/^\\s/", {"notRegex": "^\\s"}),
    ],
)
def test_rule_translation(laravel: Any, typed: dict[str, Any]) -> None:
    rules = parse_rules(laravel, "rules")
    assert rules.model_dump(by_alias=True, exclude_defaults=True, mode="json") == typed
    # Formatting and parsing again gives the same typed rules.
    assert parse_rules(format_rules(rules), "rules") == rules


@pytest.mark.parametrize(
    ("php", "python", "matches", "refuses"),
    [
        ("/^abc$/", "^abc$", ["abc"], ["xabc"]),
        ("/^abc$/i", "(?i)^abc$", ["ABC"], ["abd"]),
        ("#^a/b$#", "^a/b$", ["a/b"], ["ab"]),
        ("/^a\\/b$/", "^a/b$", ["a/b"], ["ab"]),
        ("~^a\\~b$~", "^a~b$", ["a~b"], ["ab"]),
        ("{^a{1,2}$}", "^a{1,2}$", ["aa"], ["aaa"]),
        ("/^[[:alpha:]]+$/", "^[a-zA-Z]+$", ["abc"], ["ab1"]),
        ("/^[[:digit:][:upper:]]+$/", "^[0-9A-Z]+$", ["A1"], ["a1"]),
        ("/^(?<word>\\w+)$/", "^(?P<word>\\w+)$", ["abc"], ["a b"]),
        ("/^(?'word'\\w+)$/", "^(?P<word>\\w+)$", ["abc"], ["a b"]),
        ("/(?<=a)b/", "(?<=a)b", ["ab"], ["cb"]),
        ("/^abc\\z/", "^abc\\Z", ["abc"], ["abc\n"]),
        ("/^abc\\Z/", "^abc(?=\\n?\\Z)", ["abc", "abc\n"], ["abcd"]),
        ("/^abc$/D", "^abc\\Z", ["abc"], ["abc\n"]),
        ("/abc/A", "\\A(?:abc)", ["abcd"], ["xabc"]),
        ("/^a\\hb$/", "^a[ \\t]b$", ["a b", "a\tb"], ["ab"]),
        ("/^[a[]+$/", "^[a\\[]+$", ["a[a"], ["b"]),
        ("/^[a&&b]+$/", "^[a&\\&b]+$", ["a&b"], ["c"]),
        ("/^[+--]+$/", "^[+-\\-]+$", [",-"], ["a"]),
        ("/^a b$/x", "(?x)^a b$", ["ab"], ["a b"]),
        ("/^é+$/u", "^é+$", ["éé"], ["e"]),
    ],
)
def test_php_patterns(php: str, python: str, matches: list[str], refuses: list[str]) -> None:
    translated = php_to_python_pattern(php, "regex")
    assert translated == python
    for text in matches:
        assert re.search(translated, text), text
    for text in refuses:
        assert not re.search(translated, text), text
    # Export writes a PHP pattern that imports back to the same expression.
    assert php_to_python_pattern(python_to_php_pattern(translated), "regex") == translated


@pytest.mark.parametrize(
    ("typed", "laravel"),
    [
        ({}, ["string"]),
        # Laravel has no one-sided digit rule: the widest upper bound the model allows is used,
        # so this one comes back with digitsMax 64 (the only rule that does not round-trip).
        ({"digitsMin": 2}, ["string", "digits_between:2,64"]),
        ({"required": True, "max": 20}, ["required", "string", "max:20"]),
        ({"nullable": True, "type": "integer", "min": 1}, ["nullable", "integer", "min:1"]),
        ({"type": "numeric", "min": 0.5}, ["numeric", "min:0.5"]),
        ({"digitsMin": 3, "digitsMax": 3}, ["string", "digits:3"]),
        ({"in": ["a,b", 'say "hi"', ""]}, ["string", 'in:"a,b","say ""hi""",']),
        ({"in": [""]}, ["string", 'in:""']),
        ({"regex": "^a/b\\Z"}, ["string", "regex:/^a\\/b\\z/"]),
        ({"format": "alphaNum"}, ["string", "alpha_num"]),
    ],
)
def test_rule_formatting(typed: dict[str, Any], laravel: list[str]) -> None:
    rules = parse_rules([], "rules").model_validate(typed)
    assert format_rules(rules) == laravel
    again = parse_rules(laravel, "rules")
    if typed == {"digitsMin": 2}:
        assert again.digits_max == 64
    else:
        assert again == rules


def test_rule_types() -> None:
    assert parse_rules("bool", "r").type is VariableType.BOOLEAN
    assert parse_rules("ip", "r").format is VariableFormat.IP


# --- stop, readiness, install ------------------------------------------------------------


@pytest.mark.parametrize(
    ("stop", "kind", "expected"),
    [
        ("^C", StopType.SIGNAL, StopSignal.SIGINT),
        ("^c", StopType.SIGNAL, StopSignal.SIGINT),
        ("^^C", StopType.SIGNAL, StopSignal.SIGINT),
        ("^SIGTERM", StopType.SIGNAL, StopSignal.SIGTERM),
        ("^TERM", StopType.SIGNAL, StopSignal.SIGTERM),
        ("^X", StopType.SIGNAL, StopSignal.SIGKILL),
        ("", StopType.SIGNAL, StopSignal.SIGTERM),
        ("stop", StopType.COMMAND, "stop"),
        ("/shutdown 3 SIGTERM Server shutting down...", StopType.COMMAND, None),
    ],
)
def test_stop(stop: str, kind: StopType, expected: Any) -> None:
    document = egg()
    document["config"]["stop"] = stop
    method = blueprint_from_egg(document).spec.stop
    assert method.type is kind
    if kind is StopType.SIGNAL:
        assert method.signal is expected
    else:
        assert method.command == (expected or stop)
    exported = export_egg(blueprint_from_egg(document))["config"]["stop"]
    assert (
        blueprint_from_egg(dict(document, config=dict(document["config"], stop=exported))).spec.stop
        == method
    )


@pytest.mark.parametrize(
    ("done", "patterns", "regex"),
    [
        ("Done (", ["Done ("], False),
        (["Started", "Listening"], ["Started", "Listening"], False),
        ("", [], False),
        (None, [], False),
        (["regex:^Done \\(\\d+", "a.b"], ["^Done \\(\\d+", "a\\.b"], True),
    ],
)
def test_readiness(done: Any, patterns: list[str], regex: bool) -> None:
    document = egg()
    document["config"]["startup"] = json.dumps({"done": done, "userInteraction": []})
    readiness = blueprint_from_egg(document).spec.readiness
    assert readiness.console_patterns == patterns
    assert readiness.console_regex is regex


def test_bad_done_regex_names_the_field() -> None:
    document = egg()
    document["config"]["startup"] = json.dumps({"done": "regex:(unclosed"})
    assert rejected(document).startswith("config.startup.done: ")


@pytest.mark.parametrize(
    "installation",
    [
        {"script": "echo hi", "container": "", "entrypoint": "bash"},
        {"script": "", "container": "localhost/x", "entrypoint": "bash"},
        {"script": None, "container": "localhost/x", "entrypoint": "bash"},
        {},
    ],
)
def test_install_needs_container_and_script(installation: dict[str, Any]) -> None:
    assert blueprint_from_egg(egg(scripts={"installation": installation})).spec.install is None


def test_typed_find_values_become_text() -> None:
    files = {"c.json": {"parser": "json", "find": {"a": True, "b": 0, "c": {"x": False}}}}
    edits = blueprint_from_egg(with_files(files)).spec.config_files[0].edits
    assert [edit.value for edit in edits[:2]] == ["true", "0"]
    assert edits[2].replacements[0].match == "x"
    assert edits[2].replacements[0].value == "false"


def test_yml_parser_and_empty_finds() -> None:
    files = {
        "a.yml": {"parser": "yml", "find": {"a": "b"}},
        "empty.ini": {"parser": "ini", "find": {}},
        "empty-object.ini": {"parser": "ini", "find": {"a": {}}},
    }
    config_files = blueprint_from_egg(with_files(files)).spec.config_files
    assert [(c.path, c.parser.value) for c in config_files] == [("a.yml", "yaml")]


@pytest.mark.parametrize("empty", ["", "{}", "[]", {}, []])
def test_empty_config_fields(empty: Any) -> None:
    document = egg()
    document["config"] = {"files": empty, "startup": empty, "logs": empty, "stop": "stop"}
    assert blueprint_from_egg(document).spec.config_files == []


# --- formats and export -------------------------------------------------------------------


def test_ptdl_v1_images_list() -> None:
    document = egg(meta={"version": "PTDL_v1"}, images=["localhost/a:1", "localhost/b:2"])
    del document["docker_images"]
    blueprint = blueprint_from_egg(document)
    assert [(i.name, i.image) for i in blueprint.spec.images] == [
        ("localhost/a:1", "localhost/a:1"),
        ("localhost/b:2", "localhost/b:2"),
    ]
    exported = export_egg(blueprint)
    assert exported["images"] == ["localhost/a:1", "localhost/b:2"]
    assert "docker_images" not in exported


def test_plcn_v3_startup_commands_and_objects() -> None:
    document = egg(meta={"version": "PLCN_v3"}, startup_commands={"Default": "a", "Debug": "a -v"})
    del document["startup"]
    document["config"]["files"] = json.loads(document["config"]["files"])
    blueprint = blueprint_from_egg(document)
    assert [c.name for c in blueprint.spec.startup_commands] == ["Default", "Debug"]
    exported = export_egg(blueprint)
    assert exported["startup_commands"] == {"Default": "a", "Debug": "a -v"}
    assert "startup" not in exported
    assert isinstance(exported["config"]["files"], dict)
    assert exported["config"]["files"]["server.properties"]["find"]["server-port"] == (
        "{{server.allocations.default.port}}"
    )
    assert exported["config"]["startup"] == {"done": ")! For help, type "}
    assert all(isinstance(v["rules"], list) for v in exported["variables"])


def test_ptdl_export_uses_json_text_and_rule_strings() -> None:
    exported = export_egg(import_egg(json.dumps(TOY_EGG)))
    assert exported["meta"]["version"] == "PTDL_v2"
    for field in ("files", "startup", "logs"):
        assert isinstance(exported["config"][field], str)
    assert json.loads(exported["config"]["files"])["server.properties"]["find"] == {
        "server-port": "{{server.build.default.port}}",
        "motd": "{{server.build.env.MOTD}}",
    }
    assert exported["variables"][1]["rules"] == "required|string|max:64"
    assert exported["startup"] == TOY_EGG["startup"]
    assert exported["exported_at"] == "2024-05-01T10:00:00+00:00"
    assert exported["scripts"]["installation"]["script"] == "#!/bin/bash\necho install\n"


def test_export_defaults_to_plcn_v3_without_a_source() -> None:
    blueprint = import_egg(json.dumps(TOY_EGG))
    blueprint.spec.source = None
    exported = export_egg(blueprint)
    assert exported["meta"] == {"version": "PLCN_v3", "update_url": None}
    assert "exported_at" not in exported


def test_export_unknown_format() -> None:
    with pytest.raises(EggError, match="format: unknown egg format 'PTDL_v9'"):
        export_egg(import_egg(json.dumps(TOY_EGG)), format="PTDL_v9")


def test_dump_egg_json_and_yaml_round_trip() -> None:
    blueprint = import_egg(json.dumps(TOY_EGG))
    document = export_egg(blueprint)
    as_json = dump_egg(document, "json")
    as_yaml = dump_egg(document, "yaml")
    assert json.loads(as_json) == document
    assert load_document(as_yaml) == document
    assert "script: |" in as_yaml  # multi-line scripts as literal blocks
    assert import_egg(as_yaml, name=blueprint.metadata.name) == blueprint
    with pytest.raises(EggError, match="fmt: unknown output format"):
        dump_egg(document, "toml")  # type: ignore[arg-type]


def test_windows_line_endings_in_startup() -> None:
    blueprint = blueprint_from_egg(egg(startup="./a \\\r\n  --b {{MOTD}}\r\n"))
    assert blueprint.spec.startup_commands[0].command == "./a \\\n  --b {{MOTD}}"


def test_field_types_sort_and_flags() -> None:
    document = egg()
    document["variables"][0].update(
        {"field_type": None, "sort": 3, "user_viewable": 0, "user_editable": "1"}
    )
    document["variables"][1]["default_value"] = 25
    variables = blueprint_from_egg(document).spec.variables
    assert variables[0].field_type == "text"
    assert variables[0].sort == 3
    assert variables[0].user_viewable is False
    assert variables[0].user_editable is True
    assert variables[1].default == "25"


# --- the default port an egg declares -----------------------------------------------------


def port_egg(startup: str, files: dict[str, Any], script: str = "echo install") -> dict[str, Any]:
    document = egg(startup=startup)
    document["config"]["files"] = json.dumps(files)
    document["scripts"]["installation"]["script"] = script
    return document


def properties(find: dict[str, str]) -> dict[str, Any]:
    return {"server.properties": {"parser": "properties", "find": find}}


@pytest.mark.parametrize(
    ("document", "declared"),
    [
        pytest.param(
            port_egg("./srv --port {{SERVER_PORT}}", {}),
            ("TCP", 25565),
            id="startup-without-words-is-tcp-at-the-fallback-number",
        ),
        pytest.param(
            port_egg(
                "./srv",
                properties({"port": "{{server.build.default.port}}"}),
                "cat <<EOF > serverconfig.txt\nport=7777\nmaxplayers=8\nEOF",
            ),
            ("TCP", 7777),
            id="config-key-written-with-a-number-in-the-install-script",
        ),
        pytest.param(
            port_egg(
                "./srv",
                {
                    "server.cfg": {
                        "parser": "file",
                        "find": {
                            f"endpoint_add_{transport}": f'endpoint_add_{transport} "0.0.0.0:'
                            + '{{server.build.default.port}}"'
                            for transport in ("tcp", "udp")
                        },
                    }
                },
            ),
            ("TCPUDP", 25565),
            id="both-transports-named",
        ),
        pytest.param(
            port_egg("./srv -udpport={{SERVER_PORT}}", {}),
            ("UDP", 25565),
            id="udp-flag",
        ),
        pytest.param(
            port_egg(
                "./srv",
                {
                    "cfg.ini": {
                        "parser": "ini",
                        "find": {"net.UDP_PORT": "{{server.allocations.default.port}}"},
                    }
                },
                "server:\n  UDP_PORT: 9876\n",
            ),
            ("UDP", 9876),
            id="pelican-spelling-udp-key-and-yaml-number",
        ),
        pytest.param(
            port_egg(
                "./srv +port {{SERVER_PORT}}",
                {},
                "./steamcmd/steamcmd.sh +login anonymous +app_update 896660 +quit",
            ),
            ("TCPUDP", 25565),
            id="steamcmd-game-is-tcp-and-udp",
        ),
        pytest.param(
            port_egg(
                "./srv --tcp-port {{SERVER_PORT}}",
                {},
                "./steamcmd/steamcmd.sh +login anonymous +app_update 1 +quit",
            ),
            ("TCP", 25565),
            id="named-transport-beats-steamcmd",
        ),
        pytest.param(
            port_egg(
                "./srv",
                properties({"server-port": "{{server.build.default.port}}"}),
                "echo 'server-port=99999' > server.properties",
            ),
            ("TCP", 25565),
            id="out-of-range-number-is-ignored",
        ),
    ],
)
def test_an_egg_that_uses_the_port_declares_one_primary_port(
    document: dict[str, Any], declared: tuple[str, int]
) -> None:
    spec = blueprint_from_egg(document).spec
    assert [(p.name, p.protocol.value, p.port, p.primary, p.variable) for p in spec.ports] == [
        ("game", *declared, True, "SERVER_PORT")
    ]
    # Export writes back everything the port was read from, so the egg re-imports the same.
    for target in ("PTDL_v1", "PTDL_v2", "PLCN_v3"):
        assert (
            blueprint_from_egg(export_egg(blueprint_from_egg(document), format=target)).spec.ports
            == spec.ports
        )


def test_an_egg_that_never_uses_the_port_declares_none() -> None:
    document = port_egg(
        "./srv --memory {{SERVER_MEMORY}}", properties({"motd": "{{server.build.env.MOTD}}"})
    )
    assert blueprint_from_egg(document).spec.ports == []
