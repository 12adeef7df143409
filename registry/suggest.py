""""Did you mean" hints for validation, from indexes built once per validation.

Comparing a wrong name with every entry ID of the wanted kind (sorting them, then
``difflib.get_close_matches``) for each diagnostic made validation quadratic: 1,000
broken references among 10,000 entries cost 10 million comparisons. Here the IDs of each
kind are sorted once per validation (``EntryNames``). A small list is compared in full,
which gives exactly difflib's answer. A large one is searched through indexes built on
first use: the names next to the wrong one in sorted order, also without its last 1..CUTS
characters (a typo near the end), the same for the names read backwards (a typo near the
start), and the names holding its rarest trigrams. Those (at most ``MOST``) are ranked by
the trigrams they share with it, and difflib confirms the best ``CONFIRM`` (ratio >= 0.6).
So one hint costs the same in a project of a hundred or of a hundred thousand entries.
"""

from __future__ import annotations

import bisect
import difflib
from collections.abc import Iterable, Sequence

from registry.loader import Project

__all__ = ["EntryNames", "NameIndex"]

#: Up to this many names, compare with every one of them.
SMALL = 200
#: How many names the rarest trigrams of the wrong one may add to the candidates.
SHORTLIST = 16
#: How many names on each side of the wrong one, in sorted and in backwards-sorted order.
NEIGHBOURS = 3
#: The wrong name is also looked up without its last (backwards: first) 1..CUTS characters.
CUTS = 2
#: The most candidates one hint ranks.
MOST = 2 * (CUTS + 1) * 2 * NEIGHBOURS + SHORTLIST
#: How many of the best-ranked candidates difflib compares.
CONFIRM = 2


class NameIndex:
    """Sorted names with a ``closest`` lookup whose cost barely grows with the number of names (a bisection)."""

    def __init__(self, names: Iterable[str]) -> None:
        self.names: list[str] = sorted(set(names))
        self._gram_sets: list[set[str]] = []  # the trigrams of each name
        self._holders: dict[str, list[int]] = {}  # the names holding each trigram
        self._backwards: list[tuple[str, int]] = []  # each name reversed, sorted

    def closest(self, name: str) -> str | None:
        """The most similar name (difflib's ratio >= 0.6), or None."""
        if len(self.names) <= SMALL:
            found = difflib.get_close_matches(name, self.names, n=1)
        else:
            grams = _trigrams(name)
            ranked = sorted(self._candidates(name, grams), key=lambda n: (-len(grams & self._gram_sets[n]), n))
            found = difflib.get_close_matches(name, [self.names[n] for n in ranked[:CONFIRM]], n=1)
        return found[0] if found else None

    def listed(self, limit: int = 10) -> str:
        """The first ``limit`` names, comma-separated, and how many more there are."""
        shown = ", ".join(self.names[:limit])
        more = len(self.names) - limit
        return f"{shown} and {more} more" if more > 0 else shown

    def _candidates(self, name: str, grams: set[str]) -> set[int]:
        if not self._gram_sets:
            self._gram_sets = [_trigrams(known) for known in self.names]
            for number, known_grams in enumerate(self._gram_sets):
                for gram in known_grams:
                    self._holders.setdefault(gram, []).append(number)
            self._backwards = sorted((known[::-1], number) for number, known in enumerate(self.names))
        picked: set[int] = set()
        backwards = name[::-1]
        for cut in range(min(CUTS, len(name) - 1) + 1):
            at = bisect.bisect_left(self.names, name[:len(name) - cut])
            picked.update(range(max(0, at - NEIGHBOURS), min(len(self.names), at + NEIGHBOURS)))
            at = bisect.bisect_left(self._backwards, (backwards[:len(name) - cut], -1))
            picked.update(number for _, number in self._backwards[max(0, at - NEIGHBOURS):at + NEIGHBOURS])
        added = 0
        for holders in sorted((self._holders.get(g, ()) for g in grams), key=len):
            if added + len(holders) > SHORTLIST:
                break  # the rest hold even more names: too common to tell which one was meant
            picked.update(holders)
            added += len(holders)
        return picked


class EntryNames:
    """The project's entry IDs by kind, each list indexed on first use and then kept."""

    def __init__(self, project: Project) -> None:
        self._by_kind: dict[str, list[str]] = {}
        seen: set[str] = set()
        for entry in project.entries:
            if entry.id not in seen:  # duplicates: the first one wins, as in Project.by_id
                seen.add(entry.id)
                self._by_kind.setdefault(entry.kind, []).append(entry.id)
        self._indexes: dict[tuple[str, ...], NameIndex] = {}

    def of(self, kinds: Sequence[str]) -> NameIndex:
        """The index of every entry ID whose kind is one of ``kinds``."""
        key = tuple(kinds)
        index = self._indexes.get(key)
        if index is None:
            index = self._indexes[key] = NameIndex(n for kind in key for n in self._by_kind.get(kind, ()))
        return index


def _trigrams(text: str) -> set[str]:
    padded = f"^{text}$"
    return {padded[i:i + 3] for i in range(len(padded) - 2)}
