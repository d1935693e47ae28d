"""Which ZenML stack a run goes to, and the per-step settings that place its pods there."""
from __future__ import annotations

from pathlib import Path

from pipelines.local_stack import ensure_stack


class StackNotReady(RuntimeError):
    """The stack config names a stack (or secret) that is not registered in the ZenML store."""


def activate(stack=None) -> str:
    """Activate the stack of a StackConfig (None or local: the embedded lethe-local stack); returns its name."""
    if stack is None or not stack.remote:
        return ensure_stack()
    from zenml.client import Client
    from zenml.utils.source_utils import set_custom_source_root

    from steps.work_folder import REPO_ROOT

    set_custom_source_root(str(REPO_ROOT))
    client = Client()
    if stack.name not in {s.name for s in client.list_stacks(size=1000)}:
        raise StackNotReady(f"stack {stack.name!r} is not registered in the ZenML store at {client.zen_store.url}; "
                            "run `lethe stack register` with its config first")
    client.activate_stack(stack.name)
    return stack.name


def pipeline_options(config, stack, stages: dict[str, str | None], scheduled: bool = False) -> dict:
    """`with_options` arguments: pipeline-wide settings (service account, shared volume, step image) and each
    step's placement from its compute profile; `stages` maps the pipeline's steps to the takedown steps they run."""
    from components.config.cluster_placement import pipeline_settings, steps_settings

    options: dict = {}
    settings = pipeline_settings(stack, scheduled=scheduled)
    if settings:
        options["settings"] = settings
    placed = steps_settings(config, stack, stages)
    if placed:
        options["steps"] = {name: {"settings": step} for name, step in placed.items()}
    return options


def require_placeable(config, config_path: Path | str, stack) -> None:
    """Refuse, naming the run config, a run whose steps the stack cannot place (before anything is submitted)."""
    from components.config.cluster_placement import placement_problems
    from components.domain.file_errors import InputFileError

    problems = placement_problems(config, stack)
    if problems:
        raise InputFileError(config_path, problems)


def require_on_shared_volume(path: Path, stack) -> None:
    """Step pods see only the shared volume and the image: a ticket elsewhere cannot reach them."""
    if stack is None or not stack.remote:
        return
    if not stack.shared_volume.holds(path.as_posix()):
        from components.domain.file_errors import InputFileError

        mount = stack.shared_volume.mount_path
        raise InputFileError(path, [("", f"on stack {stack.name!r} a ticket must lie on the shared volume ({mount}); "
                                         "put it in the inbox with `lethe submit` and let the scheduled sweep take it")])
