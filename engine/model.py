"""The nouns of the domain as frozen dataclasses.

Everything here is plain data: loaders build it (`banks.py`, `exams.py`), the sitting state machine
and the schemes read it, nothing mutates it. Times are UTC epoch seconds (floats) so that they
persist and compare without time-zone surprises.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TypeVar

K = TypeVar("K")
V = TypeVar("V")

LanguageCode = str
"""An ISO 639-1 code: ``kk``, ``ru``, ``uk``, ``en``."""

Localized = Mapping[LanguageCode, str]
"""A text in one or more languages."""


def frozen_map(mapping: Mapping[K, V] | None = None) -> Mapping[K, V]:
    """A read-only copy, so a frozen dataclass really is frozen."""
    return MappingProxyType(dict(mapping or {}))


@dataclass(frozen=True, slots=True)
class ItemText:
    """An item's stem and options in one language."""

    stem: str
    options: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Item:
    """One single-choice question; `key` is the 0-based index of the correct option."""

    id: str
    key: int
    tags: Mapping[str, str]
    texts: Mapping[LanguageCode, ItemText]

    @property
    def option_count(self) -> int:
        return len(next(iter(self.texts.values())).options)


@dataclass(frozen=True, slots=True)
class Bank:
    """An item pool: the same items in every listed language, tagged along named dimensions.

    `tags` maps a dimension (``act``, ``category``) to its allowed values and their titles.
    """

    id: str
    version: str
    languages: tuple[LanguageCode, ...]
    title: Localized
    tags: Mapping[str, Mapping[str, Localized]]
    items: tuple[Item, ...]
    by_id: Mapping[str, Item] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "by_id", frozen_map({item.id: item for item in self.items}))

    def items_tagged(self, dimension: str, value: str) -> tuple[Item, ...]:
        return tuple(item for item in self.items if item.tags.get(dimension) == value)


@dataclass(frozen=True, slots=True)
class Blueprint:
    """How many items a form draws for each value of one tag dimension."""

    dimension: str
    counts: Mapping[str, int]

    @property
    def total(self) -> int:
        return sum(self.counts.values())


@dataclass(frozen=True, slots=True)
class Part:
    """One timed test inside an exam (KZ has one, UA has professional and aptitude)."""

    id: str
    title: Localized
    bank_id: str
    time_limit_s: int
    blueprint: Blueprint
    warnings_s: tuple[int, ...] = (900, 300, 60)
    shuffle_options: bool = True


@dataclass(frozen=True, slots=True)
class Site:
    """A test centre; proctors watch the sittings of their site."""

    id: str
    title: Localized


class Admission(enum.StrEnum):
    """Who moves a sitting from scheduled to checked-in."""

    SELF = "self"
    """The candidate checks in by connecting (unproctored practice, load tests)."""
    PROCTOR = "proctor"
    """A proctor confirms identity first (KZ-3, UA-6)."""


class Recording(enum.StrEnum):
    """Whether a candidate may sit the test without camera and microphone."""

    REQUIRED = "required"
    """No start without both (KZ-4: audio-video fixation of the whole test)."""
    OPTIONAL = "optional"
    """Recorded where the devices work; without them the test goes on and the proctor is told."""


@dataclass(frozen=True, slots=True)
class Exam:
    """One testing event: its scheme, parts, sites and languages."""

    id: str
    title: Localized
    scheme: str
    languages: tuple[LanguageCode, ...]
    parts: tuple[Part, ...]
    sites: tuple[Site, ...]
    admission: Admission = Admission.SELF
    identity_document: str = "passport"
    settings: Mapping[str, object] = field(default_factory=frozen_map)
    recording: Recording = Recording.REQUIRED

    def part(self, part_id: str) -> Part:
        for part in self.parts:
            if part.id == part_id:
                return part
        raise KeyError(part_id)


@dataclass(frozen=True, slots=True)
class Candidate:
    """A person registered for an exam. Demo candidates are fictional."""

    id: str
    exam_id: str
    full_name: str
    site_id: str
    office: str = ""
    document: str = ""


class Role(enum.StrEnum):
    """What a staff member may do; a candidate is not staff."""

    PROCTOR = "proctor"
    """A working-group member: watches the sittings of their sites and acts on them."""
    OBSERVER = "observer"
    """Watches every stage of their sites and never acts (UA-15)."""
    ADMIN = "admin"
    """Everything a proctor may, on every site of the exam."""


@dataclass(frozen=True, slots=True)
class Staff:
    """A proctor, observer or administrator of one exam. Demo staff are fictional."""

    login: str
    exam_id: str
    name: str
    role: Role
    sites: tuple[str, ...]
    """The sites this person watches; every site of the exam for an admin."""

    @property
    def may_act(self) -> bool:
        return self.role is not Role.OBSERVER


@dataclass(frozen=True, slots=True)
class FormItem:
    """One item of a form; `option_order[shown] == original option index`."""

    item_id: str
    option_order: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class Form:
    """The ordered items one candidate gets for one part."""

    exam_id: str
    candidate_id: str
    part_id: str
    items: tuple[FormItem, ...]

    def position_of(self, item_id: str) -> int | None:
        for position, form_item in enumerate(self.items):
            if form_item.item_id == item_id:
                return position
        return None
