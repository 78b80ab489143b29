"""What griffe needs to build the API reference from the package as it is, under `--strict`.

The reference is built by importing the package (``force_inspection`` in mkdocs.yml): its tasks are
made by a factory and most names load lazily (PEP 562), so the source alone holds no docstring
for them. Three things would go wrong on the way; none is a fault of the docstrings' content:

- griffe imports every submodule it finds, ``prefect_qiskit_jobs/__main__.py`` included, which
  runs the command line (with mkdocs' own arguments, so it prints an error). Modules named
  ``__main__`` are skipped.
- Prefect's ``@flow`` parses a flow's docstring with griffe when its module is imported, with no
  signature at hand, so griffe warns "No type or annotation for parameter" for each parameter of
  ``reap_orphaned_jobs``; under ``--strict`` that would fail the build. The package's public
  names are imported here once, with those warnings silenced, before griffe inspects them; the
  reference then reads the real signatures.
- The docstrings head their doctests ``Example:``, which Google style (and Napoleon) accept but
  griffe's Google parser reads as an admonition of Markdown text, not as an examples section: the
  ``>>>`` lines would run together and ``[...]`` output would be taken for links. The heading is
  read as ``Examples:``.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from griffe import Extension, GriffeLoader, Object

GriffeLoader.ignored_modules.add("__main__")

_EXAMPLE_HEADING = re.compile(r"^(\s*)Example:[ \t]*$", flags=re.MULTILINE)


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


class DocstringExamples(Extension):
    """Reads a docstring's ``Example:`` heading as Google style's ``Examples:`` section."""

    def on_instance(self, *, obj: Object, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = _EXAMPLE_HEADING.sub(r"\1Examples:", obj.docstring.value)
