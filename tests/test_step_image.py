"""docker/Dockerfile cannot be built here (no Docker engine): these check that it is right by construction,
i.e. that it installs exactly the locked set these tests run on, as the user and paths the cluster side expects."""
import re
import sys
from importlib import metadata

from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet

from conftest import REPO

DOCKERFILE = (REPO / "docker" / "Dockerfile").read_text()


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with line continuations joined and comments dropped."""
    joined = re.sub(r"\\\n\s*", " ", DOCKERFILE)
    out = []
    for line in joined.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def arg(name: str) -> str:
    return next(rest.split("=", 1)[1] for word, rest in instructions() if word == "ARG" and rest.startswith(name + "="))


def pins(path) -> dict[str, str]:
    out = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            req = Requirement(line)
            (spec,) = req.specifier
            assert spec.operator == "==", f"{path.name}: {line} is not pinned"
            out[req.name.lower().replace("_", "-")] = spec.version
    return out


def test_it_installs_the_lock_that_make_installs_with_torch_constrained():
    runs = [rest for word, rest in instructions() if word == "RUN"]
    lock_install = [r for r in runs if "-r /tmp/requirements/lock.txt -c /tmp/requirements/constraints.txt" in r]
    assert lock_install, "the image must install requirements/lock.txt under requirements/constraints.txt"
    copies = " ".join(rest for word, rest in instructions() if word == "COPY")
    assert "requirements/lock.txt" in copies and "requirements/constraints.txt" in copies
    makefile = (REPO / "Makefile").read_text()
    assert "-r requirements/lock.txt -c requirements/constraints.txt" in makefile  # the same file on CPU machines
    torch_install = [r for r in runs if 'pip install "torch==${TORCH_VERSION}"' in r]
    assert torch_install and runs.index(torch_install[0]) < runs.index(lock_install[0])  # torch first, as make does


def test_torch_and_python_are_the_versions_the_tests_run_on():
    constraints = pins(REPO / "requirements" / "constraints.txt")
    assert arg("TORCH_VERSION") == constraints["torch"] == metadata.version("torch").split("+")[0]
    assert arg("TORCH_INDEX_URL").startswith("https://download.pytorch.org/whl/cu")  # a CUDA build
    python = arg("PYTHON_VERSION")
    assert python == f"{sys.version_info.major}.{sys.version_info.minor}"
    assert any(word == "FROM" and rest.startswith("python:${PYTHON_VERSION}") for word, rest in instructions())
    requires = SpecifierSet(re.search(r'requires-python = "([^"]+)"', (REPO / "pyproject.toml").read_text()).group(1))
    assert f"{python}.0" in requires


def test_the_lock_is_exactly_what_is_installed_here():
    """So the image gets the set the test suite ran against, not merely a compatible one."""
    lock = pins(REPO / "requirements" / "lock.txt")
    different = {name: (version, metadata.version(name)) for name, version in lock.items()
                 if metadata.version(name) != version}
    assert not different
    image_only = pins(REPO / "requirements" / "image.txt")
    assert not set(image_only) & set(lock)  # an image-only package must not re-pin a locked one


def test_it_runs_as_the_non_root_user_and_paths_the_cluster_side_expects():
    from components.config.cluster_placement import IMAGE_USER
    from components.config.stack_config import SharedVolume, StackConfig

    users = [rest for word, rest in instructions() if word == "USER"]
    assert users and users[-1] == f"{IMAGE_USER}:{IMAGE_USER}" and IMAGE_USER != 0
    workdir = [rest for word, rest in instructions() if word == "WORKDIR"][-1]
    assert workdir == StackConfig.model_fields["image_workdir"].default
    env = " ".join(rest for word, rest in instructions() if word == "ENV")
    assert f"LETHE_HOME={SharedVolume().mount_path}" in env and "HF_HUB_OFFLINE=1" in env
    assert f"ln -s {SharedVolume().mount_path}/models /app/models" in DOCKERFILE  # where configs/sd*.yaml look


def test_the_build_context_leaves_out_local_state():
    ignored = set((REPO / ".dockerignore").read_text().split())
    assert {".git", ".venv", ".lethe", "out"} <= ignored
