"""Who is judged and who judges: every registered protection method (in each registered configuration) and
every registered forgery judge, from the registries only (no paper is named here)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from src.leaderboarding.panel import PanelError
from src.papers.registry import CONTENDERS, FORGERY_JUDGES, METHODS, Contender, ForgeryJudge, discover

__all__ = ["Entrant", "all_contenders", "all_judges", "pick"]


@dataclass(frozen=True)
class Entrant:
    """A contender with its paper."""

    paper: str
    contender: Contender

    @property
    def id(self) -> str:
        return self.contender.id


def all_contenders() -> list[Entrant]:
    """Every registered ``protect`` method: in its paper's registered configurations, else its default one;
    sorted by paper, then in registration order."""
    discover()
    registered = {c.method for contenders in CONTENDERS.values() for c in contenders}
    found = [Entrant(paper, c) for paper, contenders in CONTENDERS.items() for c in contenders]
    for name, entry in METHODS.items():
        if entry.kind == "protect" and name not in registered:
            found.append(Entrant(entry.paper, Contender(name)))
    order = {paper: i for i, paper in enumerate(sorted({e.paper for e in found}))}
    return sorted(found, key=lambda e: order[e.paper])


def all_judges() -> list[tuple[str, ForgeryJudge]]:
    """Every registered forgery judge with its paper, sorted by paper."""
    discover()
    return [(paper, judge) for paper in sorted(FORGERY_JUDGES) for judge in FORGERY_JUDGES[paper]]


def pick(entrants: Sequence[Entrant], wanted: Sequence[str] | None) -> list[Entrant]:
    """The entrants ``wanted`` names (contender ids or method names; all when None); an unknown name is an
    error listing the known ones."""
    if wanted is None:
        return list(entrants)
    known = {e.id for e in entrants} | {e.contender.method for e in entrants}
    unknown = [name for name in wanted if name not in known]
    if unknown:
        raise PanelError(f"unknown method(s) {unknown}; contenders: {', '.join(e.id for e in entrants)}")
    return [e for e in entrants if e.id in wanted or e.contender.method in wanted]


def pick_judges(
    judges: Sequence[tuple[str, ForgeryJudge]], wanted: Sequence[str] | None
) -> list[tuple[str, ForgeryJudge]]:
    """The judges ``wanted`` names (all when None); an unknown name is an error listing the known ones."""
    if wanted is None:
        return list(judges)
    names = [judge.name for _, judge in judges]
    unknown = [name for name in wanted if name not in names]
    if unknown:
        raise PanelError(f"unknown forgery judge(s) {unknown}; judges: {', '.join(names)}")
    return [(paper, judge) for paper, judge in judges if judge.name in wanted]
