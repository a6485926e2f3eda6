"""A small client for Label Studio's HTTP API: create a project, import tasks, export answers.

Only the standard library is used (``urllib``); authentication is Label Studio's API token
(``Authorization: Token ...``, the "legacy token" of its account settings; a personal access
token works through ``bearer=True``).

Example:
    >>> client = LabelStudioClient("http://127.0.0.1:8080", token="...")  # doctest: +SKIP
    >>> project = client.create_project("Review round 1", labeling_config(tree))  # doctest: +SKIP
    >>> client.import_tasks(project, to_tasks(products, predictions))  # doctest: +SKIP
    >>> corrections = read_export(client.export(project), tree)  # doctest: +SKIP
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

from multimodal_cat.review.corrections import CorrectionError


class LabelStudioError(CorrectionError):
    """Label Studio answered with an error, or could not be reached."""


class LabelStudioClient:
    """Talk to one Label Studio server.

    Args:
        url: The server's base URL, e.g. ``http://127.0.0.1:8080``.
        token: An API token of a Label Studio user.
        bearer: Send the token as ``Bearer`` (personal access tokens) instead of ``Token``.
        timeout: Seconds to wait for each request.
    """

    def __init__(self, url: str, token: str, *, bearer: bool = False, timeout: float = 120.0) -> None:
        self.url = url.rstrip("/")
        self.token = token
        self.bearer = bearer
        self.timeout = timeout

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        payload = self._send(method, path, body)
        return json.loads(payload) if payload else None

    def _send(self, method: str, path: str, body: Any = None) -> bytes:
        data = None if body is None else json.dumps(body).encode("utf-8")
        scheme = "Bearer" if self.bearer else "Token"
        request = urllib.request.Request(
            self.url + path,
            method=method,
            data=data,
            headers={"Authorization": f"{scheme} {self.token}", "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return response.read()
        except urllib.error.HTTPError as err:
            detail = err.read().decode("utf-8", "replace")[:500]
            raise LabelStudioError(f"Label Studio {method} {path}: HTTP {err.code}: {detail}") from None
        except (urllib.error.URLError, TimeoutError, OSError) as err:
            raise LabelStudioError(f"cannot reach Label Studio at {self.url}: {err}") from None

    def create_project(self, title: str, label_config: str) -> int:
        """Create a project with this labeling configuration; returns its id."""
        return int(self._call("POST", "/api/projects", {"title": title, "label_config": label_config})["id"])

    def add_local_storage(self, project: int, folder: str, *, title: str = "product images") -> int:
        """Attach a *Local files* source storage on ``folder`` (a folder under the server's
        ``LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT``) so the project's tasks can show the images
        in it through ``/data/local-files/?d=...``; nothing is synced. Returns its id."""
        body = {"project": project, "path": folder, "title": title, "use_blob_urls": True}
        return int(self._call("POST", "/api/storages/localfiles", body)["id"])

    def fetch(self, url: str) -> bytes:
        """The bytes behind a URL the server serves (e.g. a task's ``/data/local-files/?d=...``)."""
        return self._send("GET", url if url.startswith("/") else "/" + url)

    def import_tasks(self, project: int, tasks: list[dict[str, Any]]) -> int:
        """Import tasks (with their pre-annotations); returns how many tasks were created."""
        return int(self._call("POST", f"/api/projects/{project}/import", tasks)["task_count"])

    def task_ids(self, project: int) -> list[int]:
        """Ids of the project's tasks, in import order."""
        ids, page = [], 1
        while True:
            answer = self._call("GET", f"/api/tasks?project={project}&page={page}&page_size=500")
            ids += [t["id"] for t in answer["tasks"]]
            if len(ids) >= answer["total"] or not answer["tasks"]:
                return ids
            page += 1

    def annotate(self, task: int, result: list[dict[str, Any]], *, skipped: bool = False) -> int:
        """Post an annotation (what a reviewer does in the UI); returns its id."""
        body = {"result": result, "was_cancelled": skipped}
        return int(self._call("POST", f"/api/tasks/{task}/annotations", body)["id"])

    def export(self, project: int) -> list[dict[str, Any]]:
        """The project's JSON export (tasks with their annotations), as Label Studio writes it."""
        return self._call("GET", f"/api/projects/{project}/export?exportType=JSON")
