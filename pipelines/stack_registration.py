"""Register a stack config's ZenML stack: orchestrator, artefact store, container registry, MLflow tracker
and model registry, named after the stack. Registering touches only the ZenML store, never the cluster;
running again updates the components in place."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Registered:
    stack: str
    components: dict[str, str]  # component type -> name
    created: bool


def _secret_ref(secret: str, key: str) -> str:
    return "{{" + f"{secret}.{key}" + "}}"  # ZenML resolves these in the pods, so no credential lands in the store's config


def component_specs(stack) -> list[tuple[str, str, str, dict]]:
    """(type, name, flavor, configuration) for each component of a remote stack config."""
    from zenml.enums import StackComponentType as Kind

    o = stack.orchestrator
    if o.flavor == "kubernetes":
        orchestrator = {"kubernetes_namespace": o.namespace, "incluster": o.kubernetes_context is None,
                        **({"kubernetes_context": o.kubernetes_context} if o.kubernetes_context else {})}
    else:
        orchestrator = {key: value for key, value in (("kubeflow_hostname", o.kubeflow_host),
                                                      ("kubernetes_context", o.kubernetes_context)) if value}
    store = stack.artifact_store
    artifacts: dict = {"path": store.path}
    if store.endpoint_url:
        artifacts["client_kwargs"] = {"endpoint_url": store.endpoint_url}
    if store.secret:
        artifacts |= {"key": _secret_ref(store.secret, "aws_access_key_id"),
                      "secret": _secret_ref(store.secret, "aws_secret_access_key")}
    tracker = {"tracking_uri": stack.mlflow.tracking_uri,
               "tracking_username": _secret_ref(stack.mlflow.secret, "username"),
               "tracking_password": _secret_ref(stack.mlflow.secret, "password")}
    return [(Kind.ORCHESTRATOR, f"{stack.name}-orchestrator", o.flavor, orchestrator),
            (Kind.ARTIFACT_STORE, f"{stack.name}-artifacts", "s3", artifacts),
            (Kind.CONTAINER_REGISTRY, f"{stack.name}-registry", "default", {"uri": stack.container_registry}),
            (Kind.EXPERIMENT_TRACKER, f"{stack.name}-mlflow-tracker", "mlflow", tracker),
            (Kind.MODEL_REGISTRY, f"{stack.name}-mlflow-registry", "mlflow", {})]


def required_secrets(stack) -> list[tuple[str, tuple[str, ...]]]:
    needed = [(stack.mlflow.secret, ("username", "password"))]
    if stack.artifact_store.secret:
        needed.append((stack.artifact_store.secret, ("aws_access_key_id", "aws_secret_access_key")))
    return needed


def register_stack(stack, activate: bool = False) -> Registered:
    """Create or update the stack's components and the stack. The local config maps to the embedded stack."""
    from zenml.client import Client

    from pipelines.stack_activation import StackNotReady, activate as activate_stack

    if not stack.remote:  # the embedded stack: created on first use, always active when used
        return Registered(activate_stack(None), {}, created=False)
    client = Client()
    for secret, keys in required_secrets(stack):
        try:
            values = client.get_secret(secret).secret_values
        except KeyError:
            raise StackNotReady(f"ZenML secret {secret!r} does not exist; create it first: zenml secret create {secret} "
                                + " ".join(f"--{k}=..." for k in keys)) from None
        missing = [k for k in keys if k not in values]
        if missing:
            raise StackNotReady(f"ZenML secret {secret!r} lacks {', '.join(missing)}")
    existing = {(c.type, c.name) for c in client.list_stack_components(size=1000)}
    names = {}
    for kind, name, flavor, configuration in component_specs(stack):
        if (kind, name) in existing:
            client.update_stack_component(name, kind, configuration=configuration)
        else:
            client.create_stack_component(name, flavor, kind, configuration)
        names[kind] = name
    created = stack.name not in {s.name for s in client.list_stacks(size=1000)}
    if created:
        client.create_stack(stack.name, components=names)
    else:
        client.update_stack(stack.name, component_updates={kind: [name] for kind, name in names.items()})
    if activate:
        client.activate_stack(stack.name)
    return Registered(stack.name, {str(k): v for k, v in names.items()}, created)
