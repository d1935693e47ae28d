"""How a TakedownBatch is stored in the stack's artefact store (local files, or S3/MinIO on a cluster).

The batch saves itself (components/takedown/batch.py: each stage output by its own save()); this only
moves that folder to and from the store, so a step pod on any node reads what the step before wrote
and nothing passes through a shared volume.
"""
from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any, ClassVar

from zenml.enums import ArtifactType
from zenml.materializers.base_materializer import BaseMaterializer
from zenml.utils import io_utils

from components.takedown.batch import TakedownBatch


class TakedownBatchMaterializer(BaseMaterializer):
    ASSOCIATED_TYPES: ClassVar[tuple[type[Any], ...]] = (TakedownBatch,)
    ASSOCIATED_ARTIFACT_TYPE: ClassVar[ArtifactType] = ArtifactType.DATA

    def save(self, data: TakedownBatch) -> None:
        with self.get_temporary_directory(delete_at_exit=True) as folder:
            data.save(Path(folder))
            io_utils.copy_dir(folder, self.uri, overwrite=True)

    def load(self, data_type: type[Any]) -> TakedownBatch:
        # Kept until the step ends (a report folder is read by the step); outside a step, a temp folder of the caller's.
        with self.get_temporary_directory(delete_at_exit=False) as folder:
            io_utils.copy_dir(self.uri, folder, overwrite=True)
            return TakedownBatch.load(Path(folder), fetch=_fetch, origin=self.uri)


def _fetch(uri: str) -> Path:
    """A local copy of an object folder that an earlier batch artefact holds."""
    folder = tempfile.mkdtemp(prefix="lethe-artefact-")
    io_utils.copy_dir(uri, folder, overwrite=True)
    return Path(folder)
