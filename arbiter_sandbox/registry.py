"""A real Docker registry behind the sandbox's ECR, so that `push` can be tested end to end.

moto's ECR hands out a token no registry accepts, for a proxy endpoint nobody serves, and never sees what
docker pushes. With a :class:`RegistryBridge` attached (``AwsSandbox.registry = bridge``):

- ``GetAuthorizationToken`` answers ``base64("AWS:<password>")`` for the registry's htpasswd and
  ``proxyEndpoint`` ``http://127.0.0.1:PORT``: ``docker login`` and ``docker push`` then talk to the real
  registry (127.0.0.0/8 is an insecure registry for dockerd by default, hence plain HTTP);
- before moto answers a read or write of a repository's images, the registry's tags of that repository
  are imported into moto's ECR backend under the registry's own digests (``/v2/<repo>/tags/list`` and
  ``/v2/<repo>/manifests/<tag>``), so DescribeImages/BatchGetImage show what was pushed, with its digest;
- a successful ``PutImage`` (a `promote`) is mirrored into the registry, so a promoted tag is pullable.

The registry is the storage; moto stays the API. A tag moto has and the registry lacks (the seed's fake
images) is left alone.
"""

from __future__ import annotations

import base64
import json
import logging
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from arbiter_sandbox.aws_server import AwsCall, Reply, account_of, call_app, read_body

log = logging.getLogger(__name__)

# What a registry may hold under a tag; ECR's own accepted media types.
MANIFEST_TYPES = (
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.index.v1+json",
)
_SYNCED = {"DescribeImages", "BatchGetImage", "ListImages", "PutImage"}
TOKEN_LIFETIME = 12 * 3600  # what ECR gives


@dataclass
class RegistryBridge:
    """``url`` is ``http://127.0.0.1:PORT``; ``password`` is in the registry's htpasswd for ``username``.

    ``issued_password`` is what GetAuthorizationToken hands out (default: the right one) — a test sets a
    wrong one to see how `push` meets a refused login.
    """

    url: str
    password: str
    username: str = "AWS"
    issued_password: str | None = None
    timeout: float = 10.0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    # -- the registry's HTTP API ---------------------------------------------------------------------
    def _request(
        self, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None
    ) -> Any:  # an http.client.HTTPResponse, used as a context manager
        auth = base64.b64encode(f"{self.username}:{self.password}".encode()).decode()
        request = urllib.request.Request(
            self.url.rstrip("/") + path,
            data=body,
            method=method,
            headers={"Authorization": f"Basic {auth}", **(headers or {})},
        )
        return urllib.request.urlopen(request, timeout=self.timeout)

    def tags(self, repository: str) -> list[str]:
        try:
            with self._request("GET", f"/v2/{repository}/tags/list") as resp:
                return list(json.loads(resp.read()).get("tags") or [])
        except urllib.error.HTTPError as exc:
            if exc.code == 404:  # nothing pushed to this repository yet
                return []
            raise

    def manifest(self, repository: str, reference: str) -> tuple[str, str, str]:
        """(manifest text, media type, digest) exactly as the registry stores them."""
        with self._request(
            "GET", f"/v2/{repository}/manifests/{reference}", headers={"Accept": ", ".join(MANIFEST_TYPES)}
        ) as resp:
            text = resp.read().decode("utf-8")
            return text, resp.headers.get("Content-Type", MANIFEST_TYPES[0]), resp.headers["Docker-Content-Digest"]

    def put_manifest(self, repository: str, tag: str, manifest: str, media_type: str) -> None:
        with self._request(
            "PUT", f"/v2/{repository}/manifests/{tag}", manifest.encode("utf-8"), {"Content-Type": media_type}
        ):
            pass

    # -- the ECR side -----------------------------------------------------------------------------------
    def authorization(self) -> dict[str, Any]:
        password = self.issued_password if self.issued_password is not None else self.password
        token = base64.b64encode(f"{self.username}:{password}".encode()).decode()
        return {
            "authorizationData": [
                {
                    "authorizationToken": token,
                    "expiresAt": int(time.time()) + TOKEN_LIFETIME,
                    "proxyEndpoint": self.url.rstrip("/"),
                }
            ]
        }

    def sync(self, account: str, region: str, repository: str) -> None:
        """Import the registry's tags of ``repository`` into moto's ECR backend (registry digests)."""
        from moto.ecr.models import ecr_backends

        backend = ecr_backends[account][region]
        repo = backend.repositories.get(repository)
        if repo is None:
            return
        with self._lock:
            known = {tag: image.get_image_digest() for image in repo.images for tag in image.image_tags}
            for tag in self.tags(repository):
                manifest, media_type, digest = self.manifest(repository, tag)
                if known.get(tag) == digest:
                    continue
                try:
                    backend.put_image(repository, manifest, tag, media_type, digest)
                except Exception as exc:  # e.g. an IMMUTABLE tag moto already holds: ECR's view wins
                    log.warning("registry bridge: %s:%s not imported: %s", repository, tag, exc)

    def handle(self, call: AwsCall, environ: dict[str, Any], moto: Callable[..., Iterable[bytes]]) -> Reply | None:
        """The AwsSandbox hook for ECR requests: an answer, or None to let moto answer as usual."""
        if call.operation == "GetAuthorizationToken":
            body = json.dumps(self.authorization()).encode()
            return 200, {"Content-Type": "application/x-amz-json-1.1"}, body
        if call.operation not in _SYNCED:
            return None
        try:
            params = json.loads(read_body(environ) or b"{}")
        except ValueError:
            return None
        repository = params.get("repositoryName")
        if not isinstance(repository, str):
            return None
        try:
            self.sync(account_of(call, environ), call.region, repository)
        except (OSError, ValueError, KeyError) as exc:  # a registry hiccup must not break the ECR API
            log.warning("registry bridge: cannot read %s from %s: %s", repository, self.url, exc)
        read_body(environ)  # rewind for moto
        if call.operation != "PutImage":
            return None
        status, headers, body = call_app(moto, environ)
        headers = {k: v for k, v in headers.items() if k.lower() != "content-length"}  # the server sets it
        if status == 200:
            try:
                self.put_manifest(
                    repository,
                    params["imageTag"],
                    params["imageManifest"],
                    params.get("imageManifestMediaType") or json.loads(params["imageManifest"]).get("mediaType"),
                )
            except (OSError, ValueError, KeyError) as exc:  # e.g. the seed's fake images: no blobs to point at
                log.info("registry bridge: %s:%s not mirrored: %s", repository, params.get("imageTag"), exc)
        return status, headers, body
