"""The JavaScript vex's signing code (npm `@vektormemory/vex` 0.8.8), installed into a temporary folder.

Interoperability is checked against the real package, not a re-implementation: `npm pack` fetches it,
`npm install` adds the two libraries its `core/sign.js` imports (`@noble/hashes`, `@noble/ed25519`),
and a small driver script calls its exported `signExport` and `verifyExport`. Every step has a
time limit; when npm or node is missing, or the install fails (no registry), the tests that need it
are skipped with the reason.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PACKAGE = "@vektormemory/vex@0.8.8"
NOBLE = ("@noble/hashes@1.8.0", "@noble/ed25519@2.3.0")
_STEP_SECONDS = 180

_DRIVER = """
import { pathToFileURL } from 'node:url';
const [signModule, command, file, key] = process.argv.slice(2);
const { signExport, verifyExport } = await import(pathToFileURL(signModule).href);
const log = console.log;
console.log = () => {};  // the library's progress lines; the driver prints one JSON line
if (command === 'sign') {
  const result = await signExport(file, key ? { keyFile: key } : { saveKey: false });
  log(JSON.stringify(result));
} else {
  const result = await verifyExport(file);
  log(JSON.stringify(result));
  process.exit(result.valid ? 0 : 1);
}
"""


@dataclass(frozen=True)
class JsVex:
    """The installed package and a way to run its signing functions."""

    root: Path

    @property
    def sign_module(self) -> Path:
        return self.root / "package" / "core" / "sign.js"

    def _run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["node", str(self.root / "driver.mjs"), str(self.sign_module), *args],
            capture_output=True,
            text=True,
            timeout=_STEP_SECONDS,
            cwd=self.root,
        )

    def sign(self, data: Path, key: Path | None = None) -> dict[str, Any]:
        """`signExport` of the JavaScript vex: writes `<stem>.vmig.sig`, returns the signature object."""
        done = self._run("sign", str(data), *([str(key)] if key else []))
        if done.returncode != 0:
            raise AssertionError(f"the JavaScript vex could not sign {data}: {done.stderr.strip()[-2000:]}")
        return json.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]

    def verify(self, data: Path) -> dict[str, Any]:
        """`verifyExport` of the JavaScript vex: {"valid": bool, "errors": [...]}."""
        done = self._run("verify", str(data))
        lines = done.stdout.strip().splitlines()
        if not lines:
            raise AssertionError(f"the JavaScript vex could not verify {data}: {done.stderr.strip()[-2000:]}")
        return json.loads(lines[-1])  # type: ignore[no-any-return]


def install(folder: Path) -> JsVex | str:
    """The package installed under `folder`, or why it could not be (a reason to skip with)."""
    npm, node = shutil.which("npm"), shutil.which("node")
    if npm is None or node is None:
        return "npm and node are needed to check interoperability with the JavaScript vex"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "package.json").write_text('{"name": "vex-interop", "private": true, "type": "module"}\n')
    steps = (
        [npm, "pack", PACKAGE, "--silent"],
        [npm, "install", "--no-audit", "--no-fund", "--ignore-scripts", *NOBLE],
    )
    for step in steps:
        try:
            done = subprocess.run(step, cwd=folder, capture_output=True, text=True, timeout=_STEP_SECONDS)
        except subprocess.TimeoutExpired:
            return f"`{' '.join(step[1:3])}` took over {_STEP_SECONDS} s (no npm registry reachable?)"
        if done.returncode != 0:
            return f"`{' '.join(step[1:3])}` failed: {done.stderr.strip()[-300:]}"
    tarballs = sorted(folder.glob("vektormemory-vex-*.tgz"))
    if not tarballs:
        return "npm pack gave no tarball"
    with tarfile.open(tarballs[0]) as archive:
        archive.extractall(folder, filter="data")
    (folder / "driver.mjs").write_text(_DRIVER)
    return JsVex(folder)
