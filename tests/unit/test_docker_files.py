"""docker/compose.yaml and docker/Dockerfile agree with the settings and with each other.

No Docker engine runs here, so the files are parsed and checked: every FONTI_* variable
is a real setting with a valid value, ports and URLs point where the services listen,
volumes are declared, and the `llama` profile serves the GGUF the image prepares with
the sampling the in-process backend uses.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
import yaml

from service.app import create_app
from service.model_prep.gguf import DEFAULT_GGUF_NAME
from service.settings import LLMSettings, Settings
from service.settings_doc import env_names
from tests.factories import REPO

DOCKER = REPO / "docker"


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load((DOCKER / "compose.yaml").read_text("utf-8"))


@pytest.fixture(scope="module")
def dockerfile_env() -> dict[str, str]:
    """ENV of the runtime stage (the last FROM)."""
    text = (DOCKER / "Dockerfile").read_text("utf-8").replace("\\\n", " ")
    runtime = text[text.rindex("\nFROM ") :]
    env: dict[str, str] = {}
    for line in runtime.splitlines():
        if line.startswith("ENV "):
            env.update(dict(re.findall(r"(\w+)=(\S+)", line)))
    return env


def resolve(value: str) -> str:
    """A compose value with ${VAR:-default} interpolation, as compose reads it when VAR is unset."""
    return re.sub(r"\$\{\w+:-([^}]*)\}", r"\1", value)


def fonti_env(compose: dict[str, Any], dockerfile_env: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in dockerfile_env.items() if k.startswith("FONTI_")}
    env.update({k: resolve(str(v)) for k, v in compose["services"]["fonti"]["environment"].items()})
    return env


def container_ports(service: dict[str, Any]) -> set[int]:
    return {int(str(p).split(":")[-1]) for p in service.get("ports", [])}


def flags(command: list[str]) -> dict[str, str]:
    return {command[i][2:]: command[i + 1] for i in range(len(command) - 1) if command[i].startswith("--")}


def test_every_fonti_variable_is_a_setting_and_valid(compose, dockerfile_env, monkeypatch):
    env = fonti_env(compose, dockerfile_env)
    known = set(env_names())
    assert set(env) <= known, set(env) - known
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    s = Settings()  # raises on an invalid value
    assert s.store.url == "http://qdrant:6333" and s.store.prefer_grpc is True
    assert s.llm.backend == "llama_cpp"  # the default set-up; the llama profile switches it by variable
    assert s.llm.extra_body == {"repeat_penalty": 1.0}
    assert s.server.host == "0.0.0.0"
    # the openai variant is valid too
    monkeypatch.setenv("FONTI_LLM_BACKEND", "openai")
    assert Settings().llm.backend == "openai"


def test_fonti_service_reaches_qdrant_and_listens_where_published(compose, dockerfile_env, monkeypatch):
    services = compose["services"]
    for name, value in fonti_env(compose, dockerfile_env).items():
        monkeypatch.setenv(name, value)
    s = Settings()
    fonti = services["fonti"]
    assert "qdrant" in fonti["depends_on"]
    assert s.server.port in container_ports(fonti)
    assert dockerfile_env["FONTI_PORT"] == str(s.server.port)
    expose = re.search(r"^EXPOSE (\d+)", (DOCKER / "Dockerfile").read_text("utf-8"), re.M)
    assert expose and int(expose.group(1)) == s.server.port
    url = urlparse(s.store.url or "")
    assert url.hostname == "qdrant" and url.port == 6333
    assert {url.port, s.store.grpc_port} <= container_ports(services["qdrant"])
    assert services["qdrant"]["image"].startswith("qdrant/qdrant:")


def test_volumes_are_declared_and_persistent(compose, dockerfile_env):
    declared = set(compose["volumes"])
    used = set()
    for service in compose["services"].values():
        for v in service.get("volumes", []):
            source = str(v).split(":")[0]
            if not source.startswith((".", "/")):
                used.add(source)
    assert used <= declared, used - declared
    qdrant_mounts = [str(v) for v in compose["services"]["qdrant"]["volumes"]]
    assert "qdrant-data:/qdrant/storage" in qdrant_mounts
    store_folder = Path(dockerfile_env["FONTI_STORE_PATH"]).parent
    assert any(str(v).endswith(f":{store_folder}") for v in compose["services"]["fonti"]["volumes"])


def test_llama_profile_serves_the_images_gguf_where_fonti_calls_it(compose, dockerfile_env, monkeypatch):
    services = compose["services"]
    llama = services["llama"]
    assert llama["profiles"] == ["llama"]
    assert llama["build"] == services["fonti"]["build"]  # the same image, the same GGUF
    command = llama["command"]
    assert command[:3] == ["python", "-m", "llama_cpp.server"]
    f = flags(command)
    assert Path(f["model"]) == Path(dockerfile_env["FONTI_MODELS_DIR"]) / DEFAULT_GGUF_NAME
    assert f["chat_format"] == "chat_template.default" and f["interrupt_requests"] == "False"
    for name, value in fonti_env(compose, dockerfile_env).items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("FONTI_LLM_BACKEND", "openai")
    llm = Settings().llm
    base = urlparse(llm.base_url)
    assert base.hostname == "llama" and base.path == "/v1"
    assert base.port == int(f["port"]) and base.port in container_ports(llama)
    assert f["host"] == "0.0.0.0"
    defaults = LLMSettings()
    assert int(f["n_ctx"]) == llm.n_ctx == defaults.n_ctx
    assert int(f["n_threads"]) == llm.n_threads and int(f["n_threads_batch"]) == llm.n_threads_batch
    assert f"{base.port}/v1/models" in " ".join(llama["healthcheck"]["test"])
    assert services["fonti"]["depends_on"]["llama"]["required"] is False


def test_image_healthcheck_probes_a_liveness_route_of_the_app(dockerfile_env):
    text = (DOCKER / "Dockerfile").read_text("utf-8")
    check = re.search(r"^HEALTHCHECK .*?CMD (.*)$", text.replace("\\\n", " "), re.M)
    assert check and "/healthz" in check.group(1)
    paths = set(create_app(Settings()).openapi()["paths"])
    assert {"/healthz", "/readyz", "/metrics"} <= paths
    # non-root, multi-stage, models prepared at build time
    assert re.search(r"^USER (?!root)\w+", text, re.M)
    assert len(re.findall(r"^FROM ", text, re.M)) >= 2
    assert "fonti prepare-models" in text and "COPY --from=builder /models /models" in text
    assert dockerfile_env["FONTI_PROMPTS_DIR"] == "/app/prompts" and "COPY prompts prompts" in text
