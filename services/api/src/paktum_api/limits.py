"""GraphQL document limits: what one document may ask for, checked in time linear in its size, before it runs.

A field costs 1 plus its sub-selection times how many objects it can return: its `limit` argument
(a variable's value, or the maximum when the value is unknown), RELATED_WEIGHT for `Related`, else 1.
A fragment is priced (and measured for depth) once per document and that figure reused at every spread,
so a fragment that spreads another twice, which spreads another twice, ... costs linear time to refuse.

Parsing and validation run on a small thread pool, so even a document at the limits never holds the
event loop (and with it `/healthz` and every other request) for more than a thread switch.

Clients send the same few documents again and again (the original web client's handful of queries), and
validating one is several times the work of running it. So a parsed document is remembered by its text
(`DocumentCache`: bounded, least recently used first out), with the outcome of the limits and validation for
each set of values of the variables the cost reads; a repeated document skips the pool altogether.
"""

from __future__ import annotations

import asyncio
from collections import Counter, OrderedDict
from collections.abc import AsyncIterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from graphql import (
    ASTValidationRule,
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLSchema,
    InlineFragmentNode,
    IntValueNode,
    Node,
    OperationDefinitionNode,
    SelectionSetNode,
    VariableNode,
    parse,
)
from strawberry.extensions import SchemaExtension
from strawberry.schema.schema import validate_document

from paktum_common import metrics

LIMIT_MAX = 100
RELATED_WEIGHT = 20  # variant groups are small; a larger one still costs one batched lookup

# Per document. GraphiQL's introspection query has 183 tokens, 3 fragments, 1 operation, no directive.
MAX_DOCUMENT_CHARS = 32_768  # checked before the parser starts: the cheapest refusal of a flood of tokens
MAX_OPERATIONS = 20
MAX_FRAGMENTS = 64  # also bounds how deep fragments spread into each other (validation recurses on it)
MAX_ALIASES = 20
MAX_DIRECTIVES = 50
MAX_REPEATS = 10  # one response key in one selection set, fragments merged in: graphql-core compares them pairwise
ANALYSIS_THREADS = 2  # documents parsed and validated at once; more wait their turn
DOCUMENT_CACHE_SIZE = 256  # documents remembered; a client's queries are a handful, GraphiQL's a few more
MAX_CACHED_CHARS = 4_096  # a longer document is analysed every time (its tokens would pin memory meanwhile)
OUTCOMES_PER_DOCUMENT = 16  # distinct `limit` variable values remembered per document


@dataclass(frozen=True)
class DocumentLimits:
    max_tokens: int = 2_000
    max_depth: int = 8
    max_cost: int = 50_000


class DocumentRefused(GraphQLError):
    """A document over one of the limits; the message says which and by how much."""


def parse_document(text: str, max_tokens: int) -> DocumentNode:
    """Parse with a size and token budget; a document nested too deeply for the parser is refused, not a crash."""
    if len(text) > MAX_DOCUMENT_CHARS:
        raise DocumentRefused(f"the document is {len(text)} characters long, at most {MAX_DOCUMENT_CHARS}")
    try:
        return parse(text, max_tokens=max_tokens)
    except RecursionError:
        raise DocumentRefused("the document is nested too deeply to parse") from None


def query_cost(text: str, variables: Mapping[str, Any] | None = None) -> int:
    """The cost of the most expensive operation in a GraphQL document."""
    return _Analysis(parse(text), variables or {}).max_cost()


def check_document(
    document: DocumentNode, variables: Mapping[str, Any] | None, limits: DocumentLimits
) -> DocumentRefused | None:
    """The first limit the document is over, or None; linear in the size of the document."""
    definitions = document.definitions
    operations = [d for d in definitions if isinstance(d, OperationDefinitionNode)]
    fragment_count = sum(isinstance(d, FragmentDefinitionNode) for d in definitions)
    if len(operations) > MAX_OPERATIONS:
        return DocumentRefused(f"{len(operations)} operations in one document, at most {MAX_OPERATIONS}")
    if fragment_count > MAX_FRAGMENTS:
        return DocumentRefused(f"{fragment_count} fragments in one document, at most {MAX_FRAGMENTS}")
    selection_sets: list[SelectionSetNode] = []
    refused = _count_nodes(document, selection_sets)
    if refused is not None:
        return refused
    analysis = _Analysis(document, variables or {})
    for operation in operations:
        depth = analysis.depth(operation.selection_set)
        if depth > limits.max_depth:
            name = operation.name.value if operation.name else "anonymous"
            return DocumentRefused(
                f"'{name}' has depth {depth}, which exceeds maximum operation depth of {limits.max_depth}",
                operation,
            )
        cost = analysis.cost(operation.selection_set)
        if cost > limits.max_cost:
            shown = cost if cost < 10**15 else f"about 10^{len(str(cost)) - 1}"
            return DocumentRefused(
                f"query cost {shown} is above the limit of {limits.max_cost}: "
                "ask for fewer images (a smaller limit), fewer aliases, fewer nested fields or fragment spreads",
                operation,
            )
    for selection_set in selection_sets:
        # Counted with what fragments and inline fragments merge into it: graphql-core compares those pairwise.
        merged = analysis.keys(selection_set).most_common(1)
        if merged and merged[0][1] > MAX_REPEATS:
            key, times = merged[0]
            shown = times if times < 10**15 else f"about 10^{len(str(times)) - 1}"
            return DocumentRefused(
                f"'{key}' is asked for {shown} times in one selection (fragments included), at most {MAX_REPEATS}",
                selection_set,
            )
    return None


def _count_nodes(document: DocumentNode, selection_sets: list[SelectionSetNode]) -> DocumentRefused | None:
    """Aliases and directives over the whole document, each node visited once; collects every selection set."""
    aliases = directives = 0
    stack: list[Node] = list(document.definitions)
    while stack:
        node = stack.pop()
        directives += len(getattr(node, "directives", None) or ())
        if isinstance(node, FieldNode) and node.alias is not None:
            aliases += 1
        selection_set: SelectionSetNode | None = getattr(node, "selection_set", None)
        if selection_set is not None:
            selection_sets.append(selection_set)
            stack.extend(selection_set.selections)
        # Variable definitions carry directives too.
        stack.extend(getattr(node, "variable_definitions", None) or ())
    if aliases > MAX_ALIASES:
        return DocumentRefused(f"{aliases} aliases found. Allowed: {MAX_ALIASES}")
    if directives > MAX_DIRECTIVES:
        return DocumentRefused(f"{directives} directives in one document, at most {MAX_DIRECTIVES}")
    return None


@dataclass
class _Analysis:
    """Depth and cost of selection sets, with each fragment's figures computed once and remembered."""

    document: DocumentNode
    variables: Mapping[str, Any]
    fragments: dict[str, FragmentDefinitionNode] = field(init=False)
    _depths: dict[str, int] = field(default_factory=dict)
    _costs: dict[str, int] = field(default_factory=dict)
    _keys: dict[str, Counter[str]] = field(default_factory=dict)
    _open: set[str] = field(default_factory=set)  # fragments being measured: a spread of one is a cycle

    def __post_init__(self) -> None:
        self.fragments = {d.name.value: d for d in self.document.definitions if isinstance(d, FragmentDefinitionNode)}

    def max_cost(self) -> int:
        operations = [d for d in self.document.definitions if isinstance(d, OperationDefinitionNode)]
        return max((self.cost(op.selection_set) for op in operations), default=0)

    def _fragment(self, name: str, memo: dict[str, Any], measure: Any, empty: Any = 0) -> Any:
        if name in memo:
            return memo[name]
        fragment = self.fragments.get(name)
        if fragment is None or name in self._open:  # unknown or cyclic: other validation rules report it
            return empty
        self._open.add(name)
        try:
            memo[name] = measure(fragment.selection_set)
        finally:
            self._open.discard(name)
        return memo[name]

    def keys(self, selection_set: SelectionSetNode | None) -> Counter[str]:
        """How often each response key lands in this selection set once its fragments are merged in."""
        counts: Counter[str] = Counter()
        for selection in selection_set.selections if selection_set else ():
            if isinstance(selection, FieldNode):
                counts[(selection.alias or selection.name).value] += 1
            elif isinstance(selection, InlineFragmentNode):
                counts.update(self.keys(selection.selection_set))
            elif isinstance(selection, FragmentSpreadNode):
                counts.update(self._fragment(selection.name.value, self._keys, self.keys, Counter()))
        return counts

    def depth(self, selection_set: SelectionSetNode | None) -> int:
        """As strawberry's QueryDepthLimiter counts it: a field with a sub-selection is one level more;
        introspection fields (`__schema`, `__type`) do not count."""
        if selection_set is None:
            return 0
        deepest = 0
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                if selection.selection_set is None or selection.name.value.startswith("__"):
                    continue
                deepest = max(deepest, 1 + self.depth(selection.selection_set))
            elif isinstance(selection, InlineFragmentNode):
                deepest = max(deepest, self.depth(selection.selection_set))
            elif isinstance(selection, FragmentSpreadNode):
                deepest = max(deepest, self._fragment(selection.name.value, self._depths, self.depth))
        return deepest

    def cost(self, selection_set: SelectionSetNode | None) -> int:
        if selection_set is None:
            return 0
        total = 0
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                total += 1 + _multiplier(selection, self.variables) * self.cost(selection.selection_set)
            elif isinstance(selection, InlineFragmentNode):
                total += self.cost(selection.selection_set)
            elif isinstance(selection, FragmentSpreadNode):
                total += self._fragment(selection.name.value, self._costs, self.cost)
        return total


def _multiplier(field: FieldNode, variables: Mapping[str, Any]) -> int:
    if field.name.value == "Related":
        return RELATED_WEIGHT
    for argument in field.arguments or ():
        if argument.name.value != "limit":
            continue
        value: Any = LIMIT_MAX
        if isinstance(argument.value, IntValueNode) and len(argument.value.value) <= 20:
            value = int(argument.value.value)  # a longer literal is out of Int's range (and too long for int())
        elif isinstance(argument.value, VariableNode):
            value = variables.get(argument.value.name.value, LIMIT_MAX)
        return _priced_limit(value)
    return 1


def _priced_limit(value: Any) -> int:
    # Out-of-range limits are refused by the resolver; price them at the bound meanwhile.
    return max(1, min(value, LIMIT_MAX)) if isinstance(value, int) else LIMIT_MAX


def cost_variables(document: DocumentNode) -> tuple[str, ...]:
    """The variables whose values the cost reads (those given to a `limit` argument), in a fixed order."""
    names: set[str] = set()
    stack: list[Node] = list(document.definitions)
    while stack:
        node = stack.pop()
        if isinstance(node, FieldNode):
            names.update(
                a.value.name.value
                for a in node.arguments or ()
                if a.name.value == "limit" and isinstance(a.value, VariableNode)
            )
        selection_set: SelectionSetNode | None = getattr(node, "selection_set", None)
        if selection_set is not None:
            stack.extend(selection_set.selections)
    return tuple(sorted(names))


def analyse(
    schema: GraphQLSchema,
    document: DocumentNode,
    rules: tuple[type[ASTValidationRule], ...],
    variables: Mapping[str, Any] | None,
    limits: DocumentLimits,
) -> list[GraphQLError]:
    """Our limits first (cheap, and they bound what graphql-core's rules then cost), then the schema's rules."""
    refused = check_document(document, variables, limits)
    if refused is not None:
        return [refused]
    try:
        errors = validate_document(schema, document, rules)
    except RecursionError:
        return [DocumentRefused("the document is nested too deeply to validate")]
    # A rule may carry the exception it caught (int() on a 5,000-digit literal): still the document's fault,
    # so shown as it is rather than masked as an internal error.
    return [e if e.original_error is None else GraphQLError(e.message, e.nodes, e.source, e.positions) for e in errors]


DOCUMENTS = metrics.counter(
    "api",
    "graphql_documents_total",
    "GraphQL documents received, by whether the parsed document was remembered (hit) or parsed now (miss).",
    ("cache",),
)


@dataclass
class ParsedDocument:
    """A document parsed once, and what our limits and validation said of it for each priced set of variables."""

    document: DocumentNode
    cost_variables: tuple[str, ...]
    outcomes: dict[tuple[int, ...], list[GraphQLError]] = field(default_factory=dict)

    def outcome_key(self, variables: Mapping[str, Any] | None) -> tuple[int, ...]:
        # Validation never reads variables, and the limits read only these, as _multiplier prices them.
        given = variables or {}
        return tuple(_priced_limit(given.get(name, LIMIT_MAX)) for name in self.cost_variables)


def parse_for_cache(text: str, max_tokens: int) -> ParsedDocument:
    document = parse_document(text, max_tokens)
    return ParsedDocument(document, cost_variables(document))


class DocumentCache:
    """Parsed documents by their text, least recently used first out; used from the event loop only."""

    def __init__(self, size: int = DOCUMENT_CACHE_SIZE) -> None:
        self.size = size
        self._documents: OrderedDict[str, ParsedDocument] = OrderedDict()

    def get(self, text: str) -> ParsedDocument | None:
        parsed = self._documents.get(text)
        if parsed is not None:
            self._documents.move_to_end(text)
        return parsed

    def put(self, text: str, parsed: ParsedDocument) -> None:
        if len(text) > MAX_CACHED_CHARS:
            return
        self._documents[text] = parsed
        self._documents.move_to_end(text)
        while len(self._documents) > self.size:
            self._documents.popitem(last=False)

    def __len__(self) -> int:
        return len(self._documents)


class DocumentGuard(SchemaExtension):
    """Parse with a token budget and validate with our limits, both on a bounded thread pool, once per document."""

    def __init__(self, limits: DocumentLimits, pool: ThreadPoolExecutor, cache: DocumentCache | None = None) -> None:
        self.limits = limits
        self.pool = pool
        self.cache = cache if cache is not None else DocumentCache(0)
        self.parsed: ParsedDocument | None = None

    async def on_parse(self) -> AsyncIterator[None]:
        context = self.execution_context
        if context.graphql_document is None and context.query:
            self.parsed = self.cache.get(context.query)
            DOCUMENTS.labels("miss" if self.parsed is None else "hit").inc()
            if self.parsed is None:
                loop = asyncio.get_running_loop()
                self.parsed = await loop.run_in_executor(
                    self.pool, parse_for_cache, context.query, self.limits.max_tokens
                )
                self.cache.put(context.query, self.parsed)
            context.graphql_document = self.parsed.document
        yield

    async def on_validate(self) -> AsyncIterator[None]:
        context = self.execution_context
        if context.pre_execution_errors is None and context.graphql_document is not None:
            parsed = self.parsed
            if parsed is not None and parsed.document is not context.graphql_document:
                parsed = None  # another extension supplied the document: nothing remembered applies
            key = parsed.outcome_key(context.variables) if parsed is not None else ()
            errors = parsed.outcomes.get(key) if parsed is not None else None
            if errors is None:
                loop = asyncio.get_running_loop()
                errors = await loop.run_in_executor(
                    self.pool,
                    analyse,
                    context.schema._schema,
                    context.graphql_document,
                    tuple(context.validation_rules),
                    context.variables,
                    self.limits,
                )
                if parsed is not None:
                    if len(parsed.outcomes) >= OUTCOMES_PER_DOCUMENT:
                        parsed.outcomes.clear()
                    parsed.outcomes[key] = errors
            # Set even when empty: strawberry then skips its own (on-the-loop) validation. A copy: the
            # remembered list must not change with what a later step does to this request's errors.
            context.pre_execution_errors = list(errors)
        yield


def analysis_pool() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=ANALYSIS_THREADS, thread_name_prefix="graphql-analysis")
