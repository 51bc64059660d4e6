import pytest

from stellarstack.api.startup import (
    StartupError,
    display_command,
    needs_shell,
    render_startup,
    shell_script,
)

VALUES = {"JAR": "server.jar", "NAME": "My $(reboot) `id` server; rm -rf /", "PORT": "25565"}


@pytest.mark.parametrize(
    ("template", "argv"),
    [
        ("java -jar {{JAR}}", ("java", "-jar", "server.jar")),
        ("./srv --name {{NAME}}", ("./srv", "--name", VALUES["NAME"])),
        ("./srv --name={{NAME}}", ("./srv", f"--name={VALUES['NAME']}")),
        ('./srv "--title" "{{NAME}} x"', ("./srv", "--title", f"{VALUES['NAME']} x")),
        ("./srv '{{ JAR }}'", ("./srv", "server.jar")),
        ("srv -p{{PORT}}", ("srv", "-p25565")),
    ],
)
def test_plain_commands_split_the_template_not_the_values(
    template: str, argv: tuple[str, ...]
) -> None:
    rendered = render_startup(template, VALUES)
    assert rendered.uses_shell is False
    assert rendered.argv == argv


@pytest.mark.parametrize(
    "template",
    [
        "./a && ./b",
        "./a | tee log",
        "./a; ./b",
        "./a $(cat x)",
        "./a ${HOME}",
        "./a $HOME",
        "./a `id`",
        "./a > log",
        "./start*.sh",
        "./a\n./b",
    ],
)
def test_shell_syntax_is_detected(template: str) -> None:
    assert needs_shell(template)


@pytest.mark.parametrize("template", ["java -Xmx1024M -jar {{JAR}}", "./srv {{NAME}}", "a=b c"])
def test_plain_commands_do_not_need_a_shell(template: str) -> None:
    assert not needs_shell(template)


@pytest.mark.parametrize(
    ("template", "script"),
    [
        ("./a {{NAME}} && ./b", './a "${NAME}" && ./b'),
        ('./a "--n={{NAME}}" && x', './a "--n=${NAME}" && x'),
        ("./a '--n={{NAME}}' && x", "./a '--n='\"${NAME}\"'' && x"),
        ('./a "it\\"s {{NAME}}" | x', './a "it\\"s ${NAME}" | x'),
        ("./a \\'{{NAME}} ; x", './a \\\'"${NAME}" ; x'),
    ],
)
def test_shell_placeholders_become_quoted_expansions(template: str, script: str) -> None:
    assert shell_script(template) == script
    rendered = render_startup(template, VALUES)
    assert rendered.uses_shell
    assert rendered.argv == ("/bin/sh", "-c", script)
    # The value's text never appears in the script.
    assert VALUES["NAME"] not in rendered.argv[-1]


def test_missing_value_is_an_error_in_both_modes() -> None:
    with pytest.raises(StartupError, match="JAR"):
        render_startup("java -jar {{JAR}}", {})
    with pytest.raises(StartupError, match="JAR"):
        render_startup("java -jar {{JAR}} && true", {})


def test_unbalanced_quotes_are_an_error() -> None:
    with pytest.raises(StartupError, match="cannot split"):
        render_startup("./srv 'open", {})


def test_empty_command_is_an_error() -> None:
    with pytest.raises(StartupError, match="empty"):
        render_startup("   ", {})


def test_display_command() -> None:
    assert display_command(render_startup("./srv {{NAME}}", {"NAME": "a b"})) == "./srv 'a b'"
    assert display_command(render_startup("./a && ./b", {})) == "./a && ./b"
