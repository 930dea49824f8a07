"""docker/: the deployment checked without a container engine (none on the machines that run the suite).

- docker/compose.yaml validates against the Compose specification's JSON schema (the copy check-jsonschema
  vendors, pinned in requirements/main.txt), and broken copies of it do not; what the schema cannot see
  (dependencies on missing services or on services without a health check, bind mounts, machine paths,
  registry host names) is checked beside it;
- each Dockerfile installs exactly the pinned requirements file `make install` syncs a venv from, and nothing
  beside it but the project itself;
- every program a service runs (command and health check) comes from a distribution pinned in its image's
  requirements file (found through the console scripts of that venv), or from the base image;
- every `airflow`, `superset`, `celery`, `gunicorn`, `chiso` and `python` command line is parsed by that
  program's own CLI (or compiled, its imports resolved), run from the venv with the service's environment;
  deliberately wrong lines are rejected by the same run;
- no secret is written in the file; every variable it reads is listed in docker/.env.example.
"""

from __future__ import annotations

import copy
import importlib.metadata
import json
import os
import re
import shlex
import subprocess
from importlib import resources
from pathlib import Path

import jsonschema
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DOCKER = ROOT / "docker"
COMPOSE = DOCKER / "compose.yaml"
IMAGE_ROOT = "/opt/chiso"  # WORKDIR of both images: the repository's files are copied there
BASE_IMAGE_PROGRAMS = {"bash", "sh", "python", "nproc"}  # python:3.11-slim-bookworm has them
SHELL_BUILTINS = {"set", "export", "cd", "test", "[", "true"}
# Where the containers keep files (volumes, the images' own folders): any other absolute path is a machine's.
CONTAINER_PATHS = ("/opt/chiso", "/opt/airflow", "/opt/superset", "/var/lib/postgresql/data", "/data")


def in_a_container(path: str) -> bool:
    return any(path == top or path.startswith(top + "/") for top in CONTAINER_PATHS)


def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def interpolate(value: str) -> str:
    """Compose's interpolation with the defaults (`${X:-d}` -> d, any other `${X...}` -> "x"); `$$` is `$`."""
    value = value.replace("$$", "\0")
    value = re.sub(r"\$\{\w+:?-([^}]*)\}", r"\1", value)
    value = re.sub(r"\$\{\w+[^}]*\}", "x", value)
    return value.replace("\0", "$")


# --- the Compose specification -----------------------------------------------------------------------------


def compose_schema() -> dict:
    vendor = resources.files("check_jsonschema.builtin_schemas.vendor")
    return json.loads(vendor.joinpath("compose-spec.json").read_text())


def schema_errors(doc: dict) -> list[str]:
    schema = compose_schema()
    validator = jsonschema.validators.validator_for(schema)
    validator.check_schema(schema)
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator(schema).iter_errors(doc)]


def test_the_schema_is_the_compose_specification_of_the_pinned_check_jsonschema() -> None:
    schema = compose_schema()
    assert schema["$id"] == "compose_spec.json"
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert importlib.metadata.version("check-jsonschema") == pins("requirements/main.txt")["check-jsonschema"]


def test_compose_file_validates_against_the_compose_schema() -> None:
    assert schema_errors(compose()) == []


# The schema accepts a string wherever a number goes (`${X}` interpolates to one), so a wrong type is a
# number or a mapping where it wants a string or a list.
def _unknown_key(doc: dict) -> str:
    doc["services"]["airflow-scheduler"]["comand"] = doc["services"]["airflow-scheduler"].pop("command")
    return "services/airflow-scheduler"


def _wrong_type(doc: dict) -> str:
    doc["services"]["postgres"]["healthcheck"]["interval"] = 5  # a duration is a string: "5s"
    return "services/postgres/healthcheck/interval"


def _ports_as_a_mapping(doc: dict) -> str:
    doc["services"]["superset"]["ports"] = {"8088": 8088}
    return "services/superset/ports"


def _unknown_condition(doc: dict) -> str:
    doc["services"]["superset"]["depends_on"]["superset-init"]["condition"] = "service_finished"
    return "services/superset/depends_on"


@pytest.mark.parametrize("break_it", [_unknown_key, _wrong_type, _ports_as_a_mapping, _unknown_condition])
def test_a_broken_compose_file_does_not_validate(break_it) -> None:
    doc = copy.deepcopy(compose())
    where = break_it(doc)
    errors = schema_errors(doc)
    assert any(e.startswith(where) for e in errors), errors  # (and its service, for unevaluated properties)


def strings(node) -> list[str]:
    if isinstance(node, dict):
        return [s for value in node.values() for s in strings(value)]
    if isinstance(node, list):
        return [s for value in node for s in strings(value)]
    return [node] if isinstance(node, str) else []


def reference_problems(doc: dict) -> list[str]:
    """What `docker compose up` would refuse, or what ties the file to one machine: the schema lets it by."""
    services, volumes, problems = doc["services"], set(doc.get("volumes") or {}), []
    for name, svc in services.items():
        deps = svc.get("depends_on") or {}
        for dep, spec in deps.items() if isinstance(deps, dict) else ((d, {}) for d in deps):
            condition = spec.get("condition", "service_started")
            if dep not in services:
                problems.append(f"{name} depends on {dep}, which is no service")
            elif condition == "service_healthy" and not services[dep].get("healthcheck"):
                problems.append(f"{name} waits for {dep} to be healthy, which has no health check")
            elif condition == "service_completed_successfully" and services[dep].get("restart") != "no":
                problems.append(f"{name} waits for {dep} to complete, which restarts")
            elif services[dep].get("profiles") and not svc.get("profiles"):
                problems.append(f"{name} depends on {dep}, which only starts with a profile")
        for volume in svc.get("volumes") or []:
            source = volume.split(":")[0] if isinstance(volume, str) else volume.get("source")
            if source not in volumes:
                problems.append(f"{name}: volume {volume} is not a named volume of the file")
        image = svc.get("image", "")
        if "/" in image and re.search(r"[.:]|^localhost$", image.split("/")[0]):
            problems.append(f"{name}: image {image} names a registry host")
        if build := svc.get("build"):
            dockerfile = COMPOSE.parent / build["context"] / build["dockerfile"]
            if build["context"] != ".." or not dockerfile.is_file():
                problems.append(f"{name}: builds {build}, not a Dockerfile of the repository")
        for text in strings(svc):
            for path in re.findall(r"(?<![\w.$}/-])/[\w./-]+", re.sub(r"\w+://\S*", "", text)):
                if not in_a_container(path):
                    problems.append(f"{name}: {path} is a path of some machine, not of a container")
    return problems


def test_compose_references_only_what_it_defines_and_no_machine() -> None:
    assert reference_problems(compose()) == []


def _depends_on_a_service_without_health_check(doc: dict) -> None:
    doc["services"]["superset-init"]["depends_on"] = {"airflow-manifest": {"condition": "service_healthy"}}


def _bind_mount(doc: dict) -> None:
    doc["services"]["airflow-scheduler"]["volumes"] = ["/home/ops/chiso/dags:/opt/chiso/dags"]


def _registry_image(doc: dict) -> None:
    doc["services"]["redis"]["image"] = "registry.example.vn:5000/redis:7.2-bookworm"


def _machine_path(doc: dict) -> None:
    doc["services"]["superset-import"]["command"] = ["python", "/srv/chiso/docker/superset_import.py"]


@pytest.mark.parametrize("break_it", [_depends_on_a_service_without_health_check, _bind_mount,
                                      _registry_image, _machine_path])
def test_references_the_schema_misses_are_caught(break_it) -> None:
    doc = copy.deepcopy(compose())
    break_it(doc)
    assert schema_errors(doc) == []  # the schema lets each of them by
    assert reference_problems(doc)


# --- images and their pinned environments ---------------------------------------------------------------


def venv_of_requirements() -> dict[str, Path]:
    """requirements file -> venv, as the Makefile installs them (scripts/install-venv.sh VENV FILE)."""
    pairs = re.findall(r"install-venv\.sh (\S+) (requirements/\S+)", (ROOT / "Makefile").read_text())
    assert pairs, "the Makefile installs no venv with scripts/install-venv.sh"
    return {req: ROOT / venv for venv, req in pairs}


def pins(requirements: str) -> dict[str, str]:
    lines = (ROOT / requirements).read_text().splitlines()
    found = (re.match(r"([A-Za-z0-9._-]+)(?:\[[^]]*\])?==(\S+)", line) for line in lines)
    return {normalize(m[1]): m[2] for m in found if m}


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def dockerfile_installs(dockerfile: Path) -> tuple[list[str], list[str]]:
    """The requirements files and the other arguments of `uv pip install` in a Dockerfile's RUN steps."""
    requirements, others = [], []
    text = dockerfile.read_text().replace("\\\n", " ")
    for run in re.findall(r"^RUN (.+)$", text, re.M):
        for step in re.split(r"&&|;", run):
            words = shlex.split(step)
            if words[:2] == ["pip", "install"] and all(w.startswith("uv==") for w in words[2:]) and words[2:]:
                continue  # the installer itself, pinned
            assert words[:2] != ["pip", "install"], f"{dockerfile.name}: plain pip install: {step}"
            if words[:3] != ["uv", "pip", "install"]:
                continue
            args = iter(words[3:])
            for word in args:
                if word in ("-r", "--requirement"):
                    requirements.append(next(args))
                elif not word.startswith("-"):
                    others.append(word)
    return requirements, others


def images() -> dict[str, dict]:
    """Each image built here (by Dockerfile): requirements file, venv, pins, whether it has the project."""
    venvs = venv_of_requirements()
    found = {}
    for dockerfile in sorted(DOCKER.glob("*.Dockerfile")):
        requirements, others = dockerfile_installs(dockerfile)
        assert len(requirements) == 1, f"{dockerfile.name} installs {requirements}, not one pinned file"
        req = requirements[0]
        assert req in venvs, f"{dockerfile.name} installs {req}, which no venv of the Makefile uses"
        assert f"COPY {req} {req}" in dockerfile.read_text(), f"{dockerfile.name} does not copy {req}"
        # Nothing but the pinned file, except the project itself without dependencies.
        assert others in ([], ["."]), f"{dockerfile.name} installs more than {req}: {others}"
        if others:
            assert re.search(r"uv pip install [^\n]*--no-deps -e \.", dockerfile.read_text())
        found[f"docker/{dockerfile.name}"] = {"requirements": req, "venv": venvs[req], "pins": pins(req),
                                             "project": bool(others)}
    return found


def test_each_image_installs_the_pinned_file_its_venv_is_synced_from() -> None:
    found = images()
    assert set(found) == {"docker/airflow.Dockerfile", "docker/superset.Dockerfile"}
    assert found["docker/airflow.Dockerfile"]["requirements"] == "requirements/main.txt"
    assert found["docker/airflow.Dockerfile"]["project"]
    assert found["docker/superset.Dockerfile"]["requirements"] == "requirements/superset.txt"


def test_a_dockerfile_that_adds_a_package_is_caught(tmp_path) -> None:
    bad = tmp_path / "bad.Dockerfile"
    bad.write_text("FROM python:3.11-slim\nCOPY requirements/superset.txt requirements/superset.txt\n"
                   "RUN uv pip install --system -r requirements/superset.txt gunicorn\n")
    assert dockerfile_installs(bad) == (["requirements/superset.txt"], ["gunicorn"])
    bad.write_text("FROM python:3.11-slim\n"
                   "RUN pip install uv && uv pip install --system -r requirements/main.txt\n")
    with pytest.raises(AssertionError, match="plain pip install"):  # an unpinned installer
        dockerfile_installs(bad)


# --- what each service runs -------------------------------------------------------------------------------


def shell_commands(script: str) -> list[list[str]]:
    """The commands of a shell script (one a line, or joined by ; && || |, or in `$(...)`), builtins such
    as `set` left out."""
    commands = [c for inner in re.findall(r"\$\(([^()]*)\)", script) for c in shell_commands(inner)]
    lexer = shlex.shlex(script.replace("\n", ";"), posix=True, punctuation_chars=";&|")
    lexer.whitespace_split = True
    words = []
    for token in [*lexer, ";"]:
        if set(token) <= set(";&|"):
            while words and words[0] == "exec":
                words = words[1:]
            if words and words[0] not in SHELL_BUILTINS:
                commands.append(words)
            words = []
        else:
            words.append(token)
    return commands


def service_argvs(service: dict, raw: bool = False) -> list[list[str]]:
    """Every program invocation of a service: its command and its health check, `bash -c` scripts split;
    interpolated with the defaults unless raw."""
    argvs = []
    if command := service.get("command"):
        argvs.append(shlex.split(command) if isinstance(command, str) else list(command))
    assert "entrypoint" not in service, "an entrypoint: check its program here too"
    test = (service.get("healthcheck") or {}).get("test")
    if test and test[0] == "CMD":
        argvs.append(test[1:])
    elif test and test[0] == "CMD-SHELL":
        argvs.append(["sh", "-c", test[1]])
    lines = []
    for argv in argvs:
        argv = argv if raw else [interpolate(word) for word in argv]
        if argv[:2] in (["bash", "-c"], ["sh", "-c"]):
            lines += [argv[:1], *shell_commands(argv[2])]
        else:
            lines.append(argv)
    return lines


def built_services() -> dict[str, tuple[dict, dict]]:
    """Services built from a Dockerfile here: name -> (service, image)."""
    found = images()
    return {name: (svc, found[f"docker/{Path(svc['build']['dockerfile']).name}"])
            for name, svc in compose()["services"].items() if "build" in svc}


REQUIRED_SERVICES = {"postgres", "redis", "init", "airflow-apiserver", "airflow-scheduler",
                     "airflow-dag-processor", "airflow-triggerer", "airflow-worker-extract",
                     "airflow-worker-dbt", "superset-init", "superset", "superset-worker", "superset-beat",
                     "superset-import"}


def test_the_deployment_has_every_service_of_a_night() -> None:
    services = compose()["services"]
    assert REQUIRED_SERVICES <= set(services)
    commands = {name: " ".join(" ".join(argv) for argv in service_argvs(svc))
                for name, svc in services.items()}
    assert "airflow db migrate" in commands["init"]
    assert "airflow celery worker --queues default,extract" in commands["airflow-worker-extract"]
    assert "airflow celery worker --queues default,dbt" in commands["airflow-worker-dbt"]
    for step in ("superset db upgrade", "superset fab create-admin", "superset init"):
        assert step in commands["superset-init"]
    assert commands["superset-import"] == "python /opt/chiso/docker/superset_import.py"
    assert "celery_app:app worker" in commands["superset-worker"]
    assert "celery_app:app beat" in commands["superset-beat"]
    assert services["airflow-scheduler"]["environment"]["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"


def console_scripts(venv: Path) -> dict[str, tuple[str, str]]:
    """Console script -> (distribution, version) in a venv, read by the venv's own interpreter."""
    code = ("import importlib.metadata as m, json; print(json.dumps({e.name: (e.dist.name, e.dist.version) "
            "for d in m.distributions() for e in d.entry_points if e.group == 'console_scripts'}))")
    python = venv / "bin" / "python"
    assert python.exists(), f"{venv.name} is missing: run `make install`"
    out = subprocess.run([str(python), "-c", code], capture_output=True, text=True, check=True).stdout
    return {name: tuple(dist) for name, dist in json.loads(out).items()}


def test_every_service_program_comes_from_its_image_pinned_environment() -> None:
    services = built_services()
    assert REQUIRED_SERVICES - {"postgres", "redis"} <= set(services)
    scripts = {}
    project = normalize(re.search(r'^name = "([^"]+)"', (ROOT / "pyproject.toml").read_text(), re.M)[1])
    problems = []
    for name, (service, image) in services.items():
        venv = image["venv"]
        scripts.setdefault(venv, console_scripts(venv))
        for argv in service_argvs(service):
            program = argv[0]
            if program in BASE_IMAGE_PROGRAMS:
                continue
            if program not in scripts[venv]:
                problems.append(f"{name}: `{program}` is no console script of {venv.name}")
                continue
            dist, version = scripts[venv][program]
            if normalize(dist) == project:
                if not image["project"]:
                    problems.append(f"{name}: `{program}` is chiso's, not in {image['requirements']}'s image")
            elif image["pins"].get(normalize(dist)) != version:
                problems.append(f"{name}: `{program}` comes from {dist} {version}, pinned in "
                                f"{image['requirements']} as {image['pins'].get(normalize(dist))}")
    assert not problems, "\n".join(problems)


def test_python_scripts_of_the_services_are_in_their_image() -> None:
    for name, (service, _) in built_services().items():
        for argv in service_argvs(service):
            if argv[0] == "python" and argv[1] != "-c":
                assert argv[1].startswith(IMAGE_ROOT + "/")
                path = argv[1][len(IMAGE_ROOT) + 1:]
                assert (ROOT / path).is_file(), f"{name} runs {path}, which is not in the repository"
                dockerfile = (ROOT / service["build"]["dockerfile"]).read_text()
                assert re.search(rf"^COPY {re.escape(path)} ", dockerfile, re.M), f"{path}: not in the image"


# Runs in the image's venv: parses each command line with the program's own CLI, without running it.
# argparse (airflow, gunicorn, chiso) exits non-zero on an unknown command or option; a click program
# (superset, celery) given the command line plus --help parses every option and subcommand, loads the
# `--app`, then only prints help. gunicorn's application and python's imports are resolved too. It also
# reports what the CLIs were built from: the providers behind Airflow's commands, Superset's loaded config.
CLI_CHECKER = r"""
import ast, contextlib, importlib, io, json, sys

def imports(code, where):
    for node in ast.walk(ast.parse(code, where)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                importlib.import_module(alias.name)
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            module = importlib.import_module(node.module)
            for alias in node.names:
                if not hasattr(module, alias.name):
                    importlib.import_module(f"{node.module}.{alias.name}")

def run(program, argv):
    if program == "airflow":
        from airflow.cli.cli_parser import get_parser
        get_parser().parse_args(argv)
    elif program == "chiso":
        from ingestion.cli import build_parser
        build_parser().parse_args(argv)
    elif program == "gunicorn":
        from gunicorn.config import Config
        args = Config().parser().parse_args(argv)
        module, _, name = args.args[-1].partition(":")
        if not callable(getattr(importlib.import_module(module), name.split("(")[0], None)):
            raise LookupError(f"gunicorn's application {args.args[-1]} does not exist")
    elif program == "python":
        code = argv[1] if argv[0] == "-c" else open(argv[0], encoding="utf-8").read()
        imports(code, argv[0])
    else:
        if program == "superset":
            from superset.cli.main import superset as cli
        else:
            from celery.bin.celery import celery as cli
        cli.main(argv + ["--help"], prog_name=program, standalone_mode=False)

def check(program, argv):
    out = io.StringIO()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
            run(program, argv)
    except SystemExit as exc:
        if exc.code not in (0, None):
            return " / ".join(out.getvalue().strip().splitlines()[-2:])[-800:] or f"exit {exc.code}"
    except BaseException as exc:
        return f"{type(exc).__name__}: {exc}"
    return None

def about():
    info = {}
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        if "airflow.cli.cli_parser" in sys.modules:
            from airflow.providers_manager import ProvidersManager
            manager = ProvidersManager()
            manager.initialize_providers_cli_command()
            info["airflow_cli_providers"] = {}
            for provider, p in manager.providers.items():
                for path in p.data.get("cli") or []:
                    module, _, name = path.rpartition(".")
                    for group in getattr(importlib.import_module(module), name)():
                        info["airflow_cli_providers"][group.name] = [provider, p.version]
        if "superset.config" in sys.modules:
            config = sys.modules["superset.config"]
            info["superset_config"] = {"ALERT_REPORTS": config.FEATURE_FLAGS.get("ALERT_REPORTS"),
                                       "broker": config.CELERY_CONFIG.broker_url.rsplit("@", 1)[-1]}
    return info

lines = json.load(sys.stdin)
print(json.dumps({"errors": [check(program, argv) for program, argv in lines], "about": about()}))
"""
CHECKED_PROGRAMS = {"airflow", "superset", "celery", "gunicorn", "chiso", "python"}
# Lines each checker run must reject: without them a checker that accepts everything would pass.
WRONG_LINES = {
    "requirements/main.txt": [
        ["airflow", "celery", "wörker"], ["airflow", "scheduler", "--no-such-flag"],
        ["chiso", "up", "--no-such-flag"], ["python", "-c", "from ingestion import nothing"],
        ["python", "-c", "import json,"]],
    "requirements/superset.txt": [
        ["superset", "db", "upgrade", "--no-such-flag"], ["superset", "no-such-command"],
        ["celery", "--app", "superset.tasks.celery_app:app", "worker", "--no-such-flag"],
        ["celery", "--app", "superset.tasks.no_such_app:app", "beat"],
        ["gunicorn", "--no-such-flag", "superset.app:create_app()"],
        ["gunicorn", "--bind", "0.0.0.0:8088", "superset.app:no_such_factory()"]],
}
AIRFLOW_CELERY_APP = "airflow.providers.celery.executors.celery_executor.app"


def service_env(service: dict, tmp_path: Path) -> dict[str, str]:
    """The service's environment (interpolated with defaults), kept on this machine: Airflow's home and
    Superset's metadata in tmp_path (nothing connects while parsing), the image's paths mapped to the repo."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("AIRFLOW", "CHISO_", "SUPERSET_"))}
    env.update({k: interpolate(str(v)) for k, v in (service.get("environment") or {}).items()})
    env.update(AIRFLOW_HOME=str(tmp_path / "airflow"), CHISO_HOME_DIR=str(tmp_path / "chiso"),
               SUPERSET_HOME=str(tmp_path / "superset"),
               CHISO_SUPERSET_METADATA_URL=f"sqlite:///{tmp_path / 'superset.db'}")
    dockerfile = (ROOT / service["build"]["dockerfile"]).read_text()
    if config := re.search(r"SUPERSET_CONFIG_PATH=(\S+)", dockerfile):
        env["SUPERSET_CONFIG_PATH"] = config[1].replace(IMAGE_ROOT, str(ROOT))
    return env


def on_this_machine(argv: list[str]) -> list[str]:
    """The command line with the image's paths of the repository's files mapped to the repository."""
    return [str(ROOT / word[len(IMAGE_ROOT) + 1:]) if word.startswith(IMAGE_ROOT + "/") and
            (ROOT / word[len(IMAGE_ROOT) + 1:]).exists() else word for word in argv]


@pytest.fixture(scope="module")
def parsed(tmp_path_factory) -> dict[str, dict]:
    """One checker run per image, both at once, each with the environment of one of its services (the
    compose file's own AIRFLOW__CORE__EXECUTOR, SUPERSET_CONFIG_PATH...): requirements file ->
    {"lines": [(service, argv, error)], "wrong": [(argv, error)], "about": {...}}."""
    jobs = {}
    for name, (service, image) in built_services().items():
        job = jobs.setdefault(image["requirements"], {"service": service, "venv": image["venv"], "lines": []})
        job["lines"] += [(name, argv) for argv in service_argvs(service) if argv[0] in CHECKED_PROGRAMS]
    procs = {}
    for requirements, job in jobs.items():
        lines = [argv for _, argv in job["lines"]] + WRONG_LINES[requirements]
        tmp = tmp_path_factory.mktemp(Path(requirements).stem)
        proc = subprocess.Popen([str(job["venv"] / "bin" / "python"), "-c", CLI_CHECKER],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, env=service_env(job["service"], tmp), cwd=tmp)
        procs[requirements] = (proc, json.dumps([(argv[0], on_this_machine(argv[1:])) for argv in lines]))
    found = {}
    for requirements, (proc, stdin) in procs.items():
        out, err = proc.communicate(stdin, timeout=300)
        assert proc.returncode == 0, err[-3000:]
        result = json.loads(out.strip().splitlines()[-1])
        job, count = jobs[requirements], len(jobs[requirements]["lines"])
        found[requirements] = {
            "lines": [(name, argv, error)
                      for (name, argv), error in zip(job["lines"], result["errors"][:count], strict=True)],
            "wrong": list(zip(WRONG_LINES[requirements], result["errors"][count:], strict=True)),
            "about": result["about"]}
    return found


def _is_airflow_celery_app(argv: list[str]) -> bool:
    return argv[:3] == ["celery", "--app", AIRFLOW_CELERY_APP]


def test_every_command_line_parses_with_its_program(parsed) -> None:
    problems, checked = [], set()
    for result in parsed.values():
        for name, argv, error in result["lines"]:
            if _is_airflow_celery_app(argv):
                continue  # test_airflow_s_celery_app_loads_in_the_pinned_environment
            checked.add(" ".join(argv[:3]))
            if error:
                problems.append(f"{name}: `{' '.join(argv)}`: {error}")
    assert not problems, "\n".join(problems)
    assert {"airflow celery worker", "airflow triggerer", "airflow db migrate", "airflow api-server --port",
            "airflow jobs check", "chiso up --no-sandbox", "superset db upgrade", "superset init",
            "superset fab create-admin", "celery --app superset.tasks.celery_app:app",
            "python /opt/chiso/docker/superset_import.py", "gunicorn --bind 0.0.0.0:8088"} <= checked


def test_the_checker_rejects_unknown_commands_options_and_imports(parsed) -> None:
    for result in parsed.values():
        accepted = [argv for argv, error in result["wrong"] if not error]
        assert not accepted, f"accepted: {accepted}"


def test_airflow_s_celery_commands_come_from_the_pinned_celery_provider(parsed) -> None:
    # Airflow 3.3 takes a provider's commands from its provider.yaml, whatever the executor; `airflow celery`
    # is apache-airflow-providers-celery's, so that distribution must be the pinned one.
    providers = parsed["requirements/main.txt"]["about"]["airflow_cli_providers"]
    main = pins("requirements/main.txt")
    used = {argv[1] for _, argv, _ in parsed["requirements/main.txt"]["lines"] if argv[0] == "airflow"}
    assert "celery" in used & set(providers)
    for group in used & set(providers):
        provider, version = providers[group]
        assert main.get(normalize(provider)) == version, f"airflow {group}: {provider} {version} not pinned"


def test_superset_runs_with_the_deployment_s_config(parsed) -> None:
    config = parsed["requirements/superset.txt"]["about"]["superset_config"]
    assert config == {"ALERT_REPORTS": True, "broker": "redis:6379/1"}


def test_airflow_s_celery_app_loads_in_the_pinned_environment(parsed) -> None:
    """The workers' Celery app imports (celery 5.7 removed what the Celery provider 3.26 imports: main.in
    pins celery<5.7)."""
    lines = [(name, argv, error) for name, argv, error in parsed["requirements/main.txt"]["lines"]
             if _is_airflow_celery_app(argv)]
    assert {name for name, _, _ in lines} == {"airflow-worker-extract", "airflow-worker-dbt"}
    problems = [f"{name}: `{' '.join(argv)}`: {error}" for name, argv, error in lines if error]
    assert not problems, "\n".join(problems)


# --- secrets and settings ----------------------------------------------------------------------------------

SECRET_NAME = re.compile(r"PASSWORD|SECRET|_KEY|SALT|TOKEN")
SECRET_OPTIONS = {"--password", "--requirepass", "-a"}  # superset fab, redis-server, redis-cli


def secret_problems(doc: dict) -> list[str]:
    problems = []
    for service, svc in doc["services"].items():
        for key, value in (svc.get("environment") or {}).items():
            value = str(value)
            if SECRET_NAME.search(key):
                if key.endswith("_FILE"):  # where a secret is kept in the container, not the secret
                    if not in_a_container(value):
                        problems.append(f"{service}: {key} is not a file of the container")
                elif value and not re.fullmatch(r"\$\{\w+(:?[-?][^}]*)?\}", value):
                    problems.append(f"{service}: {key} is not from the environment")
                elif re.fullmatch(r"\$\{\w+:?-[^}]+\}", value):
                    problems.append(f"{service}: {key} has a default written in the file")
            for password in re.findall(r"://[^:/@\s]*:(\$\{[^}]*\}|[^@\s]*)@", value):
                if not password.startswith("${"):
                    problems.append(f"{service}: {key} has a password in the URL")
        for argv in service_argvs(svc, raw=True):
            for option, value in zip(argv, argv[1:], strict=False):
                if option in SECRET_OPTIONS and not value.startswith("$"):
                    problems.append(f"{service}: `{option} {value}` is written in the command")
    return problems


def test_no_secret_is_written_in_the_compose_file() -> None:
    assert secret_problems(compose()) == []


def _literal_password(doc: dict) -> None:
    doc["services"]["postgres"]["environment"]["POSTGRES_PASSWORD"] = "matkhau2026"


def _password_in_a_url(doc: dict) -> None:
    doc["services"]["superset"]["environment"] = {"CHISO_SUPERSET_METADATA_URL": "postgresql://u:matkhau@db/s"}


def _password_default(doc: dict) -> None:
    doc["services"]["init"]["environment"]["AIRFLOW_ADMIN_PASSWORD"] = "${AIRFLOW_ADMIN_PASSWORD:-admin}"


def _password_on_the_command_line(doc: dict) -> None:
    doc["services"]["superset-init"]["command"] = [
        "bash", "-c", "superset fab reset-password --username admin --password matkhau2026"]


@pytest.mark.parametrize("break_it", [_literal_password, _password_in_a_url, _password_default,
                                      _password_on_the_command_line])
def test_a_written_secret_is_caught(break_it) -> None:
    doc = copy.deepcopy(compose())
    break_it(doc)
    assert secret_problems(doc)


def test_every_variable_compose_reads_is_listed_in_the_env_example() -> None:
    listed = set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]+)=", (DOCKER / ".env.example").read_text(), re.M))
    read = set(re.findall(r"(?<!\$)\$\{(\w+)", COMPOSE.read_text()))
    assert read - listed == set(), f"missing from docker/.env.example: {sorted(read - listed)}"
    required = set(re.findall(r"(?<!\$)\$\{(\w+):\?", COMPOSE.read_text()))
    uncommented = set(re.findall(r"^([A-Z][A-Z0-9_]+)=", (DOCKER / ".env.example").read_text(), re.M))
    assert required <= uncommented, f"required but commented out: {sorted(required - uncommented)}"
