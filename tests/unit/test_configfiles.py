"""Config-file edits per format: only the planned keys change."""

from __future__ import annotations

import json

import pytest
import yaml

from stellarstack.api.blueprint import ConfigParser
from stellarstack.api.configfiles import (
    ConfigEditError,
    apply_config_file,
    creates_missing_file,
    new_value,
)
from stellarstack.api.workload import ConfigEditPlan, ConfigFilePlan


def plan(
    parser: str, *edits: tuple[str, str | None], replacements: tuple[tuple[str, str], ...] = ()
) -> ConfigFilePlan:
    return ConfigFilePlan(
        path="cfg",
        parser=ConfigParser(parser),
        edits=tuple(ConfigEditPlan(key, value, replacements) for key, value in edits),
    )


def test_properties_keeps_comments_and_order_and_appends_missing() -> None:
    text = "# Minecraft\nserver-port=25565\nmotd = hello\nonline-mode=true\n"
    out = apply_config_file(
        text,
        plan("properties", ("server-port", "30000"), ("motd", "hi there"), ("query.port", "30000")),
    )
    assert out == (
        "# Minecraft\nserver-port=30000\nmotd = hi there\nonline-mode=true\nquery.port=30000\n"
    )


def test_ini_sections_dotted_keys_and_new_sections() -> None:
    text = "top=1\n[server]\nport = 1\nname=a\n\n[other]\nport=9\n"
    out = apply_config_file(
        text,
        plan(
            "ini",
            ("server.port", "2"),
            ("top", "0"),
            ("server.max", "8"),
            ("fresh.key", "v"),
            ("new", "n"),
        ),
    )
    assert out == (
        "top=0\nnew=n\n[server]\nport = 2\nname=a\nmax=8\n\n[other]\nport=9\n\n[fresh]\nkey=v\n"
    )


def test_ini_key_without_a_section_goes_above_the_first_section() -> None:
    assert apply_config_file("a=1\n[s]\nb=2\n", plan("ini", ("port", "1"))) == (
        "a=1\nport=1\n[s]\nb=2\n"
    )


def test_json_paths_create_objects_and_keep_types() -> None:
    text = json.dumps({"server": {"port": 1, "public": False, "name": "a"}, "list": [1]})
    out = json.loads(
        apply_config_file(
            text,
            plan(
                "json",
                ("server.port", "7777"),
                ("server.public", "true"),
                ("server.name", "b"),
                ("rcon.password", "secret"),
            ),
        )
    )
    assert out == {
        "server": {"port": 7777, "public": True, "name": "b"},
        "list": [1],
        "rcon": {"password": "secret"},
    }
    assert json.loads(apply_config_file("", plan("json", ("a.b", "c")))) == {"a": {"b": "c"}}


def test_yaml_like_json() -> None:
    out = yaml.safe_load(
        apply_config_file(
            "listeners:\n  host: 0.0.0.0\n  port: 1\n", plan("yaml", ("listeners.port", "25577"))
        )
    )
    assert out == {"listeners": {"host": "0.0.0.0", "port": 25577}}


def test_xml_elements_by_path() -> None:
    text = "<dedicated><system_config><server_port>1</server_port></system_config></dedicated>"
    out = apply_config_file(
        text,
        plan(
            "xml",
            ("dedicated.system_config.server_port", "2350"),
            ("dedicated.server_options.name", "Mine"),
        ),
    )
    assert "<server_port>2350</server_port>" in out
    assert "<server_options><name>Mine</name></server_options>" in out


def test_xml_entities_are_refused() -> None:
    bomb = '<!DOCTYPE x [<!ENTITY a "aaaa">]><x>&a;</x>'
    with pytest.raises(ConfigEditError, match="DOCTYPE"):
        apply_config_file(bomb, plan("xml", ("x", "1")))


def test_file_parser_replaces_lines_by_prefix_only() -> None:
    text = "SERVER_NAME Old\nSERVER_PORT 4534\nTALK_TO_MASTER 0\n"
    out = apply_config_file(
        text, plan("file", ("SERVER_NAME", "SERVER_NAME New name"), ("MISSING", "MISSING x"))
    )
    assert out == "SERVER_NAME New name\nSERVER_PORT 4534\nTALK_TO_MASTER 0\n"


def test_conditional_replacements() -> None:
    edit = ConfigEditPlan(
        "host", None, (("regex:^(127\\.0\\.0\\.1|localhost)", "0.0.0.0"), ("old", "new"))
    )
    assert new_value(edit, "127.0.0.1:25577") == "0.0.0.0"
    assert new_value(edit, "old") == "new"
    assert new_value(edit, "10.0.0.1") is None
    text = "host=localhost\n"
    assert apply_config_file(text, ConfigFilePlan("c", ConfigParser.PROPERTIES, (edit,))) == (
        "host=0.0.0.0\n"
    )


def test_unparseable_files_name_the_path() -> None:
    with pytest.raises(ConfigEditError, match="cfg: not valid json"):
        apply_config_file("{nope", plan("json", ("a", "b")))


def test_which_formats_create_missing_files() -> None:
    assert creates_missing_file(ConfigParser.PROPERTIES)
    assert not creates_missing_file(ConfigParser.FILE)


def test_an_empty_file_key_replaces_every_line() -> None:
    assert apply_config_file("8005\n", plan("file", ("", "9000"))) == "9000\n"
