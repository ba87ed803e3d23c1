"""GraphQL execution with a short path for the fields a page of images is made of, where it spends its time.

graphql-core completes every field through the same general machinery: a resolve-info object, strawberry's
resolver wrapper, then a recursion through non-null, list and object checks for the value and for each item
of a list. A page of 50 images with `Related` is about a thousand such fields and as many tags, and that was
most of what a GraphQL page cost beyond the REST one. Here three kinds of field are completed directly:

- a plain attribute of a scalar or enum type (or a list of them), read and coerced;
- `__typename`, the object type's name;
- an object, or a list of objects, that is a plain attribute or a *prefetched* field (a resolver field whose
  value the page fetched already, marked with `prefetched()`; `Image.Related`), when every field its selection
  asks for is one of these kinds too: the whole object (or list) is built here, or none of it is.

An object whose selection is all such fields is built by one function compiled for that selection's shape
(`builder`), once per shape for every execution; a root field's list of objects (and a `Related` loaded later)
is completed the same way (`complete_value`). In a selection that also has other fields, each short-path field
is read on its own (`_read`) and the rest go the general way.
Anything unexpected (a null where the schema says non-null, a value the type will not coerce, a missing
attribute, a prefetched field not fetched, a directive on the field, a deferred fragment) goes the general way,
which then resolves and reports it exactly as before.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from functools import partial
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
PREFETCHED = "paktum.prefetched"  # strawberry field metadata: the attribute holding the fetched value


def prefetched(attribute: str) -> dict[str, str]:
    """strawberry.field metadata for a resolver field whose value is in `attribute` once fetched (None: not)."""
    return {PREFETCHED: attribute}


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

    def members(self) -> tuple[type, dict[Any, Any]] | None:
        """For a strawberry enum: its Python class and what graphql-core gives for each member."""
        wrapped = getattr(self.leaf, "wrapped_cls", None)
        if self.is_list or not isinstance(wrapped, type) or not issubclass(wrapped, enum.Enum):
            return None
        return wrapped, {member: self.leaf.coerce_output_value(member) for member in wrapped}

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


@dataclass(frozen=True)
class ObjectField:
    """An object, or a list of non-null objects, of one object type: an attribute's value, or a prefetched one."""

    attribute: str  # "" for a value handed to complete_value
    object_type: GraphQLObjectType
    nullable: bool
    is_list: bool
    prefetched: bool = False  # None in the attribute means "not fetched": the resolver runs, the general way


class _TypeName:
    """`__typename`: the name of the object type the field is on."""


TYPENAME = _TypeName()
Plan = PlainField | ObjectField | _TypeName


@dataclass
class _Selection:
    """A grouped field set split into the fields with a short path (with their plans) and the rest."""

    fields: dict[str, Any]  # held, so its id() is not reused while this execution remembers it
    plain: list[tuple[str, Plan, Any]]  # response name, plan, the field's details (for an object's subfields)
    general: dict[str, Any] | None
    plain_first: bool  # every short-path field comes before every other one in the selection


@dataclass(frozen=True)
class _Whole:
    """A selection every field of which has a short path: the compiled builder, with this execution's completers
    for its object fields (in the order the builder calls them)."""

    build: Callable[[Any, tuple[Callable[[Any], Any], ...]], Any]
    nested: tuple[Callable[[Any], Any], ...]


_BUILDERS: dict[tuple[str, tuple[tuple[str, Plan], ...]], Callable[..., Any]] = {}
BUILDERS_MAX = 1024  # distinct selections remembered (documents are cached by the hundred): then start over
_INT_MIN, _INT_MAX = -(2**31), 2**31 - 1


def builder(type_name: str, fields: Sequence[tuple[str, Plan]]) -> Callable[..., Any]:
    """The function that completes one selection of `type_name` whole: `build(source, nested)` gives the
    answer's dict, in the selection's order, or _GENERAL when any field declines. Compiled once per selection
    shape and remembered, so an execution (and each item of a list) costs one call instead of a dispatch per
    field: a page of images is about a thousand fields."""
    key = (type_name, tuple(fields))
    known = _BUILDERS.get(key)
    if known is None:
        if len(_BUILDERS) >= BUILDERS_MAX:
            _BUILDERS.clear()
        known = _BUILDERS[key] = _compile(type_name, fields)
    return known


def _compile(type_name: str, fields: Sequence[tuple[str, Plan]]) -> Callable[..., Any]:
    # Every name and attribute enters the source as a repr() literal; the values it needs are in `env`.
    env: dict[str, Any] = {"_G": _GENERAL, "_getattr": getattr, "_str": str, "_int": int, "_list": list,
                           "_all": all, "_map": map, "_isstr": str.__instancecheck__}  # fmt: skip
    lines = ["def build(source, nested):"]
    objects = 0
    for i, (_, plan) in enumerate(fields):
        v = f"v{i}"
        if isinstance(plan, _TypeName):
            lines.append(f"    {v} = {type_name!r}")
            continue
        lines.append(f"    {v} = _getattr(source, {plan.attribute!r}, _G)")
        if isinstance(plan, ObjectField):
            lines.append(f"    {v} = nested[{objects}]({v})")
            objects += 1
        else:
            env[f"slow{i}"] = plan.complete
            slow = f"{v} = _G if {v} is _G else slow{i}({v})"
            members = plan.members()
            if plan.is_list and plan.leaf is GraphQLString:  # tags: a list of strings, given back as it is
                lines += [f"    if type({v}) is not _list or not _all(_map(_isstr, {v})):", f"        {slow}"]
            elif plan.leaf is GraphQLString:
                lines += [f"    if type({v}) is not _str:", f"        {slow}"]
            elif plan.leaf is GraphQLInt and not plan.is_list:
                in_range = f"{_INT_MIN} <= {v} <= {_INT_MAX}"
                lines += [f"    if type({v}) is not _int or not {in_range}:", f"        {slow}"]
            elif members is not None:
                env[f"cls{i}"], env[f"names{i}"] = members
                lines += [
                    f"    if type({v}) is cls{i}:",
                    f"        {v} = names{i}[{v}]",
                    "    else:",
                    f"        {slow}",
                ]
            else:
                lines.append(f"    {slow}")
        lines.append(f"    if {v} is _G:")
        lines.append("        return _G")
    answer = ", ".join(f"{name!r}: v{i}" for i, (name, _) in enumerate(fields))
    lines.append(f"    return {{{answer}}}")
    exec("\n".join(lines), env)  # the source is made above from literals only
    built: Callable[..., Any] = env["build"]
    return built


def plain_fields(schema: GraphQLSchema) -> dict[tuple[str, str], PlainField | ObjectField]:
    """Every field of the schema's object types that has a short path: a plain attribute of a leaf or object
    type (strawberry's default resolver), or a prefetched field."""
    found: dict[tuple[str, str], PlainField | ObjectField] = {}
    for type_name, graphql_type in schema.type_map.items():
        if not isinstance(graphql_type, GraphQLObjectType) or type_name.startswith("__"):
            continue
        for field_name, field in graphql_type.fields.items():
            definition = (field.extensions or {}).get(GraphQLCoreConverter.DEFINITION_BACKREF)
            if definition is None:
                continue
            attribute = (definition.metadata or {}).get(PREFETCHED)
            if attribute is None and not getattr(field.resolve, "_is_default", False):
                continue  # a resolver of our own (or not strawberry's field): the general path
            shape = _leaf_shape(field.type) if attribute is None else None
            if shape is not None:
                found[type_name, field_name] = PlainField(definition.python_name, *shape)
                continue
            objects = object_shape(field.type)
            if objects is not None:
                prefetch = attribute is not None
                found[type_name, field_name] = ObjectField(
                    str(attribute) if prefetch else definition.python_name, *objects, prefetched=prefetch
                )
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


def object_shape(output: GraphQLOutputType) -> tuple[GraphQLObjectType, bool, bool] | None:
    """(object type, nullable, is a list) for an object type or a list of non-null objects; None otherwise."""
    nullable = not isinstance(output, GraphQLNonNull)
    inner: Any = output.of_type if isinstance(output, GraphQLNonNull) else output
    is_list = isinstance(inner, GraphQLList)
    if is_list:
        if not isinstance(inner.of_type, GraphQLNonNull):
            return None
        inner = inner.of_type.of_type
    if not isinstance(inner, GraphQLObjectType) or inner.is_type_of is not None:
        return None  # an is_type_of check (a type with interfaces) stays with the general path
    return inner, nullable, is_list


def execution_context_class(schema: GraphQLSchema) -> type[StrawberryGraphQLCoreExecutionContext]:
    """strawberry's execution context, with the short path for the fields of `schema` that have one."""
    plans = plain_fields(schema)
    values: dict[int, tuple[GraphQLOutputType, ObjectField | None]] = {}  # by id() of a return type, held

    def value_plan(return_type: GraphQLOutputType) -> ObjectField | None:
        known = values.get(id(return_type))
        if known is None or known[0] is not return_type:
            shape = object_shape(return_type)
            known = (return_type, ObjectField("", *shape) if shape is not None else None)
            values[id(return_type)] = known
        return known[1]

    class ShortPathExecutionContext(StrawberryGraphQLCoreExecutionContext):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            manager = self.middleware_manager
            # A resolve middleware (an extension's `resolve` hook) must see every field: no short path then.
            self.short = not (manager is not None and manager.middlewares)
            self.plain_fields = plans if self.short else {}
            self.selections: dict[tuple[str, int], _Selection] = {}
            self.objects: dict[tuple[str, int], tuple[Any, _Whole | None]] = {}

        def complete_value(
            self,
            return_type: GraphQLOutputType,
            field_details_list: Any,
            info: Any,
            path: Any,
            result: Any,
            position_context: Any,
        ) -> Any:
            # A root field's page of images (or a loaded `Related`): built here when its selection allows.
            plan = value_plan(return_type) if self.short and not isinstance(result, Exception) else None
            if plan is not None and not any(details.node.directives for details in field_details_list):
                completed = self._objects(plan, field_details_list, result)
                if completed is not _GENERAL:
                    return completed
            return super().complete_value(return_type, field_details_list, info, path, result, position_context)

        def execute_fields(
            self,
            parent_type: GraphQLObjectType,
            source_value: Any,
            path: Any,
            grouped_field_set: dict[str, Any],
            position_context: Any,
        ) -> Any:
            # Short-path fields here, the others (and any that declines) the general way; the answer keeps the
            # order of the selection either way.
            selection = self._selection(parent_type.name, grouped_field_set)
            plain: dict[str, Any] = {}
            general = selection.general
            declined = False
            for response_name, plan, details in selection.plain:
                completed = self._read(plan, details, parent_type, source_value)
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

        def _read(self, plan: Plan, details: Any, parent_type: GraphQLObjectType, source: Any) -> Any:
            """One short-path field of `source`, completed, or _GENERAL."""
            if type(plan) is PlainField:
                value = getattr(source, plan.attribute, _GENERAL)
                if type(value) is plan.as_is:  # a string for a String field: given back as it is
                    return value
                return _GENERAL if value is _GENERAL else plan.complete(value)
            if type(plan) is ObjectField:
                return self._objects(plan, details, getattr(source, plan.attribute, _GENERAL))
            return parent_type.name  # __typename

        def _objects(self, plan: ObjectField, details: Any, value: Any) -> Any:
            """An object or a list of objects, every field of each completed here, or _GENERAL."""
            if value is _GENERAL or value is Undefined or value is None:
                return None if value is not _GENERAL and plan.nullable and not plan.prefetched else _GENERAL
            whole = self._whole(plan.object_type, details)
            if whole is None:
                return _GENERAL
            build, nested = whole.build, whole.nested
            if not plan.is_list:
                return build(value, nested)
            if not isinstance(value, list | tuple):
                return _GENERAL
            items = []
            for item in value:
                completed = build(item, nested) if item is not None else _GENERAL
                if completed is _GENERAL:
                    return _GENERAL
                items.append(completed)
            return items

        def _whole(self, object_type: GraphQLObjectType, details: Any) -> _Whole | None:
            # The selection of an object field, when every field in it has a short path (and nothing is deferred).
            key = (object_type.name, id(details))
            known = self.objects.get(key)
            if known is None or known[0] is not details:
                grouped, deferred, _ = self.collect_subfields(object_type, details)
                selection = self._selection(object_type.name, grouped)
                whole = None
                if selection.general is None and not deferred:
                    nested = tuple(
                        partial(self._objects, plan, field_details)
                        for _, plan, field_details in selection.plain
                        if isinstance(plan, ObjectField)
                    )
                    fields = [(name, plan) for name, plan, _ in selection.plain]
                    whole = _Whole(builder(object_type.name, fields), nested)
                known = (details, whole)
                self.objects[key] = known
            return known[1]

        def _selection(self, type_name: str, grouped_field_set: dict[str, Any]) -> _Selection:
            # graphql-core collects a selection set once per execution and hands every item of a list the
            # same grouped field set: sort its fields once, for all of them.
            key = (type_name, id(grouped_field_set))
            known = self.selections.get(key)
            if known is None or known.fields is not grouped_field_set:
                plain: list[tuple[str, Plan, Any]] = []
                general = {}
                for response_name, field_details_list in grouped_field_set.items():
                    node = field_details_list[0].node
                    name = node.name.value
                    plan: Plan | None = TYPENAME if name == "__typename" else self.plain_fields.get((type_name, name))
                    merged = len(field_details_list) != 1  # one leaf asked for twice: the general path merges it
                    directed = any(d.node.directives for d in field_details_list)
                    if plan is None or not self.short or directed or (merged and isinstance(plan, PlainField)):
                        general[response_name] = field_details_list
                    else:
                        plain.append((response_name, plan, field_details_list))
                names = list(grouped_field_set)
                plain_first = all(names.index(name) < len(plain) for name, _, _ in plain)
                known = _Selection(grouped_field_set, plain, general or None, plain_first)
                self.selections[key] = known
            return known

    return ShortPathExecutionContext


def _in_order(grouped_field_set: dict[str, Any], plain: dict[str, Any], rest: dict[str, Any]) -> dict[str, Any]:
    return {
        name: plain[name] if name in plain else rest[name]
        for name in grouped_field_set
        if name in plain or name in rest
    }
