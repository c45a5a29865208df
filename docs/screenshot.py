"""Make docs/demo-report.png, the README's picture: the demo model's HTML report in headless Chromium.

    python docs/screenshot.py [--out PNG] [--html HTML] [--size 1400,1000]

Needs pyscan installed and a Chromium binary (Debian: apt-get install -y chromium).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pyscan
from pyscan.demo import write_tinyllama_like
from pyscan.visual import write_html

HERE = Path(__file__).resolve().parent
BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def browser() -> str:
    for name in BROWSERS:
        found = shutil.which(name)
        if found:
            return found
    sys.exit("screenshot.py: no chromium binary on PATH (Debian: apt-get install -y chromium)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=HERE / "demo-report.png", help="the PNG to write")
    parser.add_argument("--html", type=Path, help="also keep the HTML page here")
    parser.add_argument("--size", default="1400,1000", help="browser window WIDTH,HEIGHT in pixels")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="pyscan-demo-") as folder:
        # The same file name as `pyscan --demo`, so the picture matches the README's text report.
        model = os.path.join(folder, "tinyllama-1.1b-chat-q4_k_m-demo.gguf")
        write_tinyllama_like(model)
        report = pyscan.scan(model)
        page = Path(folder) / "report.html"
        with pyscan.open(model) as gguf:
            write_html(page, report, gguf)
        if args.html:
            shutil.copyfile(page, args.html)
        # Chromium's --screenshot writes to a relative path from its working folder: give it an absolute one.
        command = [browser(), "--headless", "--disable-gpu", "--no-sandbox", "--hide-scrollbars",
                   f"--user-data-dir={Path(folder) / 'profile'}", f"--window-size={args.size}",
                   f"--screenshot={args.out.resolve()}", page.as_uri()]  # fmt: skip
        args.out.unlink(missing_ok=True)  # so that a stale picture cannot pass for a new one
        done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    if done.returncode != 0 or not args.out.exists():
        sys.exit(f"screenshot.py: chromium failed ({done.returncode}):\n{done.stderr[-2000:]}")
    print(args.out)


if __name__ == "__main__":
    main()
