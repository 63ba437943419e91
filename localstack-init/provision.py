"""LocalStack ready hook: create the pipeline's bucket, queues and notification
with the project's own provisioning code (``infra/provision.py``).

LocalStack runs ``.py`` hooks inside its server process with ``exec`` and an
empty namespace: there is no ``__file__``, and the interpreter is LocalStack's
own, which has boto3 but not pydantic. So the module is loaded by file path
rather than as ``infra.provision`` (other ``infra`` modules need pydantic).

Environment (set by docker-compose.yml, or by ``scripts/localstack_host.py``
in host mode):

- ``TAXI_INFRA_DIR``: the directory holding ``provision.py``; compose mounts
  the repository's ``infra/`` at ``/opt/taxi/infra``, the default.
- ``TAXI_PROVISION_ENDPOINT_URL``: how this process reaches LocalStack itself;
  ``http://localhost:4566`` by default (inside the container).
- ``AWS_ACCESS_KEY_ID`` and ``AWS_SECRET_ACCESS_KEY``: required; any value
  works against LocalStack (``test``). Without them boto3 would go looking for
  credentials elsewhere, instance metadata included.
- The resource names the settings read (``S3_BUCKET``, ``RAW_PREFIX``,
  ``INGEST_QUEUE_NAME``, ``INGEST_DLQ_NAME``, ``INGEST_MAX_RECEIVE_COUNT``,
  ``INGEST_VISIBILITY_TIMEOUT_SECONDS``, ``AWS_REGION``), so the hook creates
  exactly what the API, bridge and worker look for.
"""

import importlib.util
import logging
import os
import sys

INFRA_DIR_VAR = "TAXI_INFRA_DIR"
ENDPOINT_VAR = "TAXI_PROVISION_ENDPOINT_URL"
DEFAULT_INFRA_DIR = "/opt/taxi/infra"
DEFAULT_ENDPOINT = "http://localhost:4566"
#: A name no LocalStack module uses, so the import cannot shadow one of its own.
MODULE_NAME = "taxi_ingest_provision"


def load_provision_module(infra_dir):
    path = os.path.join(infra_dir, "provision.py")
    if not os.path.isfile(path):
        raise RuntimeError(
            f"{path} not found: set {INFRA_DIR_VAR} to the repository's infra/ directory "
            f"(compose mounts it at {DEFAULT_INFRA_DIR})")
    spec = importlib.util.spec_from_file_location(MODULE_NAME, path)
    module = importlib.util.module_from_spec(spec)
    # dataclasses look their module up in sys.modules while the class is built.
    sys.modules[MODULE_NAME] = module
    spec.loader.exec_module(module)
    return module


def run_hook(environ):
    missing = [n for n in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY") if not environ.get(n)]
    if missing:
        raise RuntimeError(
            f"{' and '.join(missing)} not set for the provisioning hook: give LocalStack "
            "dummy credentials (AWS_ACCESS_KEY_ID=test, AWS_SECRET_ACCESS_KEY=test)")
    provisioning = load_provision_module(environ.get(INFRA_DIR_VAR) or DEFAULT_INFRA_DIR)
    env = dict(environ)
    env["AWS_ENDPOINT_URL"] = environ.get(ENDPOINT_VAR) or DEFAULT_ENDPOINT
    resources = provisioning.Resources.from_env(env)
    created = provisioning.provision(resources)
    logging.getLogger("taxi.localstack_init").info(
        "provisioned %s via %s: %s", resources.bucket, resources.endpoint_url, created)
    return created


run_hook(os.environ)
