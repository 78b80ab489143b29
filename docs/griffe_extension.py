"""What griffe needs to build the API reference from the package as it is, under `--strict`.

The reference is built by importing the package (``force_inspection`` in mkdocs.yml): its tasks are
made by a factory and most names load lazily (PEP 562), so the source alone holds no docstring
for them. Four things would go wrong on the way; none is a fault of the docstrings' content:

- griffe imports every submodule it finds, ``prefect_qiskit_jobs/__main__.py`` included, which
  runs the command line (with mkdocs' own arguments, so it prints an error). Modules named
  ``__main__`` are skipped.
- Prefect's ``@flow`` parses a flow's docstring with griffe when its module is imported, with no
  signature at hand, so griffe warns "No type or annotation for parameter" for each parameter of
  ``reap_orphaned_jobs``; under ``--strict`` that would fail the build. The package's public
  names are imported here once, with those warnings silenced, before griffe inspects them; the
  reference then reads the real signatures.
- Inspection writes an enum default as its repr, ``<PrimitiveApi.V2: 'v2'>``, which is not Python:
  the signature could not be formatted and would read oddly. It is written ``PrimitiveApi.V2``.
- The docstrings head their doctests ``Example:``, which Google style (and Napoleon) accept but
  griffe's Google parser reads as an admonition of Markdown text, not as an examples section: the
  ``>>>`` lines would run together and ``[...]`` output would be taken for links. The heading is
  read as ``Examples:``.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from griffe import Extension, Function, GriffeLoader, Object

GriffeLoader.ignored_modules.add("__main__")

_EXAMPLE_HEADING = re.compile(r"^(\s*)Example:[ \t]*$", flags=re.MULTILINE)
_ENUM_REPR = re.compile(r"^<(\w+\.\w+): .*>$")


def _import_public_names() -> None:
    import prefect_qiskit_jobs

    previous = logging.root.manager.disable
    logging.disable(logging.WARNING)
    try:
        for name in prefect_qiskit_jobs.__all__:
            getattr(prefect_qiskit_jobs, name)
    finally:
        logging.disable(previous)


_import_public_names()


class ReadAsWritten(Extension):
    """Reads ``Example:`` as Google style's ``Examples:`` section, and enum defaults as Python."""

    def on_instance(self, *, obj: Object, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = _EXAMPLE_HEADING.sub(r"\1Examples:", obj.docstring.value)
        if isinstance(obj, Function):
            for parameter in obj.parameters:
                match = _ENUM_REPR.match(str(parameter.default)) if parameter.default is not None else None
                if match:
                    parameter.default = match.group(1)
