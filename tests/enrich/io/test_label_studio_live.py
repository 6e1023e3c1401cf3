"""Round trip through a real Label Studio server on loopback.

Skipped unless ``ENRICH_LABEL_STUDIO_BIN`` points at a ``label-studio`` executable (install it
in its own virtualenv: ``python3.11 -m venv /tmp/ls-venv && /tmp/ls-venv/bin/pip install
label-studio``, then ``ENRICH_LABEL_STUDIO_BIN=/tmp/ls-venv/bin/label-studio``). The test starts
the server on a free 127.0.0.1 port with a fresh data folder, creates a project with our
labeling config, imports our tasks file, posts annotations through the REST API, exports the
project in the JSON format and reads it back with :func:`import_label_studio`.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from enrich.analysis.gold import gold_vector
from enrich.curation.review import review_queue
from enrich.datasets import YOUTUBE_SPAM_CLASSES, load_youtube_spam
from enrich.io.label_studio import (
    import_label_studio,
    label_studio_config,
    to_label_studio,
    write_label_studio_tasks,
)

LABEL_STUDIO_BIN = os.environ.get("ENRICH_LABEL_STUDIO_BIN")
STARTUP_TIMEOUT_S = 300
CLASSES = list(YOUTUBE_SPAM_CLASSES)

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not LABEL_STUDIO_BIN,
        reason="set ENRICH_LABEL_STUDIO_BIN to a label-studio executable to run this test",
    ),
]


class LabelStudio:
    """A few calls of Label Studio's REST API, authenticated with the legacy user token."""

    def __init__(self, url: str, token: str) -> None:
        self.url = url
        self.token = token

    def call(self, method: str, path: str, body: Any = None) -> Any:
        request = urllib.request.Request(
            self.url + path,
            method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers={"Authorization": f"Token {self.token}", "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=120) as response:
                payload = response.read()
        except urllib.error.HTTPError as exc:
            raise AssertionError(f"{method} {path} -> {exc.code}: {exc.read()[:500]!r}") from exc
        return json.loads(payload) if payload else None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def label_studio(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabelStudio]:
    data_dir = tmp_path_factory.mktemp("label-studio")
    port = free_port()
    token = secrets.token_hex(20)
    env = dict(
        os.environ,
        LATEST_VERSION_CHECK="false",  # no call to pypi.org at start-up
        LABEL_STUDIO_BASE_DATA_DIR=str(data_dir),
    )
    command = [
        str(LABEL_STUDIO_BIN),
        "start",
        "--no-browser",
        "--internal-host",
        "127.0.0.1",
        "--port",
        str(port),
        "--data-dir",
        str(data_dir),
        "--username",
        "reviewer@example.com",
        "--password",
        secrets.token_hex(12),
        "--user-token",
        token,
        "--enable-legacy-api-token",
    ]
    log_path = data_dir / "server.log"
    with log_path.open("w") as log:
        server = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_healthy(server, url, log_path)
        yield LabelStudio(url, token)
    finally:
        _stop(server)


def _wait_until_healthy(server: subprocess.Popen, url: str, log_path: Path) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(
                f"label-studio exited with {server.returncode}:\n{log_path.read_text()[-3000:]}"
            )
        try:
            with urllib.request.urlopen(url + "/health", timeout=5) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(1)
    pytest.fail(
        f"label-studio did not answer within {STARTUP_TIMEOUT_S}s:\n{log_path.read_text()[-3000:]}"
    )


def _stop(server: subprocess.Popen) -> None:
    if server.poll() is not None:
        return
    os.killpg(server.pid, signal.SIGTERM)  # the group this fixture started, nothing else
    try:
        server.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(server.pid, signal.SIGKILL)
        server.wait(timeout=30)


def choice(label: str) -> list[dict[str, Any]]:
    return [
        {"from_name": "label", "to_name": "text", "type": "choices", "value": {"choices": [label]}}
    ]


def test_round_trip_through_label_studio(label_studio: LabelStudio, tmp_path: Path) -> None:
    # Our side: a keyword rule labels the bundled YouTube comments; the queue picks doubtful ones.
    data = load_youtube_spam().head(200)
    spam = pl.col("text").str.contains(r"(?i)check|subscribe|http|channel")
    enriched = data.select(
        "asset_id",
        spam.cast(pl.Int64).alias("label"),
        pl.when(spam).then(0.66).otherwise(0.6).alias("confidence"),
        pl.lit(False).alias("conflict"),
        pl.lit(False).alias("all_abstain"),
    )
    queue = review_queue(enriched, batch_size=6)
    tasks_file = write_label_studio_tasks(
        to_label_studio(
            queue, data, class_names=CLASSES, data_columns=["video"], model_version="enrich-test"
        ),
        tmp_path / "tasks.json",
    )

    project = label_studio.call(
        "POST",
        "/api/projects",
        {"title": "enrich review", "label_config": label_studio_config(CLASSES)},
    )
    pid = project["id"]
    imported = label_studio.call(
        "POST", f"/api/projects/{pid}/import", json.loads(tasks_file.read_text())
    )
    assert imported["task_count"] == 6 and imported["prediction_count"] == 6

    everything = label_studio.call(
        "GET", f"/api/projects/{pid}/export?exportType=JSON&download_all_tasks=true"
    )
    task_of = {task["data"]["asset_id"]: task["id"] for task in everything}
    assert list(task_of) == queue.asset_ids.to_list()
    first = label_studio.call("GET", f"/api/tasks/{task_of[queue.asset_ids[0]]}")
    prediction = first["predictions"][0]
    assert prediction["model_version"] == "enrich-test"
    assert prediction["score"] == pytest.approx(queue.table["confidence"][0])

    # The reviewer: the gold label for four tasks, a skip, a changed mind, one left undone.
    gold = dict(data.select("asset_id", "label").rows())
    ids = queue.asset_ids.to_list()
    for asset in ids[:4]:
        label_studio.call(
            "POST",
            f"/api/tasks/{task_of[asset]}/annotations/",
            {"result": choice(CLASSES[gold[asset]])},
        )
    label_studio.call(
        "POST", f"/api/tasks/{task_of[ids[4]]}/annotations/", {"result": [], "was_cancelled": True}
    )
    wrong = CLASSES[1 - gold[ids[0]]]
    time.sleep(0.01)
    label_studio.call(
        "POST", f"/api/tasks/{task_of[ids[0]]}/annotations/", {"result": choice(wrong)}
    )
    me = label_studio.call("GET", "/api/current-user/whoami")

    export = label_studio.call(
        "GET", f"/api/projects/{pid}/export?exportType=JSON&download_all_tasks=true"
    )
    (tmp_path / "export.json").write_text(json.dumps(export))
    result = import_label_studio(
        tmp_path / "export.json", class_names=CLASSES, known_asset_ids=data["asset_id"]
    )
    expected = {asset: CLASSES[gold[asset]] for asset in ids[1:4]} | {ids[0]: wrong}
    assert dict(result.gold.select("asset_id", "label_name").rows()) == expected
    assert set(result.gold["reviewer"]) == {str(me["id"])}
    assert (result.n_tasks, result.n_skipped, result.n_new) == (6, 2, 4)
    assert result.disagreements["asset_id"].to_list() == [ids[0]]

    again = import_label_studio(export, class_names=CLASSES, existing_gold=result.gold)
    assert (again.n_new, again.n_updated, again.n_unchanged) == (0, 0, 4)
    assert again.gold.equals(result.gold)

    y = gold_vector(result.gold, data["asset_id"], CLASSES)
    assert int((y != -1).sum()) == 4
