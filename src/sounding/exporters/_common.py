"""What the push exporters share: argument checks, identity defaults, batch grouping."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sounding.core.config import get_settings
from sounding.core.exceptions import InvalidTypeError, InvalidValueError
from sounding.exporters._convert import LabelPolicy, check_allow, install_id
from sounding.exporters.base import Transport, UrllibTransport
from sounding.storage.outbox import Interval

__all__ = ["AUTO", "Group", "check_common", "group_intervals"]


class _Auto:
    def __repr__(self) -> str:
        return "AUTO"


#: ``instance=AUTO`` (the default): the install's random pseudonymous id.
AUTO: Any = _Auto()


def check_common(
    url: Any,
    headers: Any,
    timeout: Any,
    transport: Transport | None,
) -> tuple[str, dict[str, str], float, Transport]:
    """Validate the arguments every push exporter takes."""
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        raise InvalidValueError("url", url, "an http:// or https:// URL")
    hdrs = {} if headers is None else headers
    if not isinstance(hdrs, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in hdrs.items()
    ):
        raise InvalidTypeError("headers", headers, "a mapping of str to str")
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not 0 < timeout <= 120:
        raise InvalidValueError("timeout", timeout, "a number of seconds from 0 to 120")
    return url, dict(hdrs), float(timeout), transport or UrllibTransport()


def policy(instance: Any, tags: Collection[str] | None, job: str | None) -> LabelPolicy:
    """The label policy from the exporter arguments (instance resolved lazily to the id)."""
    allow = check_allow(tags)
    if instance is AUTO:
        inst: str | None = install_id(get_settings().data_dir)
    elif instance is None or isinstance(instance, str):
        inst = instance
        if isinstance(inst, str) and not inst:
            raise InvalidValueError("instance", instance, "a non-empty string, AUTO or None")
    else:
        raise InvalidTypeError("instance", instance, "a str, AUTO or None")
    if job is not None and not isinstance(job, str):
        raise InvalidTypeError("job", job, "a str or None")
    return LabelPolicy(allow=allow, instance=inst, job=job)


@dataclass
class Group:
    """Intervals of one output series at one instant, merged (tags outside the allowlist
    fold series together)."""

    first: Interval
    parts: list[Interval]


def group_intervals(
    intervals: Sequence[Interval], labels_of: Any, include_internal: bool
) -> list[tuple[tuple[str, str, tuple[tuple[str, str], ...]], float, list[Interval]]]:
    """``[(key, bucket_end, intervals)]`` in time order, key = (name, type, labels)."""
    groups: dict[tuple[Any, ...], list[Interval]] = {}
    for iv in intervals:
        if not include_internal and iv.name.startswith("sounding.internal."):
            continue
        key = (iv.name, iv.metric_type.value, labels_of(iv.tags), iv.end)
        groups.setdefault(key, []).append(iv)
    out = [((k[0], k[1], k[2]), k[3], v) for k, v in groups.items()]
    out.sort(key=lambda g: g[1])
    return out
