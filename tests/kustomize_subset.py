"""Render a kustomization without the kustomize binary, for the offline manifest tests.

Implements exactly the subset k8s/ uses, with kustomize's semantics; any other key, or a use of a
supported key this module does not model, raises UnsupportedKustomization rather than rendering
something real kustomize would not:

- `resources`: YAML files (several documents each) and folders holding a kustomization.yaml,
  rendered first (a base's own transformations apply before the overlay's).
- `namespace`: sets metadata.namespace on every namespaced object. RoleBinding subjects are not
  rewritten (kustomize only rewrites some of them), so a subject in another namespace raises.
- `labels` with `pairs` and includeSelectors/includeTemplates false: adds to metadata.labels only,
  never to selectors or pod templates.
- `images` with `name` + `newName`/`newTag`: retags matching containers and initContainers.
- `patches` with `target` (kind, name, optional group/version/namespace) and an inline `patch` or
  `path` holding a JSON6902 op list (add / replace / remove). Strategic-merge patches raise.
"""
from __future__ import annotations

import copy
from pathlib import Path

import yaml

KUSTOMIZATION_FILE = "kustomization.yaml"
SUPPORTED_KEYS = {"apiVersion", "kind", "resources", "namespace", "labels", "images", "patches"}
CLUSTER_SCOPED_KINDS = {"Namespace", "ClusterRole", "ClusterRoleBinding", "PersistentVolume", "StorageClass",
                        "PriorityClass", "CustomResourceDefinition"}
NAMESPACED_KINDS = {"ServiceAccount", "Role", "RoleBinding", "PersistentVolumeClaim", "ResourceQuota", "Service",
                    "Deployment", "StatefulSet", "CronJob", "Job", "NetworkPolicy", "Secret", "ConfigMap",
                    "PodDisruptionBudget", "PodDefault"}
POD_SPEC_CONTAINER_LISTS = ("containers", "initContainers")


class UnsupportedKustomization(ValueError):
    """The kustomization uses something this renderer does not implement faithfully."""


def render(folder: Path | str) -> list[dict]:
    """The objects `kubectl kustomize folder` would print (in resource order, not kustomize's sort)."""
    folder = Path(folder)
    kustomization = _load_kustomization(folder)
    objects: list[dict] = []
    for entry in kustomization.get("resources", []):
        source = (folder / entry).resolve()
        if source.is_dir():
            objects.extend(render(source))
        elif source.is_file():
            objects.extend(doc for doc in yaml.safe_load_all(source.read_text()) if doc)
        else:
            raise FileNotFoundError(f"{folder / KUSTOMIZATION_FILE}: resource {entry} does not exist")
    _check_unique(objects)
    if "namespace" in kustomization:
        _set_namespace(objects, kustomization["namespace"])
    for label_set in kustomization.get("labels", []):
        _add_labels(objects, label_set)
    for image in kustomization.get("images", []):
        _retag_images(objects, image)
    for patch in kustomization.get("patches", []):
        _apply_patch(objects, patch, folder)
    return objects


def _load_kustomization(folder: Path) -> dict:
    path = folder / KUSTOMIZATION_FILE
    kustomization = yaml.safe_load(path.read_text())
    unknown = set(kustomization) - SUPPORTED_KEYS
    if unknown:
        raise UnsupportedKustomization(f"{path}: keys not implemented by this renderer: {sorted(unknown)}")
    if (kustomization.get("apiVersion"), kustomization.get("kind")) != ("kustomize.config.k8s.io/v1beta1",
                                                                        "Kustomization"):
        raise UnsupportedKustomization(f"{path}: expected apiVersion kustomize.config.k8s.io/v1beta1, "
                                       "kind Kustomization")
    return kustomization


def _object_id(obj: dict) -> tuple:
    meta = obj["metadata"]
    return obj["apiVersion"], obj["kind"], meta.get("namespace"), meta["name"]


def _check_unique(objects: list[dict]) -> None:
    seen = set()
    for obj in objects:
        key = _object_id(obj)
        if key in seen:
            raise ValueError(f"two resources with the same id {key}")  # kustomize refuses these too
        seen.add(key)


def _set_namespace(objects: list[dict], namespace: str) -> None:
    for obj in objects:
        kind = obj["kind"]
        if kind in CLUSTER_SCOPED_KINDS:
            continue
        if kind not in NAMESPACED_KINDS:
            raise UnsupportedKustomization(f"{kind}: scope unknown to this renderer; add it to a kind list")
        obj["metadata"]["namespace"] = namespace
        for subject in obj.get("subjects", []):
            if subject.get("namespace") != namespace:
                raise UnsupportedKustomization(f"{kind} {obj['metadata']['name']}: subject {subject} outside "
                                               f"namespace {namespace}; kustomize's rewrite of it is not modelled")


def _add_labels(objects: list[dict], label_set: dict) -> None:
    unknown = set(label_set) - {"pairs", "includeSelectors", "includeTemplates"}
    if unknown or label_set.get("includeSelectors") or label_set.get("includeTemplates"):
        raise UnsupportedKustomization(f"labels entry {label_set}: only `pairs` on metadata.labels is implemented")
    for obj in objects:
        obj["metadata"].setdefault("labels", {}).update(label_set["pairs"])


def _split_image(image: str) -> tuple[str, str | None]:
    if "@" in image:
        raise UnsupportedKustomization(f"image {image}: digests are not implemented")
    name, sep, tag = image.rpartition(":")
    if not sep or "/" in tag:  # the colon was a registry port, not a tag
        return image, None
    return name, tag


def _pod_containers(node):
    """Every container and initContainer anywhere below node (kustomize's image fields)."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key in POD_SPEC_CONTAINER_LISTS and isinstance(value, list):
                yield from value
            else:
                yield from _pod_containers(value)
    elif isinstance(node, list):
        for item in node:
            yield from _pod_containers(item)


def _retag_images(objects: list[dict], image: dict) -> None:
    unknown = set(image) - {"name", "newName", "newTag"}
    if unknown:
        raise UnsupportedKustomization(f"images entry {image}: {sorted(unknown)} not implemented")
    for container in _pod_containers(objects):
        name, tag = _split_image(container["image"])
        if name != image["name"]:
            continue
        new_tag = str(image["newTag"]) if "newTag" in image else tag
        container["image"] = image.get("newName", name) + (f":{new_tag}" if new_tag else "")


def _matches(obj: dict, target: dict) -> bool:
    group, _, version = obj["apiVersion"].rpartition("/")
    actual = {"kind": obj["kind"], "name": obj["metadata"]["name"], "group": group, "version": version,
              "namespace": obj["metadata"].get("namespace")}
    return all(actual[key] == value for key, value in target.items())


def _apply_patch(objects: list[dict], patch: dict, folder: Path) -> None:
    unknown = set(patch) - {"target", "patch", "path"}
    target = patch.get("target") or {}
    if unknown or not target or set(target) - {"kind", "name", "group", "version", "namespace"}:
        raise UnsupportedKustomization(f"patch {patch}: only JSON6902 patches with a kind/name target are implemented")
    if ("patch" in patch) == ("path" in patch):
        raise UnsupportedKustomization(f"patch {patch}: give exactly one of `patch` and `path`")
    ops = yaml.safe_load(patch["patch"] if "patch" in patch else (folder / patch["path"]).read_text())
    if not isinstance(ops, list):
        raise UnsupportedKustomization(f"patch {patch}: strategic-merge patches are not implemented")
    matched = [index for index, obj in enumerate(objects) if _matches(obj, target)]
    if not matched:
        raise ValueError(f"patch target {target} matches no resource")
    for index in matched:
        patched = copy.deepcopy(objects[index])
        for op in ops:
            _apply_op(patched, op)
        objects[index] = patched


def _pointer(path: str) -> list[str]:
    if not path.startswith("/"):
        raise ValueError(f"JSON pointer {path!r} must start with /")
    return [part.replace("~1", "/").replace("~0", "~") for part in path[1:].split("/")]


def _apply_op(document: dict, op: dict) -> None:
    """One RFC 6902 operation, in place; a missing parent (or a missing target for replace/remove) raises."""
    kind = op.get("op")
    if kind not in {"add", "replace", "remove"} or set(op) - {"op", "path", "value"}:
        raise UnsupportedKustomization(f"JSON6902 op {op}: only add, replace and remove are implemented")
    *parents, last = _pointer(op["path"])
    parent = document
    for part in parents:
        parent = parent[int(part)] if isinstance(parent, list) else parent[part]
    if isinstance(parent, list):
        if kind == "add":
            parent.insert(len(parent) if last == "-" else _list_index(parent, last, inserting=True), op["value"])
        elif kind == "replace":
            parent[_list_index(parent, last)] = op["value"]
        else:
            del parent[_list_index(parent, last)]
        return
    if kind != "add" and last not in parent:
        raise KeyError(f"{op['op']} {op['path']}: no such member")
    if kind == "remove":
        del parent[last]
    else:
        parent[last] = op["value"]


def _list_index(items: list, part: str, inserting: bool = False) -> int:
    index = int(part)
    if not 0 <= index < len(items) + (1 if inserting else 0):
        raise IndexError(f"index {index} outside a list of {len(items)}")
    return index
