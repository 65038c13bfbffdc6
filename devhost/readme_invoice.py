"""The invoice page the README shows (``docs/images/invoice.png``): what a subscriber of the
demo receives, rendered by the code and turned into a PNG by ``pdftoppm`` (Debian's
poppler-utils), so the picture is the real output and can be made again.

An invoice from the demo's organisation (Avisa Nordvest, its letterhead, branding and logo
from ``devhost.demo``) to a subscriber on the monthly plan: the newspaper (0 % VAT), the
crossword app (25 %) and the invoice fee, paid by giro with a KID.

    python -m devhost.readme_invoice [--out docs/images/invoice.png] [--pdf invoice.pdf]
"""

from __future__ import annotations

import argparse
import subprocess
import tempfile
from pathlib import Path

from shared.documents.pdf import render_pdf
from shared.domain.documents import Document
from shared.domain.invoicing import line

from . import sample_documents
from .builders import newspaper
from .demo import logo

OUT = Path(__file__).resolve().parent.parent / "docs" / "images" / "invoice.png"


def invoice() -> Document:
    org = newspaper().organizations["avisa"]
    span = sample_documents.DECEMBER
    lines = (line("Avisa Nordvest digital", 1, 29900, 0, "avis", span),
             line("Kryssord-appen", 1, 4900, 2500, "kryssord", span),
             line("Fakturagebyr", 1, 3900, 2500))
    return sample_documents.document(key=org, lines=lines, buyer_reference="")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--pdf", type=Path, help="keep the PDF here too")
    args = parser.parse_args()
    pdf = render_pdf(invoice(), logo())
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(args.pdf or Path(tmp) / "invoice.pdf")
        source.write_bytes(pdf)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        # -singlefile: the first page, named exactly ``out`` (pdftoppm adds the .png)
        subprocess.run(["pdftoppm", "-png", "-r", "80", "-singlefile", str(source), str(args.out.with_suffix(""))],
                       check=True)
    print(f"{args.out} ({args.out.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
