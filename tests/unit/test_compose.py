"""docker-compose.yml agrees with the code.

No Docker engine runs where these tests run, so the compose file is kept
right by reading it: its services, image versions, environment names,
commands, RabbitMQ's consumer_timeout, healthchecks, start order and mounts
are checked against the modules and settings they refer to.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

from infra.settings import Settings
from scripts.localstack_host import LOCALSTACK_VERSION

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "scripts" / "Dockerfile"
HOOK = ROOT / "localstack-init" / "provision.py"

SERVICES = {"postgres", "rabbitmq", "localstack", "migrate", "api", "bridge", "worker"}
APP_SERVICES = {"migrate", "api", "bridge", "worker"}
#: Names app services may set that are not settings fields.
ALLOWED_ENV = {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "PYTHONPATH", "LOG_LEVEL",
               "TAXI_PROCESS_NAME"}
#: What the LocalStack hook provisions and the app services look up.
RESOURCE_ENV = ("AWS_REGION", "S3_BUCKET", "RAW_PREFIX", "INGEST_QUEUE_NAME",
                "INGEST_DLQ_NAME", "INGEST_MAX_RECEIVE_COUNT",
                "INGEST_VISIBILITY_TIMEOUT_SECONDS")
HEALTHY, COMPLETED = "service_healthy", "service_completed_successfully"
_AFTER_INFRA = {"migrate": COMPLETED, "localstack": HEALTHY, "rabbitmq": HEALTHY}
EXPECTED_DEPENDS_ON = {
    "migrate": {"postgres": HEALTHY},
    "api": _AFTER_INFRA,
    "bridge": _AFTER_INFRA,
    "worker": _AFTER_INFRA,
}
_INTERPOLATION = re.compile(r"\$\{(\w+)(?::?-([^}]*))?\}")


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE_FILE.read_text())


@pytest.fixture(scope="module")
def services(compose) -> dict:
    return compose["services"]


def env_of(service: dict) -> dict[str, str]:
    """The service's environment as strings, with ${VAR:-default} replaced
    by its default (what compose gives when the host does not set VAR)."""
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {key: _INTERPOLATION.sub(lambda m: m.group(2) or "", str(value))
            for key, value in env.items()}


def volumes_of(service: dict) -> list[tuple[Path, str, str]]:
    """Bind mounts as (source in the repository, target, mode)."""
    mounts = []
    for spec in service.get("volumes", []):
        source, target, *mode = spec.split(":")
        if source.startswith("."):
            mounts.append(((ROOT / source).resolve(), target, mode[0] if mode else "rw"))
    return mounts


def dockerfile() -> tuple[str, dict[str, Path]]:
    """The image's working directory and where each COPY puts repository paths."""
    workdir, copies = "/", {}
    for line in DOCKERFILE.read_text().splitlines():
        words = line.split()
        if words[:1] == ["WORKDIR"]:
            workdir = words[1]
        elif words[:1] == ["COPY"] and len(words) == 3:
            target = words[2] if words[2].startswith("/") else f"{workdir}/{words[2]}"
            copies[target.rstrip("/").replace("/./", "/")] = ROOT / words[1]
    return workdir, copies


def repo_path(container_path: str) -> Path:
    """The repository path the image holds at container_path; fails when the
    Dockerfile does not copy it."""
    _, copies = dockerfile()
    for target, source in copies.items():
        if container_path == target or container_path.startswith(target + "/"):
            return source / container_path[len(target):].lstrip("/")
    raise AssertionError(f"the image does not contain {container_path} (see {DOCKERFILE})")


def module_file(module: str) -> Path:
    workdir, _ = dockerfile()
    return repo_path(f"{workdir}/{module.replace('.', '/')}.py")


def host_ports(service: dict) -> dict[int, tuple[str, int]]:
    """container port -> (host address, host port)."""
    published = {}
    for spec in service.get("ports", []):
        *address, host, container = str(spec).split(":")
        published[int(container)] = (address[0] if address else "0.0.0.0", int(host))
    return published


def test_the_stack_has_the_expected_services(services):
    assert set(services) == SERVICES


def test_localstack_is_the_version_host_mode_runs(services):
    assert services["localstack"]["image"] == f"localstack/localstack:{LOCALSTACK_VERSION}"


def test_localstack_checks_signatures_and_serves_s3_and_sqs(services):
    env = env_of(services["localstack"])
    assert env["S3_SKIP_SIGNATURE_VALIDATION"] == "0"
    assert {"s3", "sqs"} <= set(env["SERVICES"].split(","))
    assert env["SQS_ENDPOINT_STRATEGY"] in ("off", "path")
    # Queue URLs carry LOCALSTACK_HOST: the other containers must reach it.
    assert urlsplit(f"http://{env['LOCALSTACK_HOST']}").hostname == "localstack"


def test_app_services_share_one_image_built_from_the_dockerfile(services):
    for name in APP_SERVICES:
        build = services[name]["build"]
        assert (ROOT / build["context"] / build["dockerfile"]).resolve() == DOCKERFILE
        assert services[name]["image"] == services["api"]["image"]
    text = DOCKERFILE.read_text()
    assert re.search(r"^FROM python:3\.11-slim\b", text, re.M)
    assert re.search(r"pip install .*-r requirements\.txt", text)


@pytest.mark.parametrize("name", sorted(APP_SERVICES))
def test_app_environment_names_are_settings_or_allowed(services, name):
    fields = {field.upper() for field in Settings.model_fields}
    env = env_of(services[name])
    unknown = sorted(set(env) - fields - ALLOWED_ENV)
    assert not unknown, f"{name} sets variables nothing reads: {unknown}"
    # And the values pass the same validation the processes apply at start.
    Settings(**{key.lower(): value for key, value in env.items() if key.lower() in
                Settings.model_fields and value != ""})


@pytest.mark.parametrize("name", sorted(APP_SERVICES))
def test_hook_and_app_agree_on_resource_names(services, name):
    hook_env, app_env = env_of(services["localstack"]), env_of(services[name])
    for key in RESOURCE_ENV:
        assert app_env.get(key) == hook_env.get(key), key


@pytest.mark.parametrize(("name", "module"), [("migrate", "infra.migrate"),
                                              ("bridge", "infra.bridge")])
def test_python_m_commands_name_runnable_modules(services, name, module):
    assert services[name]["command"] == ["python", "-m", module]
    assert 'if __name__ == "__main__":' in module_file(module).read_text()


def test_worker_runs_the_celery_app_on_the_configured_queue(services):
    command = services["worker"]["command"]
    assert command[:2] == ["celery", "-A"]
    assert command[3] == "worker"
    assert re.search(r"^app = ", module_file(command[2]).read_text(), re.M)
    queue = command[command.index("-Q") + 1]
    assert queue == env_of(services["worker"])["CELERY_QUEUE"]


def test_api_runs_chalice_local_in_the_chalice_project(services):
    api = services["api"]
    command = api["command"]
    # serve_local.py is `chalice local` with the deployed API's 404 response.
    assert command[:2] == ["python", "serve_local.py"]
    assert "main()" in (ROOT / "chalice_app" / "serve_local.py").read_text()
    assert command[command.index("--host") + 1] == "0.0.0.0"
    port = int(command[command.index("--port") + 1])
    project = repo_path(api["working_dir"])
    assert project.resolve() == (ROOT / "chalice_app").resolve()
    assert (project / "app.py").is_file()
    assert (project / ".chalice" / "config.json").is_file()
    # chalice_app imports infra from the repository root.
    workdir, _ = dockerfile()
    assert workdir in env_of(api)["PYTHONPATH"].split(":")
    assert port in host_ports(api)
    assert f"127.0.0.1:{port}/health" in " ".join(api["healthcheck"]["test"])


def test_rabbitmq_consumer_timeout_is_explicit_and_outlasts_tasks(services):
    from worker.celery_app import RABBITMQ_CONSUMER_TIMEOUT_SECONDS

    found = []
    for source, target, _ in volumes_of(services["rabbitmq"]):
        if target.startswith("/etc/rabbitmq/") and source.is_file():
            found += re.findall(r"^\s*consumer_timeout\s*=\s*(\d+)\s*$",
                                source.read_text(), re.M)
    erl_args = env_of(services["rabbitmq"]).get("RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS", "")
    found += re.findall(r"-rabbit\s+consumer_timeout\s+(\d+)", erl_args)
    assert len(found) == 1, f"consumer_timeout set {len(found)} times, expected once"
    timeout_ms = int(found[0])
    assert timeout_ms == RABBITMQ_CONSUMER_TIMEOUT_SECONDS * 1000

    for name in ("worker", "bridge"):
        limit = env_of(services[name]).get(
            "TASK_TIME_LIMIT_SECONDS", Settings.model_fields["task_time_limit_seconds"].default)
        assert int(limit) * 1000 < timeout_ms


@pytest.mark.parametrize("name", ["postgres", "rabbitmq", "localstack", "api", "worker"])
def test_long_running_services_have_healthchecks(services, name):
    test = services[name]["healthcheck"]["test"]
    assert test and test[0] in ("CMD", "CMD-SHELL")


def test_localstack_is_healthy_only_once_the_hook_succeeded(services):
    check = " ".join(services["localstack"]["healthcheck"]["test"])
    assert "/_localstack/init/ready" in check
    assert "provision.py" in check and "SUCCESSFUL" in check


def test_start_order_waits_for_health_and_migrations(services):
    actual = {
        name: {dep: spec.get("condition") for dep, spec in service["depends_on"].items()}
        for name, service in services.items() if "depends_on" in service
    }
    assert actual == EXPECTED_DEPENDS_ON
    for conditions in actual.values():
        for dep, condition in conditions.items():
            if condition == HEALTHY:
                assert "healthcheck" in services[dep], dep
            else:
                assert services[dep].get("restart") == "no", f"{dep} must run once"


def test_ready_hook_and_infra_are_mounted_into_localstack(services):
    localstack = services["localstack"]
    mounts = {target: (source, mode) for source, target, mode in volumes_of(localstack)}
    hook_source, _ = mounts[f"/etc/localstack/init/ready.d/{HOOK.name}"]
    assert hook_source == HOOK and HOOK.is_file()

    env = env_of(localstack)
    infra_source, infra_mode = mounts[env["TAXI_INFRA_DIR"]]
    assert infra_source == (ROOT / "infra").resolve()
    assert (infra_source / "provision.py").is_file()
    assert infra_mode == "ro"

    hook_text = HOOK.read_text()
    for key in env:
        if key.startswith("TAXI_"):
            assert f'"{key}"' in hook_text, f"the hook does not read {key}"
    assert env["AWS_ACCESS_KEY_ID"] and env["AWS_SECRET_ACCESS_KEY"]
    assert urlsplit(env["TAXI_PROVISION_ENDPOINT_URL"]).port == 4566


def test_uploads_are_signed_for_the_host_and_traffic_stays_internal(services):
    localstack_ports = host_ports(services["localstack"])
    api_env = env_of(services["api"])
    public = urlsplit(api_env["S3_PUBLIC_ENDPOINT_URL"])
    assert public.hostname in ("localhost", "127.0.0.1")
    assert localstack_ports[4566][1] == public.port

    for name in APP_SERVICES:
        internal = urlsplit(env_of(services[name])["AWS_ENDPOINT_URL"])
        assert (internal.hostname, internal.port) == ("localstack", 4566), name


def test_compose_itself_accepts_the_file():
    docker = shutil.which("docker")
    probe = subprocess.run([docker, "compose", "version"], capture_output=True, text=True,
                           check=False) if docker else None
    if probe is None or probe.returncode != 0:
        why = "no docker client" if probe is None else (probe.stderr.strip() or "?")
        reason = (f"docker compose plugin not installed here ({why.splitlines()[0]}); "
                  "the file is checked statically only")
        print(reason)
        pytest.skip(reason)
    result = subprocess.run([docker, "compose", "-f", str(COMPOSE_FILE), "config", "-q"],
                            capture_output=True, text=True, check=False, cwd=ROOT)
    assert result.returncode == 0, result.stderr
