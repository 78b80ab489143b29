"""``RuntimeJSONSerializer``: Prefect's serializer for primitive results, on the client's own encoder.

Records are written with qiskit-ibm-runtime's ``RuntimeEncoder`` and read with its
``RuntimeDecoder`` (ASCII JSON, so always valid UTF-8). Prefect finds a serializer by its ``type``
once its class is defined, so this module is imported with the package; it defers the client's
import to the first record, so that importing the package (Prefect loads it to register the
blocks) does not import qiskit.
"""

from __future__ import annotations

import json
import threading
from typing import Any, Literal

from prefect.serializers import Serializer

# One decode at a time in a process. The client's decoder reads each numpy array's header with
# ``ast.literal_eval``, and CPython 3.11 (3.11.7 seen here) can fail two AST constructions in two
# threads at once with "SystemError: AST constructor recursion depth mismatch" (CPython issue
# 106905 and kin): results fetched side by side raised it. Decoding holds the GIL anyway, so
# taking turns costs next to nothing.
DECODING = threading.Lock()


class RuntimeJSONSerializer(Serializer):  # type: ignore[type-arg]
    """Prefect serializer for primitive results, on the client's own wire encoder."""

    type: Literal["qiskit-runtime-json"] = "qiskit-runtime-json"

    def dumps(self, obj: Any) -> bytes:
        from qiskit_ibm_runtime import RuntimeEncoder

        return json.dumps(obj, cls=RuntimeEncoder).encode("utf-8")

    def loads(self, blob: bytes) -> Any:
        from qiskit_ibm_runtime import RuntimeDecoder

        with DECODING:
            return json.loads(blob.decode("utf-8"), cls=RuntimeDecoder)
