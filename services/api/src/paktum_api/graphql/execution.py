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
from dataclasses import field as dataclass_field
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
    as_is: type | None = dataclass_field(init=False)  # what graphql-core gives back unchanged: str for a String field

    def __post_init__(self) -> None:
        object.__setattr__(self, "as_is", str if self.leaf is GraphQLString and not self.is_list else None)

    def complete(self, value: Any) -> Any:
        if value is None or value is Undefined:
            return None if self.nullable else _GENERAL
        if self.is_list:
            if isinstance(value, str | bytes | Mapping):
                return _GENERAL
            if self.leaf is GraphQLString and isinstance(value, list | tuple) and all(type(v) is str for v in value):
                return list(value)  # tags: what String would give back, item by item
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


@dataclass
class _Selection:
    """A grouped field set split into its plain fields (with their plans) and the rest."""

    fields: dict[str, Any]  # held, so its id() is not reused while this execution remembers it
    plain: list[tuple[str, PlainField]]
    general: dict[str, Any] | None
    plain_first: bool  # every plain field comes before every other one in the selection


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
        return inner, nullable, False
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
            self.selections: dict[tuple[str, int], _Selection] = {}

        def execute_fields(
            self,
            parent_type: GraphQLObjectType,
            source_value: Any,
            path: Any,
            grouped_field_set: dict[str, Any],
            position_context: Any,
        ) -> Any:
            # Plain fields here, the others (and any plain one that declines) the general way; the answer keeps
            # the order of the selection either way.
            selection = self._selection(parent_type.name, grouped_field_set)
            plain: dict[str, Any] = {}
            general = selection.general
            declined = False
            for response_name, plan in selection.plain:
                value = getattr(source_value, plan.attribute, _GENERAL)
                if type(value) is plan.as_is:  # a string for a String field: given back as it is
                    plain[response_name] = value
                    continue
                completed = _GENERAL if value is _GENERAL else plan.complete(value)
                if completed is _GENERAL:
                    declined = True
                else:
                    plain[response_name] = completed
            if declined:  # in the selection's order, so errors come as the general path raises them
                general = {name: details for name, details in grouped_field_set.items() if name not in plain}
            if general is None:
                return plain
            rest = super().execute_fields(parent_type, source_value, path, general, position_context)
            if not plain:
                return rest
            ordered = selection.plain_first and not declined  # then the plain fields, then the rest, is the order
            if isinstance(rest, dict):
                return {**plain, **rest} if ordered else _in_order(grouped_field_set, plain, rest)

            async def in_order() -> dict[str, Any]:
                done = await rest
                return {**plain, **done} if ordered else _in_order(grouped_field_set, plain, done)

            return in_order()

        def _selection(self, type_name: str, grouped_field_set: dict[str, Any]) -> _Selection:
            # graphql-core collects a selection set once per execution and hands every item of a list the
            # same grouped field set: sort its fields once, for all of them.
            key = (type_name, id(grouped_field_set))
            known = self.selections.get(key)
            if known is None or known.fields is not grouped_field_set:
                plain, general = [], {}
                for response_name, field_details_list in grouped_field_set.items():
                    node = field_details_list[0].node
                    plan = self.plain_fields.get((type_name, node.name.value))
                    if plan is None or len(field_details_list) != 1 or node.directives:
                        general[response_name] = field_details_list
                    else:
                        plain.append((response_name, plan))
                names = list(grouped_field_set)
                plain_first = all(names.index(name) < len(plain) for name, _ in plain)
                known = _Selection(grouped_field_set, plain, general or None, plain_first)
                self.selections[key] = known
            return known

    return PlainFieldsExecutionContext


def _in_order(grouped_field_set: dict[str, Any], plain: dict[str, Any], rest: dict[str, Any]) -> dict[str, Any]:
    return {
        name: plain[name] if name in plain else rest[name]
        for name in grouped_field_set
        if name in plain or name in rest
    }
