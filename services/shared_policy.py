"""Policy reloads that reach every gateway process serving one home: one published module set."""

from __future__ import annotations

import fcntl
import json
import logging
import os
import threading
from pathlib import Path
from typing import Any

from policies import Decision, EmbeddedEngine, PolicyInvalid, PolicySet
from policies.engine import POLICY_ERROR, with_decision_id
from sandbox.changes import ChangeMarker

log = logging.getLogger(__name__)

SNAPSHOT_FILE = "modules.json"
MARKER_FILE = ".changed"
LOCK_FILE = ".lock"


class SharedPolicy:
    """An embedded engine that decides with the module set published in `folder`.

    `publish` compiles the modules on disk, writes that exact set to `folder` and announces
    it; every process loads the published set before its next decision. So all processes
    decide alike, and an edit on disk that nobody reloaded reaches none of them, not even a
    process that starts later. Where nothing is published yet, the first process publishes
    the modules on disk. A process that cannot load the published set denies everything
    until it can."""

    def __init__(self, engine: EmbeddedEngine, folder: Path) -> None:
        self._engine = engine
        self._folder = folder
        self._marker = ChangeMarker(folder / MARKER_FILE)
        self._current: str | None = None
        self._follow()

    def decide(self, input: dict[str, Any]) -> Decision:
        if not self._in_step():
            return with_decision_id(Decision.deny(POLICY_ERROR))
        return self._engine.decide(input)

    def ready(self) -> bool:
        return self._in_step()

    def loaded(self) -> PolicySet:
        self._in_step()
        return self._engine.loaded()

    def _in_step(self) -> bool:
        """Load what was published since the last look; whether this process now has it."""
        if self._marker.changed() or self._current is None:
            self._follow()
        return self._current is not None

    def reload(self) -> PolicySet:
        """Compile the modules on disk; if they decide, publish them to every process."""
        return publish(self._engine, self._folder, self._marker)

    def _follow(self) -> None:
        try:
            if not (self._folder / SNAPSHOT_FILE).exists():  # the first process publishes
                publish(self._engine, self._folder, self._marker)
            modules = _read_snapshot(self._folder / SNAPSHOT_FILE)
            if PolicySet.of(modules).digest != self._engine.loaded().digest:
                self._engine.load(modules)
            self._current = self._engine.loaded().digest
        except Exception:  # noqa: BLE001 - any doubt about the published set denies
            log.exception("the published policy modules cannot be loaded")
            self._current = None


def publish(engine: EmbeddedEngine, folder: Path, marker: ChangeMarker | None = None) -> PolicySet:
    """Load the modules on disk into `engine` and publish them; PolicyInvalid leaves both the
    engine and the published set as they were. One publisher at a time, across processes."""
    folder.mkdir(parents=True, exist_ok=True)
    marker = marker or ChangeMarker(folder / MARKER_FILE)
    with open(folder / LOCK_FILE, "a+b") as lock_file:
        fcntl.flock(lock_file, fcntl.LOCK_EX)
        modules = engine.modules()
        # The engine compiled these already when they are what it holds; compile only news.
        if PolicySet.of(modules).digest != engine.loaded().digest:
            engine.load(modules)
        policy_set = engine.loaded()
        staging = folder / f".{SNAPSHOT_FILE}.{os.getpid()}.{threading.get_ident()}"
        staging.write_text(
            json.dumps({"digest": policy_set.digest, "modules": modules}, ensure_ascii=False)
        )
        os.replace(staging, folder / SNAPSHOT_FILE)
        marker.announce()
    return policy_set


def _read_snapshot(path: Path) -> list[tuple[str, str]]:
    snapshot = json.loads(path.read_text(encoding="utf-8"))
    modules = [(str(name), str(source)) for name, source in snapshot["modules"]]
    if PolicySet.of(modules).digest != snapshot["digest"]:
        raise PolicyInvalid("the published policy modules do not match their digest")
    return modules
