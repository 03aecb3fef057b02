from __future__ import annotations

import textwrap
from pathlib import Path

import botocore.session
import pytest

from runyard.build.config_file import (
    RUNTIME_TO_API,
    BuildSection,
    ConfigFile,
    ConfigFileError,
    NetworkSection,
    RunSection,
    load_config_file,
    parse_config_file,
)

# Every apprunner.yaml example in the developer guide (spec/003). The PDF text lost some indentation
# at page breaks (the extended Python and Node.js examples); it is restored here as the guide means it.
MINIMAL = """\
version: 1.0
runtime: python3
build:
  commands:
    build:
      - pip install pipenv
      - pipenv install
run:
  command: python app.py
"""

COMPLETE = """\
version: 1.0
runtime: python3
build:
  commands:
    pre-build:
      - wget -c https://s3.amazonaws.com/DOC-EXAMPLE-BUCKET/test-lib.tar.gz -O - | tar -xz
    build:
      - pip install pipenv
      - pipenv install
    post-build:
      - python manage.py test
  env:
    - name: DJANGO_SETTINGS_MODULE
      value: "django_apprunner.settings"
    - name: MY_VAR_EXAMPLE
      value: "example"
run:
  runtime-version: 3.7.7
  command: pipenv run gunicorn django_apprunner.wsgi --log-file -
  network:
    port: 8000
    env: MY_APP_PORT
  env:
    - name: MY_VAR_EXAMPLE
      value: "example"
"""

PYTHON_END_TO_END = """\
version: 1.0
runtime: python3
build:
  commands:
    build:
      - pip install -r requirements.txt
run:
  command: python server.py
"""

NODE_MINIMAL = """\
version: 1.0
runtime: nodejs12
build:
  commands:
    build:
      - npm install --production
run:
  command: node app.js
"""

NODE_EXTENDED = """\
version: 1.0
runtime: nodejs12
build:
  commands:
    pre-build:
      - npm install --only=dev
      - node test.js
    build:
      - npm install --production
    post-build:
      - node node_modules/ejs/postinstall.js
  env:
    - name: MY_VAR_EXAMPLE
      value: "example"
run:
  runtime-version: 12.18.4
  command: node app.js
  network:
    port: 8000
    env: APP_PORT
  env:
    - name: MY_VAR_EXAMPLE
      value: "example"
"""

NODE_GRUNT = """\
version: 1.0
runtime: nodejs12
build:
  commands:
    pre-build:
      - npm install grunt grunt-cli
      - npm install --only=dev
      - npm run build
    build:
      - npm install --production
run:
  runtime-version: 12.18.4
  command: node app.js
  network:
    port: 8000
    env: APP_PORT
"""

# The run keys of the revised builds (pre-run, secrets), which the spec's reference predates.
REVISED = """\
version: 1.0
runtime: python311
build:
  commands:
    build:
      - pip3 install -r requirements.txt
run:
  runtime-version: 3.11
  pre-run:
    - pip3 install -r requirements.txt
  command: python3 app.py
  secrets:
    - name: DB_PASSWORD
      value-from: "arn:aws:secretsmanager:us-east-1:000000000000:secret:db-AbCdEf"
    - name: API_KEY
      value-from: "arn:aws:ssm:us-east-1:000000000000:parameter/api-key"
"""


@pytest.mark.parametrize(
    "text",
    [MINIMAL, COMPLETE, PYTHON_END_TO_END, NODE_MINIMAL, NODE_EXTENDED, NODE_GRUNT, REVISED],
    ids=["minimal", "complete", "python-end-to-end", "node-minimal", "node-extended", "node-grunt", "revised"],
)
def test_every_example_parses(text: str) -> None:
    config = parse_config_file(text)
    assert config.version == "1.0"
    assert config.build.build
    assert config.run.command


def test_complete_example_in_full() -> None:
    assert parse_config_file(COMPLETE) == ConfigFile(
        version="1.0",
        runtime="python3",
        build=BuildSection(
            pre_build=("wget -c https://s3.amazonaws.com/DOC-EXAMPLE-BUCKET/test-lib.tar.gz -O - | tar -xz",),
            build=("pip install pipenv", "pipenv install"),
            post_build=("python manage.py test",),
            env=(("DJANGO_SETTINGS_MODULE", "django_apprunner.settings"), ("MY_VAR_EXAMPLE", "example")),
        ),
        run=RunSection(
            runtime_version="3.7.7",
            command="pipenv run gunicorn django_apprunner.wsgi --log-file -",
            network=NetworkSection(port="8000", env="MY_APP_PORT"),
            env=(("MY_VAR_EXAMPLE", "example"),),
        ),
    )


def test_revised_keys() -> None:
    config = parse_config_file(REVISED)
    assert config.api_runtime == "PYTHON_311"
    assert config.run.runtime_version == "3.11"
    assert config.run.pre_run == ("pip3 install -r requirements.txt",)
    assert [name for name, _ in config.run.secrets] == ["DB_PASSWORD", "API_KEY"]
    assert config.run.secrets[1][1] == "arn:aws:ssm:us-east-1:000000000000:parameter/api-key"


def test_minimal_file_gets_the_defaults() -> None:
    config = parse_config_file(MINIMAL)
    assert config.api_runtime == "PYTHON_3"
    assert config.build == BuildSection(build=("pip install pipenv", "pipenv install"))
    assert (config.build.pre_build, config.build.post_build, config.build.env) == ((), (), ())
    assert config.run == RunSection(command="python app.py")
    assert config.run.network == NetworkSection(port="8080", env=None)
    assert (config.run.runtime_version, config.run.pre_run, config.run.env, config.run.secrets) == (None, (), (), ())


def test_values_keep_the_text_written() -> None:
    # Plain YAML would turn these into 3.1, 1.1, True and a date.
    config = parse_config_file(
        MINIMAL.replace("run:\n", "run:\n  runtime-version: 3.10\n")
        + "  env:\n"
        + "    - {name: A, value: 1.10}\n    - {name: B, value: yes}\n    - {name: C, value: 2021-01-01}\n"
        + '    - {name: D, value: ""}\n'
    )
    assert config.run.runtime_version == "3.10"
    assert config.run.env == (("A", "1.10"), ("B", "yes"), ("C", "2021-01-01"), ("D", ""))


def test_version_may_be_quoted() -> None:
    assert parse_config_file(MINIMAL.replace("version: 1.0", 'version: "1.0"')).version == "1.0"


def test_port_is_normalised() -> None:
    assert parse_config_file(MINIMAL + "  network:\n    port: '08000'\n").run.network.port == "8000"


def _error(text: str) -> str:
    with pytest.raises(ConfigFileError) as info:
        parse_config_file(text)
    return str(info.value)


def _minimal_with_run(extra: str) -> str:
    return MINIMAL + textwrap.indent(textwrap.dedent(extra), "  ")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "apprunner.yaml: the file is empty (expected version, runtime, build, run)"),
        (
            "- version: 1.0\n",
            "apprunner.yaml: the file must be a mapping of keys (version, runtime, build, run), got a list",
        ),
        (MINIMAL.replace("version: 1.0\n", ""), "apprunner.yaml: missing required key version"),
        (MINIMAL.replace("version: 1.0", "version: 2.0"), "apprunner.yaml: version must be 1.0, got '2.0'"),
        (MINIMAL.replace("version: 1.0", "version: 1"), "apprunner.yaml: version must be 1.0, got '1'"),
        (MINIMAL.replace("runtime: python3\n", ""), "apprunner.yaml: missing required key runtime"),
        (
            MINIMAL.replace("python3", "python2"),
            "apprunner.yaml: runtime 'python2' is not a managed runtime (expected one of python3, python311, nodejs12,"
            " nodejs14, nodejs16, nodejs18, nodejs22, corretto8, corretto11, go1, dotnet6, php81, ruby31)",
        ),
        (
            MINIMAL.replace("build:\n  commands", "buid:\n  commands"),
            "apprunner.yaml: unknown key 'buid' at the top level (expected version, runtime, build, run)",
        ),
        (
            "version: 1.0\nruntime: go1\nrun:\n  command: ./app\n",
            "apprunner.yaml: missing required key build.commands.build",
        ),
        (
            MINIMAL.replace("    build:\n", "    biuld:\n"),
            "apprunner.yaml: unknown key 'biuld' in build.commands (expected pre-build, build, post-build)",
        ),
        (
            MINIMAL.replace("  commands:", "  command:"),
            "apprunner.yaml: unknown key 'command' in build (expected commands, env)",
        ),
        (
            MINIMAL.replace("      - pip install pipenv\n      - pipenv install\n", "      pip install pipenv\n"),
            "apprunner.yaml: build.commands.build must be a list of commands, one per '- ' line,"
            " got 'pip install pipenv'",
        ),
        (
            MINIMAL.replace("- pipenv install", "- echo status: ok"),
            "apprunner.yaml: build.commands.build[1] must be a command string, got a mapping"
            " (quote commands that contain ': ')",
        ),
        (
            MINIMAL.replace("- pipenv install", "-"),
            "apprunner.yaml: build.commands.build[1] must be a command string, got nothing",
        ),
        (
            MINIMAL.replace("    build:\n      - pip install pipenv\n      - pipenv install\n", "    build: []\n"),
            "apprunner.yaml: missing required key build.commands.build",
        ),
        (
            MINIMAL.replace("  commands:", "  env: FOO=bar\n  commands:"),
            "apprunner.yaml: build.env must be a list of entries with name and value, got 'FOO=bar'",
        ),
        (MINIMAL.replace("  command: python app.py\n", ""), "apprunner.yaml: missing required key run.command"),
        (MINIMAL.replace("run:\n  command: python app.py\n", ""), "apprunner.yaml: missing required key run.command"),
        (MINIMAL.replace("python app.py", '""'), "apprunner.yaml: run.command must not be empty"),
        (
            MINIMAL.replace("python app.py", "[python, app.py]"),
            "apprunner.yaml: run.command must be a string, got a list",
        ),
        (
            MINIMAL.replace("  command:", "  comand:"),
            "apprunner.yaml: unknown key 'comand' in run"
            " (expected runtime-version, pre-run, command, network, env, secrets)",
        ),
        (
            _minimal_with_run("network:\n  port: http\n"),
            "apprunner.yaml: run.network.port must be a port number from 1 to 65535, got 'http'",
        ),
        (
            _minimal_with_run("network:\n  port: 0\n"),
            "apprunner.yaml: run.network.port must be a port number from 1 to 65535, got '0'",
        ),
        (
            _minimal_with_run("network:\n  port: 70000\n"),
            "apprunner.yaml: run.network.port must be a port number from 1 to 65535, got '70000'",
        ),
        (
            _minimal_with_run("network:\n  host: 0.0.0.0\n"),
            "apprunner.yaml: unknown key 'host' in run.network (expected port, env)",
        ),
        (
            _minimal_with_run("network: 8000\n"),
            "apprunner.yaml: run.network must be a mapping, got '8000'",
        ),
        (
            _minimal_with_run("runtime-version: latest\n"),
            "apprunner.yaml: run.runtime-version must be major[.minor[.patch]], for example 3.11 or 18.19.0,"
            " got 'latest'",
        ),
        (
            _minimal_with_run("pre-run: pip install x\n"),
            "apprunner.yaml: run.pre-run must be a list of commands, one per '- ' line, got 'pip install x'",
        ),
        (
            _minimal_with_run("env:\n  - value: x\n"),
            "apprunner.yaml: missing required key run.env[0].name",
        ),
        (
            _minimal_with_run("env:\n  - name: A\n"),
            "apprunner.yaml: missing required key run.env[0].value",
        ),
        (
            _minimal_with_run("env:\n  - name: A\n    vaule: x\n"),
            "apprunner.yaml: unknown key 'vaule' in run.env[0] (expected name, value)",
        ),
        (
            _minimal_with_run("secrets:\n  - name: A\n    value: x\n"),
            "apprunner.yaml: unknown key 'value' in run.secrets[0] (expected name, value-from)",
        ),
        (
            _minimal_with_run("secrets:\n  - name: A\n"),
            "apprunner.yaml: missing required key run.secrets[0].value-from",
        ),
        (
            "version: 1.0\nruntime: python3\nrun:\n  command: a: b\n",
            "apprunner.yaml line 4, column 13: YAML syntax error: mapping values are not allowed here",
        ),
        (
            "version: 1.0\n\truntime: python3\n",
            "apprunner.yaml line 2, column 1: YAML syntax error: while scanning for the next token,"
            " found character '\\t' that cannot start any token",
        ),
        (
            MINIMAL + "---\n" + MINIMAL,
            "apprunner.yaml line 10, column 1: YAML syntax error: expected a single document in the stream,"
            " but found another document",
        ),
        (
            "version: 1.0\x07\n",
            "apprunner.yaml: YAML error: unacceptable character #x0007: special characters are not allowed",
        ),
    ],
)
def test_errors_say_what_and_where(text: str, message: str) -> None:
    assert _error(text) == message


@pytest.mark.parametrize(
    "extra",
    [
        "secrets:\n  - hunter2-SECRET\n",
        "secrets:\n  - name: A\n    value-from: [hunter2-SECRET]\n",
        "secrets:\n  - name: A\n    value-from: !!binary aHVudGVyMi1TRUNSRVQ=\n",
        "env:\n  - name: A\n    value: !!int 12345\n",
        "secrets:\n  - name: A\n    value-from: hunter2-SECRET: x\n",
    ],
)
def test_errors_never_show_values(extra: str) -> None:
    message = _error(_minimal_with_run(extra))
    assert "hunter2" not in message
    assert "SECRET" not in message
    assert "12345" not in message


def test_loads_from_the_source_directory(tmp_path: Path) -> None:
    (tmp_path / "apprunner.yaml").write_text(NODE_MINIMAL)
    assert load_config_file(tmp_path).api_runtime == "NODEJS_12"


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigFileError) as info:
        load_config_file(tmp_path)
    assert str(info.value) == "no apprunner.yaml in the source directory"


def test_yml_spelling_is_not_read_but_pointed_out(tmp_path: Path) -> None:
    (tmp_path / "apprunner.yml").write_text(NODE_MINIMAL)
    with pytest.raises(ConfigFileError) as info:
        load_config_file(tmp_path)
    assert (
        str(info.value)
        == "no apprunner.yaml in the source directory (found apprunner.yml; App Runner reads only apprunner.yaml)"
    )


def test_file_that_is_not_utf8(tmp_path: Path) -> None:
    (tmp_path / "apprunner.yaml").write_bytes(b"version: 1.0\nruntime: \xff\n")
    with pytest.raises(ConfigFileError) as info:
        load_config_file(tmp_path)
    assert str(info.value) == "apprunner.yaml: the file is not UTF-8 text"


def test_runtime_names_match_the_api_enum_both_ways() -> None:
    model = botocore.session.get_session().get_service_model("apprunner")
    api_runtimes = model.shape_for("Runtime").enum
    assert sorted(RUNTIME_TO_API.values()) == sorted(api_runtimes)
    # The file names follow the guide's `<language-name><major-version>` convention.
    assert {name: name.lower().replace("_", "") for name in api_runtimes} == {
        api: file for file, api in RUNTIME_TO_API.items()
    }
