"""Large payloads behind references: the ``blob`` field type's values.

A :class:`Blob` is a handle — ``sha256:`` and the hex SHA-256 of the payload's UTF-8
bytes — that may carry the payload's text. It *is* its handle as far as the rest of
converge sees: a ``str`` equal to, hashing as and serialised (JSON, the trace, the
knowledge store) as ``sha256:…``. So two facts with the same payload are the same fact,
the trace records 71 characters whatever the payload's size, and every executor writes
the same trace. The text travels with the value inside a job (agents read it with
``blob_text``) and goes once into the job's payload store (memory, or the ``blobs``
table of a job store), content-addressed: the same text stored by many facts or many
jobs is kept once.
"""

from __future__ import annotations

from typing import Any

from converge_rules.patterns import pattern

PREFIX = "sha256:"
_HANDLE = pattern(r"^sha256:[0-9a-f]{64}$")


class BlobError(ValueError):
    """A blob's text is not available, or a value is no blob."""


class Blob(str):
    """A payload's handle (the ``str`` value), with its ``text`` when known (None for
    a handle read back from a trace or a store without the payload)."""

    text: str | None

    def __new__(cls, handle: str, text: str | None = None) -> Blob:
        self = super().__new__(cls, handle)
        self.text = text
        return self

    @classmethod
    def of(cls, text: str) -> Blob:
        """The blob holding ``text``: its handle is the SHA-256 of the UTF-8 bytes."""
        import hashlib  # here: every `converge` start imports this module, few hash

        data = text.encode("utf-8", "surrogatepass")
        return cls(PREFIX + hashlib.sha256(data).hexdigest(), text)

    def __reduce__(self) -> tuple[Any, ...]:
        return (Blob, (str(self), self.text))

    def __repr__(self) -> str:
        return f"Blob({str(self)!r})"

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: Any) -> Any:
        """A tool's result model may type a field ``Blob`` (language type ``blob``):
        its text becomes a blob, the trace records the handle."""
        from pydantic_core import core_schema

        return core_schema.no_info_plain_validator_function(
            as_blob, serialization=core_schema.plain_serializer_function_ser_schema(str))


def is_handle(value: str) -> bool:
    """Whether ``value`` is the text of a blob handle (``sha256:`` + 64 hex digits)."""
    return bool(_HANDLE.match(value))


def blob_of(text: str) -> Blob:
    """The language's ``blob(text)``: a payload behind a reference."""
    if not isinstance(text, str):
        raise BlobError(f"blob() takes text, got {type(text).__name__}")
    return Blob.of(text)


def blob_text(value: Any) -> str:
    """The language's ``blob_text(b)``: the payload's text. A handle without its text
    (read back from a trace) is a :class:`BlobError`: the agent fails, the trace says
    why."""
    if isinstance(value, Blob) and value.text is not None:
        return value.text
    raise BlobError(f"the payload of {str(value)[:80]} is not in this job (a blob read "
                    "back from a trace holds only its handle)")


def as_blob(value: Any) -> Blob:
    """``value`` as a ``blob`` field holds it: a :class:`Blob` as it is, text (an input
    fact's, a tool's answer) as the blob of that text — except text that is itself a
    handle (``sha256:`` + 64 hex digits: a fact or answer read back from a trace, as
    replay does), which stays that handle, without its payload."""
    if isinstance(value, Blob):
        return value
    if isinstance(value, str):
        return Blob(value) if is_handle(value) else Blob.of(value)
    raise BlobError(f"a blob is given as its text, got {type(value).__name__}")
