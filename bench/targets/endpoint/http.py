"""The endpoint's server over HTTP: its URL (checked, its root, credentials removed), whether it
is this host's, and what it says about itself before a run (the models it serves, its version)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit, urlunsplit

from bench.errors import UsageError


def redact(url: str) -> str:
    """The URL without user:password (never stored)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, parts.query, ""))


def check_url(url: str) -> str:
    """The base URL (ending in /v1 or whatever the user gave, no trailing slash); UsageError if not http(s)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UsageError(f"--url {url!r}: not an http:// or https:// URL")
    return url.rstrip("/")


def root_url(url: str) -> str:
    """The server's root from the API's base URL (…/v1 -> …): where /health, /metrics and /version are."""
    url = url.rstrip("/")
    return url[: -len("/v1")] if url.endswith("/v1") else url


def is_local(url: str) -> bool:
    return (urlsplit(url).hostname or "") in ("localhost", "127.0.0.1", "::1")


def preflight(url: str, model: str, api_key_env: str | None = None, timeout_s: float = 10.0) -> list[str]:
    """The models the server lists; UsageError (one line) when it does not answer, refuses
    the key, or does not serve `model`. Prints one warning for plain http to another host."""
    import os
    import sys

    import httpx

    if urlsplit(url).scheme == "http" and not is_local(url):
        print(f"warning: {redact(url)} is plain http to another host: prompts and replies cross the network "
              "unencrypted", file=sys.stderr)
    if api_key_env and not os.environ.get(api_key_env):
        raise UsageError(f"--api-key-env {api_key_env}: that environment variable is not set")
    headers = {"Authorization": f"Bearer {os.environ[api_key_env]}"} if api_key_env else {}
    try:
        resp = httpx.get(url.rstrip("/") + "/models", headers=headers, timeout=timeout_s)
    except httpx.HTTPError as exc:
        raise UsageError(f"--url {redact(url)} does not answer ({type(exc).__name__}: {str(exc)[:120]})") from None
    if resp.status_code in (401, 403):
        raise UsageError(f"--url {redact(url)} refused the request (HTTP {resp.status_code}): "
                         "give the key's variable with --api-key-env NAME")
    try:
        ids = [str(m["id"]) for m in resp.json()["data"]]
    except (ValueError, KeyError, TypeError):
        raise UsageError(f"--url {redact(url)}: GET /models gave HTTP {resp.status_code}, not an OpenAI model "
                         "list (is the URL the API's base, e.g. http://127.0.0.1:8000/v1?)") from None
    if model not in ids:
        raise UsageError(f"-m {model}: not served at {redact(url)} (it serves: {', '.join(ids) or 'nothing'})")
    return ids


async def server_facts(client, url: str, headers: dict[str, str]) -> dict[str, Any]:
    """What the server says about itself: its models, and its version where it tells (vLLM: /version)."""
    facts: dict[str, Any] = {}
    root = root_url(url)
    try:
        resp = await client.get(url + "/models", headers=headers, timeout=5.0)
        facts["server_models"] = ",".join(str(m.get("id")) for m in resp.json().get("data", []))
        facts["server_header"] = resp.headers.get("server")
    except Exception:  # noqa: BLE001 - facts are best effort; the requests themselves decide the row
        pass
    try:
        resp = await client.get(root + "/version", timeout=5.0)
        if resp.status_code == 200:
            facts["server_version"] = str(resp.json().get("version"))
    except Exception:  # noqa: BLE001
        pass
    try:  # vLLM started with VLLM_SERVER_DEV_MODE=1: its collect_env, with the pip packages
        resp = await client.get(root + "/server_info", timeout=5.0)
        if resp.status_code == 200:
            facts.update(plugin_versions(resp.text))
    except Exception:  # noqa: BLE001
        pass
    return facts


# The Neuron packages under a vLLM Neuron server, by their distribution names: the plugin
# (vllm-neuron, `pip show vllm-neuron` in its setup guide) and TorchNeuron's runtime library
# (libtorch-neuronx-lite, src/helperscripts/n2-manifest.json in aws-neuron-sdk).
PLUGIN_PACKAGES = {"vllm_neuron_version": "vllm[-_]neuron", "libtorch_neuronx_lite_version": "libtorch[-_]neuronx[-_]lite"}


def plugin_versions(text: str) -> dict[str, str]:
    """The Neuron packages' versions where a server's self-description lists them ('name==1.2'
    or 'name 1.2', as pip freeze and collect_env write them); {} where it does not."""
    import re

    out = {}
    for column, name in PLUGIN_PACKAGES.items():
        found = re.search(rf"(?<![\w-]){name}(?:==|\s+)v?([0-9][\w.+-]*)", text, re.IGNORECASE)
        if found:
            out[column] = found.group(1)
    return out
