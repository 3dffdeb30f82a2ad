"""Privacy budgets: ε and δ reserved durably before a private query runs, never refunded, and
each private question's answer kept so that asking it again spends nothing."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError

from database.prepared import Prepared
from database.turns import prepare_turn, writers_turn
from governance.tables import metadata

# Spends are kept as integers: ε in millionths, δ in 10^-15, each spend rounded up.
EPSILON_UNIT = 10**6
DELTA_UNIT = 10**15
# Every developer organisation together: the operator's cap per asset.
EVERYONE = "*"

privacy_spends = sa.Table(
    "privacy_spends",
    metadata,
    sa.Column("spender", sa.String(64), primary_key=True),
    sa.Column("asset", sa.String(130), primary_key=True),
    sa.Column("period", sa.String(7), primary_key=True),
    sa.Column("epsilon_micro", sa.BigInteger, nullable=False),
    sa.Column("delta_femto", sa.BigInteger, nullable=False),
    sa.Column("epsilon_limit_micro", sa.BigInteger, nullable=False),
    sa.Column("delta_limit_femto", sa.BigInteger, nullable=False),
)

private_answers = sa.Table(
    "private_answers",
    metadata,
    sa.Column("question", sa.String(64), primary_key=True),
    sa.Column("org", sa.String(64), nullable=False),
    sa.Column("query_id", sa.String(34), nullable=False),
    sa.Column("asked_at", sa.String(32), nullable=False),
    sa.Column("answer", sa.Text, nullable=True),
)


# Statements on every private question's path, built once: building one costs more than running
# it. Bound names differ from the columns', which SQLAlchemy keeps for SET clauses.
_answers = private_answers.c
_spends = privacy_spends.c
_EARLIER = sa.select(private_answers).where(_answers.question == sa.bindparam("asked"))
# An answer, once stored, never changes: a question answered before is found without a write.
_ANSWERED = Prepared(
    sa.select(_answers.answer).where(
        _answers.question == sa.bindparam("asked"), _answers.answer.is_not(None)
    )
)
_DROP_QUESTION = private_answers.delete().where(_answers.question == sa.bindparam("asked"))
_ANSWER = (
    private_answers.update()
    .where(_answers.question == sa.bindparam("asked"))
    .values(answer=sa.bindparam("text"))
)
# One spender's spend on one asset in one period grows only while it stays within the limits.
_TAKE = (
    privacy_spends.update()
    .where(
        _spends.spender == sa.bindparam("by"),
        _spends.asset == sa.bindparam("on"),
        _spends.period == sa.bindparam("during"),
        _spends.epsilon_micro + sa.bindparam("epsilon") <= sa.bindparam("epsilon_limit"),
        _spends.delta_femto + sa.bindparam("delta") <= sa.bindparam("delta_limit"),
    )
    .values(
        epsilon_micro=_spends.epsilon_micro + sa.bindparam("epsilon"),
        delta_femto=_spends.delta_femto + sa.bindparam("delta"),
        epsilon_limit_micro=sa.bindparam("epsilon_limit"),
        delta_limit_femto=sa.bindparam("delta_limit"),
    )
)


@dataclass(frozen=True)
class Allowance:
    """What may be spent on one asset in one period: by one organisation, and by all."""

    asset: str
    epsilon: float
    delta: float
    cap_epsilon: float
    cap_delta: float


class BudgetExhausted(Exception):
    def __init__(self, asset: str, everyone: bool) -> None:
        super().__init__(asset)
        self.asset = asset
        self.everyone = everyone


class QuestionInFlight(Exception):
    """The same question is being answered now; its answer is what a repeat will get."""


@dataclass(frozen=True)
class Asked:
    """A question's state once asked: answered before (its answer), or reserved now."""

    answer: str | None


class Budgets:
    """Spends and answers in the control store's database."""

    def __init__(self, engine: sa.Engine, stale_after_s: float) -> None:
        self.engine = engine
        self._unsynced = _unsynced(engine)
        prepare_turn(engine)
        dialect = postgresql if engine.dialect.name == "postgresql" else sqlite
        # A spender's row for an asset and period, at nothing spent, unless it is there already.
        self._open_spend = dialect.insert(privacy_spends).on_conflict_do_nothing()
        # A question reserved longer ago than this was lost with its process: ask it afresh.
        self.stale_after = timedelta(seconds=stale_after_s)

    def ask(
        self,
        *,
        question: str,
        org: str,
        query_id: str,
        period: str,
        allowances: list[Allowance],
        epsilon: float,
        delta: float,
    ) -> Asked:
        """The earlier answer to `question`, or ε and δ reserved from every allowance and the
        question marked as being answered, in one transaction: either all of it is durable
        or none. Raises BudgetExhausted naming the first asset without room, or
        QuestionInFlight."""
        epsilon_units = _units(epsilon, EPSILON_UNIT)
        delta_units = _units(delta, DELTA_UNIT)
        now = datetime.now(UTC)
        with self.engine.connect() as db:
            answered = _ANSWERED.first(db, {"asked": question})
        if answered is not None:
            return Asked(answered.answer)
        try:
            with writers_turn(self.engine), self.engine.begin() as db:
                earlier = db.execute(_EARLIER, {"asked": question}).first()
                if earlier is not None and earlier.answer is not None:
                    return Asked(earlier.answer)
                if earlier is not None:
                    if now - _instant(earlier.asked_at) < self.stale_after:
                        raise QuestionInFlight(question)
                    db.execute(_DROP_QUESTION, {"asked": question})
                self._take_all(db, org, period, allowances, epsilon_units, delta_units)
                db.execute(
                    private_answers.insert().values(
                        question=question, org=org, query_id=query_id, asked_at=now.isoformat()
                    )
                )
        except IntegrityError as exc:  # the same question reserved by another process just now
            raise QuestionInFlight(question) from exc
        return Asked(None)

    def reserve(
        self, *, org: str, period: str, allowances: list[Allowance], epsilon: float, delta: float
    ) -> None:
        """Reserve ε and δ from every allowance at once, for no one question (a held job's
        envelope); raises BudgetExhausted and reserves nothing when any has no room."""
        with writers_turn(self.engine), self.engine.begin() as db:
            self._take_all(
                db,
                org,
                period,
                allowances,
                _units(epsilon, EPSILON_UNIT),
                _units(delta, DELTA_UNIT),
            )

    def _take_all(
        self,
        db: sa.Connection,
        org: str,
        period: str,
        allowances: list[Allowance],
        epsilon_units: int,
        delta_units: int,
    ) -> None:
        for allowance in allowances:
            for spender, most_epsilon, most_delta in (
                (org, allowance.epsilon, allowance.delta),
                (EVERYONE, allowance.cap_epsilon, allowance.cap_delta),
            ):
                room = self._take(
                    db, spender, allowance.asset, period,
                    (epsilon_units, _floor(most_epsilon, EPSILON_UNIT)),
                    (delta_units, _floor(most_delta, DELTA_UNIT)),
                )  # fmt: skip
                if not room:
                    raise BudgetExhausted(allowance.asset, spender == EVERYONE)

    def _take(
        self,
        db: sa.Connection,
        spender: str,
        asset: str,
        period: str,
        epsilon: tuple[int, int],
        delta: tuple[int, int],
    ) -> bool:
        db.execute(
            self._open_spend,
            {
                "spender": spender, "asset": asset, "period": period,
                "epsilon_micro": 0, "delta_femto": 0,
                "epsilon_limit_micro": epsilon[1], "delta_limit_femto": delta[1],
            },
        )  # fmt: skip
        taken = db.execute(
            _TAKE,
            {
                "by": spender, "on": asset, "during": period,
                "epsilon": epsilon[0], "epsilon_limit": epsilon[1],
                "delta": delta[0], "delta_limit": delta[1],
            },
        )  # fmt: skip
        return taken.rowcount == 1

    def close(self) -> None:
        """Let go of the connections of the engine `answered` writes through, if its own."""
        if self._unsynced is not self.engine:
            self._unsynced.dispose()

    def answered(self, question: str, answer: str) -> None:
        """Keep `question`'s answer, so that asking it again spends nothing. Not waited onto
        disk, unlike a reservation: an answer lost to a power cut leaves its question reserved,
        to be asked afresh once stale and spent again; no answer is ever out without its spend."""
        with writers_turn(self._unsynced), self._unsynced.begin() as db:
            if db.dialect.name == "postgresql":
                db.execute(sa.text("SET LOCAL synchronous_commit TO OFF"))
            db.execute(_ANSWER, {"asked": question, "text": answer})

    def forget(self, question: str) -> None:
        """Drop a question that found no answer (its spend stands): asked again, it is asked
        afresh."""
        with writers_turn(self.engine), self.engine.begin() as db:
            db.execute(
                private_answers.delete().where(
                    private_answers.c.question == question, private_answers.c.answer.is_(None)
                )
            )

    def spent(self, period: str, spender: str | None = None) -> list[Spent]:
        """What each spender (one, or every organisation and EVERYONE) spent per asset."""
        query = sa.select(privacy_spends).where(privacy_spends.c.period == period)
        if spender is not None:
            query = query.where(privacy_spends.c.spender == spender)
        with self.engine.connect() as db:
            rows = db.execute(query.order_by(privacy_spends.c.asset, privacy_spends.c.spender))
            return [
                Spent(
                    spender=row.spender,
                    asset=row.asset,
                    epsilon=row.epsilon_micro / EPSILON_UNIT,
                    epsilon_limit=row.epsilon_limit_micro / EPSILON_UNIT,
                    delta=row.delta_femto / DELTA_UNIT,
                    delta_limit=row.delta_limit_femto / DELTA_UNIT,
                )
                for row in rows
            ]


@dataclass(frozen=True)
class Spent:
    spender: str
    asset: str
    epsilon: float
    epsilon_limit: float
    delta: float
    delta_limit: float

    def as_dict(self) -> dict:
        return {
            "asset": self.asset,
            "epsilon_spent": self.epsilon,
            "epsilon_left": max(self.epsilon_limit - self.epsilon, 0.0),
            "delta_spent": self.delta,
            "delta_left": max(self.delta_limit - self.delta, 0.0),
        }


def _units(value: float, unit: int) -> int:
    """A spend in whole units, rounded up (after the last float digits are cut), so that
    rounding never spends less than was used."""
    return math.ceil(round(value * unit, 3))


def _floor(value: float, unit: int) -> int:
    return math.floor(round(value * unit, 3))


def _instant(text: str) -> datetime:
    return datetime.fromisoformat(text)


def _unsynced(engine: sa.Engine) -> sa.Engine:
    """An engine whose commits are not waited onto disk: SQLite's own connections with
    `synchronous=NORMAL` (PostgreSQL turns it off per transaction instead)."""
    if engine.dialect.name != "sqlite":
        return engine
    unsynced = sa.create_engine(engine.url, hide_parameters=True)

    @sa.event.listens_for(unsynced, "connect")
    def _normal(connection, _record) -> None:  # noqa: ANN001 - DB-API hook
        cursor = connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    return unsynced
