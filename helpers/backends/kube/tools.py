"""The one seam for outside commands: helm, glooctl and kubectl.

Every call is an argv list run without a shell, so nothing a learner types can
become a shell command. Tests replace ``Tools`` with a fake that records the argv.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass

from helpers.errors import ClusterError, MissingTool

# How to get each command, for the messages that say one is missing (and `doctor`).
INSTALL_TOOLS = {
    "helm": "brew install helm (or https://helm.sh/docs/intro/install/)",
    "glooctl": "curl -sL https://run.solo.io/gloo/install | sh && export PATH=$HOME/.gloo/bin:$PATH",
    "kubectl": "brew install kubectl (or https://kubernetes.io/docs/tasks/tools/)",
}


@dataclass(frozen=True)
class Ran:
    """What a command printed."""

    argv: tuple[str, ...]
    stdout: str
    stderr: str = ""


class Tools:
    """Finds helm, glooctl and kubectl on PATH and runs them."""

    def which(self, name: str) -> str | None:
        """The path of command ``name``, or None when it is not on PATH."""
        return shutil.which(name)

    def run(self, argv: list[str], timeout: float = 900.0) -> Ran:
        """Run ``argv``; raise ``MissingTool`` if its command is not on PATH, and
        ``ClusterError`` with the end of its output if it fails."""
        path = self.which(argv[0])
        if path is None:
            raise MissingTool(f"{argv[0]} is not on PATH: install it with {INSTALL_TOOLS.get(argv[0], argv[0])}")
        try:
            done = subprocess.run([path, *argv[1:]], capture_output=True, text=True, timeout=timeout, check=False)
        except subprocess.TimeoutExpired as e:
            raise ClusterError(f"`{' '.join(argv)}` did not finish within {timeout:g}s") from e
        if done.returncode != 0:
            tail = "\n".join((done.stderr or done.stdout).strip().splitlines()[-8:])
            raise ClusterError(f"`{' '.join(argv)}` failed (exit {done.returncode}):\n{tail}")
        return Ran(tuple(argv), done.stdout, done.stderr)
