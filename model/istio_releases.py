"""The Istio minors this program installs, each read at its source, and their revision names."""

from __future__ import annotations

import re
from dataclasses import dataclass

# An exact Istio release as its Helm charts are versioned: semver's core, no leading zeros
# (Helm would not find "1.30.03"), ASCII digits only, no pre-release or build suffix.
_RELEASE = re.compile(r"(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)")
# Revision-based (canary) upgrades may jump two minors at once, 1.8 to 1.10 in Istio's
# example (istio.io docs/setup/upgrade/canary: "jumping across two minor versions is
# supported"); in-place upgrades go one minor at a time.
MAX_CANARY_MINOR_JUMP = 2


@dataclass(frozen=True)
class IstioMinor:
    """A supported minor: the release whose own files were read, and Istio's Kubernetes row.

    Any patch of the minor is accepted: a patch that was never released is a chart version
    Helm cannot find, and `pulumi preview` says so (README, "Upgrading Istio").
    """

    minor: str
    files_read_at: str  # the release whose charts, CRDs and samples were read
    # Where they were read: istio.io/istio on the Go module proxy, which serves the release
    # tag as this pseudo-version (istio's tags have no "v", so Go cannot name them).
    module_version: str
    # Istio's support row: the Kubernetes minors the release announcement names.
    kubernetes: tuple[str, ...]


# Each row's Kubernetes minors, from Istio's own announcement of the minor:
# - 1.30: "Istio 1.30.0 is officially supported on Kubernetes versions 1.32 to 1.36."
#   (istio.io/latest/news/releases/1.30.x/announcing-1.30/; the same row in istio.io's
#   data/compatibility/supportStatus.yml). Files read at 1.30.4 (2026-08-27, the security
#   release ISTIO-SECURITY-2026-006): a release-1.30 commit of 2026-08-26 whose go.mod pins
#   istio.io/api v1.30.4-0.*, the proxy's only 1.30 version.
# - 1.31: "Istio 1.31.0 is officially supported on Kubernetes versions 1.32 to 1.36."
#   (istio.io/latest/news/releases/1.31.x/announcing-1.31/). Files read at 1.31.0
#   (2026-08-31): its go.mod pins exactly the commit of istio.io/api's v1.31.0 tag.
# - 1.32 is left out: the proxy serves istio.io/api v1.32.0 (its CRDs) but no istio.io/istio
#   of 1.32, so its charts cannot be read, and istio.io announces no 1.32 yet.
ISTIO_MINORS: dict[str, IstioMinor] = {
    minor.minor: minor
    for minor in (
        IstioMinor(
            "1.30",
            files_read_at="1.30.4",
            module_version="v0.0.0-20260826214018-9739e10eb9d7",
            kubernetes=("1.32", "1.33", "1.34", "1.35", "1.36"),
        ),
        IstioMinor(
            "1.31",
            files_read_at="1.31.0",
            module_version="v0.0.0-20260827124520-eed52ebb66ad",
            kubernetes=("1.32", "1.33", "1.34", "1.35", "1.36"),
        ),
    )
}


@dataclass(frozen=True)
class IstioRelease:
    """An exact release. The patch stays text: only minors are ever compared."""

    major: int
    minor_number: int
    patch: str

    @property
    def minor(self) -> str:
        return f"{self.major}.{self.minor_number}"

    @property
    def minor_key(self) -> tuple[int, int]:
        return self.major, self.minor_number

    @property
    def revision(self) -> str:
        """The control-plane revision of the release's minor: "1-31" for 1.31.x.

        One revision per minor, so a patch stays an in-place upgrade of its revision and a
        minor is a canary beside it. Istio revision names cannot hold dots.
        """
        return f"{self.major}-{self.minor_number}"

    def __str__(self) -> str:
        return f"{self.major}.{self.minor_number}.{self.patch}"


def parse_release(text: str) -> IstioRelease:
    """The release `text` names exactly; ValueError if it is no release of a supported minor."""
    match = _RELEASE.fullmatch(text)
    if match is None:
        raise ValueError(
            "must be an exact Istio release like 1.31.0 (no 'latest', range, pre-release "
            "or leading zero)"
        )
    major, minor, patch = match.groups()
    if f"{major}.{minor}" not in ISTIO_MINORS:
        raise ValueError(
            f"is Istio {major}.{minor}, which this program does not install; supported minors "
            f"(each read at its source): {', '.join(ISTIO_MINORS)}"
        )
    # A supported minor's numbers are short; the patch, which may be any length, stays text.
    return IstioRelease(int(major), int(minor), patch)


def supported_kubernetes(release: IstioRelease) -> tuple[str, ...]:
    return ISTIO_MINORS[release.minor].kubernetes
