"""GraphQL query cost: a price for a query before it runs, so one request cannot ask for millions of rows.

A field costs 1 plus its sub-selection times how many objects it can return: its `limit` argument
(a variable's value, or the maximum when the value is unknown), RELATED_WEIGHT for `Related`, else 1.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from graphql import (
    ASTValidationRule,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    IntValueNode,
    OperationDefinitionNode,
    SelectionSetNode,
    VariableNode,
    parse,
)
from strawberry.extensions import SchemaExtension

LIMIT_MAX = 100
RELATED_WEIGHT = 20  # variant groups are small; a larger one still costs one batched lookup


def query_cost(text: str, variables: Mapping[str, Any] | None = None) -> int:
    """The cost of the most expensive operation in a GraphQL document."""
    document = parse(text)
    fragments = {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    return max((selection_cost(op.selection_set, fragments, variables or {}) for op in operations), default=0)


def selection_cost(
    selection_set: SelectionSetNode | None,
    fragments: Mapping[str, FragmentDefinitionNode],
    variables: Mapping[str, Any],
    seen_fragments: frozenset[str] = frozenset(),
) -> int:
    if selection_set is None:
        return 0
    total = 0
    for selection in selection_set.selections:
        if isinstance(selection, FieldNode):
            children = selection_cost(selection.selection_set, fragments, variables, seen_fragments)
            total += 1 + _multiplier(selection, variables) * children
        elif isinstance(selection, InlineFragmentNode):
            total += selection_cost(selection.selection_set, fragments, variables, seen_fragments)
        elif isinstance(selection, FragmentSpreadNode):
            name = selection.name.value
            fragment = fragments.get(name)
            if fragment is not None and name not in seen_fragments:  # a cycle is another rule's error
                total += selection_cost(fragment.selection_set, fragments, variables, seen_fragments | {name})
    return total


def _multiplier(field: FieldNode, variables: Mapping[str, Any]) -> int:
    if field.name.value == "Related":
        return RELATED_WEIGHT
    for argument in field.arguments or ():
        if argument.name.value != "limit":
            continue
        value: Any = LIMIT_MAX
        if isinstance(argument.value, IntValueNode):
            value = int(argument.value.value)
        elif isinstance(argument.value, VariableNode):
            value = variables.get(argument.value.name.value, LIMIT_MAX)
        # Out-of-range limits are refused by the resolver; price them at the bound meanwhile.
        return max(1, min(value, LIMIT_MAX)) if isinstance(value, int) else LIMIT_MAX
    return 1


class QueryCostLimiter(SchemaExtension):
    """Refuse, before execution, an operation whose cost is above `max_cost`, with a GraphQL error."""

    def __init__(self, max_cost: int) -> None:
        self.max_cost = max_cost

    def on_operation(self) -> Iterator[None]:
        context = self.execution_context
        max_cost = self.max_cost
        variables = context.variables or {}

        class CostRule(ASTValidationRule):
            def enter_operation_definition(self, node: OperationDefinitionNode, *_: Any) -> None:
                fragments = {
                    d.name.value: d for d in self.context.document.definitions if isinstance(d, FragmentDefinitionNode)
                }
                cost = selection_cost(node.selection_set, fragments, variables)
                if cost > max_cost:
                    self.report_error(
                        GraphQLError(
                            f"query cost {cost} is above the limit of {max_cost}: "
                            "ask for fewer images (a smaller limit), fewer aliases or fewer nested fields",
                            node,
                        )
                    )

        context.validation_rules = (*context.validation_rules, CostRule)
        yield
