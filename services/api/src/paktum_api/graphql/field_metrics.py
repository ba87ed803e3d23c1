"""GraphQL metrics by root field: every request is POST /query, so the route alone says little."""

from __future__ import annotations

from collections.abc import Iterator

from graphql import FieldNode, OperationDefinitionNode
from strawberry.extensions import SchemaExtension

from paktum_common import metrics

FIELDS = metrics.counter(
    "api", "graphql_fields_total", "GraphQL root fields asked for, by field and outcome.", ("field", "outcome")
)


class RootFieldMetrics(SchemaExtension):
    """Count each root field of an operation once it has run, as `ok` or `error` (any error in the answer)."""

    def __init__(self, known: frozenset[str]) -> None:
        # Only the schema's own fields become labels, so made-up names cannot grow the series without bound.
        self.known = known

    def on_operation(self) -> Iterator[None]:
        yield
        context = self.execution_context
        document = context.graphql_document
        if document is None:  # a syntax error: nothing to attribute it to
            return
        outcome = "error" if context.result is None or context.result.errors else "ok"
        for definition in document.definitions:
            if isinstance(definition, OperationDefinitionNode):
                for selection in definition.selection_set.selections:
                    if isinstance(selection, FieldNode) and selection.name.value in self.known:
                        FIELDS.labels(selection.name.value, outcome).inc()
