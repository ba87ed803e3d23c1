"""GraphQL execution with a short path for plain attribute fields, where a page of images spends its time.

graphql-core completes every field through the same general machinery: a resolve-info object, strawberry's
resolver wrapper, then a recursion through non-null, list and leaf checks for the value and for each item of
a list. A page of 50 images with `Related` is about a thousand such fields and as many tags, and that was
most of what a GraphQL page cost beyond the REST one. Here a field that is a plain attribute of a scalar or
enum type (or a list of them) and has no directive is read and coerced directly. Anything unexpected (a null
where the schema says non-null, a value the type will not coerce, a missing attribute) goes the general way,
which then reports it exactly as before.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from graphql import (
    GraphQLInt,
    GraphQLLeafType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLSchema,
    GraphQLString,
    Undefined,
    is_leaf_type,
)
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext
from strawberry.schema.schema_converter import GraphQLCoreConverter

_GENERAL = object()  # the short path declines: take the general one


_INT_RANGE = range(-(2**31), 2**31)  # GraphQL's Int is 32 bits; graphql-core refuses a larger value


@dataclass(frozen=True)
class PlainField:
    """How to complete one plain field: the attribute to read and its leaf type, with the schema's nullability."""

    attribute: str
    leaf: GraphQLLeafType
    nullable: bool  # the value itself may be null
    is_list: bool  # a list of non-null leaves (the list itself as `nullable` says)

    def complete(self, value: Any) -> Any:
        if value is None or value is Undefined:
            return None if self.nullable else _GENERAL
        if self.is_list:
            if isinstance(value, str | bytes | Mapping):
                return _GENERAL
            items = [self._coerce(item) for item in value]
            return _GENERAL if any(item is _GENERAL for item in items) else items
        return self._coerce(value)

    def _coerce(self, value: Any) -> Any:
        # What graphql-core's String and Int give back unchanged, given back without a call (most of a page).
        kind = type(value)
        if (kind is str and self.leaf is GraphQLString) or (
            kind is int and self.leaf is GraphQLInt and value in _INT_RANGE
        ):
            return value
        try:
            coerced = self.leaf.coerce_output_value(value)
        except Exception:
            return _GENERAL
        return _GENERAL if coerced is None or coerced is Undefined else coerced


def plain_fields(schema: GraphQLSchema) -> dict[tuple[str, str], PlainField]:
    """Every field of the schema's object types that strawberry resolves as a plain attribute of a leaf type."""
    found = {}
    for type_name, graphql_type in schema.type_map.items():
        if not isinstance(graphql_type, GraphQLObjectType) or type_name.startswith("__"):
            continue
        for field_name, field in graphql_type.fields.items():
            definition = (field.extensions or {}).get(GraphQLCoreConverter.DEFINITION_BACKREF)
            if definition is None or not getattr(field.resolve, "_is_default", False):
                continue  # a resolver of our own (or not strawberry's field): the general path
            shape = _leaf_shape(field.type)
            if shape is not None:
                found[type_name, field_name] = PlainField(definition.python_name, *shape)
    return found


def _leaf_shape(output: GraphQLOutputType) -> tuple[GraphQLLeafType, bool, bool] | None:
    nullable = not isinstance(output, GraphQLNonNull)
    inner = output.of_type if isinstance(output, GraphQLNonNull) else output
    if is_leaf_type(inner):
        return inner, nullable, False  # type: ignore[return-value]
    if (
        isinstance(inner, GraphQLList)
        and isinstance(inner.of_type, GraphQLNonNull)
        and is_leaf_type(inner.of_type.of_type)
    ):
        return inner.of_type.of_type, nullable, True
    return None


def execution_context_class(schema: GraphQLSchema) -> type[StrawberryGraphQLCoreExecutionContext]:
    """strawberry's execution context, with the short path for the plain fields of `schema`."""
    plans = plain_fields(schema)

    class PlainFieldsExecutionContext(StrawberryGraphQLCoreExecutionContext):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            manager = self.middleware_manager
            # A resolve middleware (an extension's `resolve` hook) must see every field: no short path then.
            self.plain_fields = {} if manager is not None and manager.middlewares else plans

        def execute_field(  # type: ignore[override]
            self,
            parent_type: GraphQLObjectType,
            source: Any,
            field_details_list: Any,
            path: Any,
            position_context: Any,
        ) -> Any:
            node = field_details_list[0].node
            plan = self.plain_fields.get((parent_type.name, node.name.value))
            if plan is not None and len(field_details_list) == 1 and not node.directives:
                try:
                    value = getattr(source, plan.attribute)
                except AttributeError:
                    value = _GENERAL
                if value is not _GENERAL:
                    completed = plan.complete(value)
                    if completed is not _GENERAL:
                        return completed
            return super().execute_field(parent_type, source, field_details_list, path, position_context)

    return PlainFieldsExecutionContext
