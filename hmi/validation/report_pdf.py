"""The human-readable IQ/OQ report (PDF): what was run, by whom, where, and what it showed.

The report is evidence for the customer's qualification file: it carries the
product version and hashes, a pass/fail table per requirement ID, each check's
expected and actual result, the overall result, page x of y on every page,
and a signature block left empty for the customer's reviewer.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from fpdf import FPDF

from hmi.validation.oq import CheckResult

_PLAIN = {
    "→": "->",
    "…": "...",
    "—": "-",
    "–": "-",
    "‘": "'",
    "’": "'",
    "“": '"',
    "”": '"',
    "≥": ">=",
    "≤": "<=",
}


def plain(text: object) -> str:
    """``text`` in the PDF core fonts' Latin-1, with common symbols spelled out."""
    out = str(text)
    for symbol, spelled in _PLAIN.items():
        out = out.replace(symbol, spelled)
    return out.encode("latin-1", "replace").decode("latin-1")


class _Report(FPDF):
    title_text = "Custos validation report"

    def header(self) -> None:
        self.set_font("Helvetica", "B", 9)
        self.cell(0, 6, plain(self.title_text), new_x="LMARGIN", new_y="NEXT")
        self.ln(2)

    def footer(self) -> None:
        self.set_y(-12)
        self.set_font("Helvetica", "", 8)
        self.cell(0, 6, f"Page {self.page_no()} of {{nb}}", align="C")


def _heading(pdf: FPDF, text: str) -> None:
    pdf.ln(3)
    pdf.set_font("Helvetica", "B", 12)
    pdf.cell(0, 7, plain(text), new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", "", 9)


def _pairs(pdf: FPDF, rows: Sequence[tuple[str, object]]) -> None:
    with pdf.table(col_widths=(45, 145), first_row_as_headings=False) as table:
        for key, value in rows:
            row = table.row()
            row.cell(plain(key))
            row.cell(plain(value))


def _requirements(pdf: FPDF, oq: dict[str, Any]) -> None:
    with pdf.table(col_widths=(30, 25, 135)) as table:
        head = table.row()
        for title in ("Requirement", "Result", "Checks"):
            head.cell(title)
        for req, row in oq["requirements"].items():
            r = table.row()
            r.cell(req)
            r.cell(row["result"])
            r.cell(", ".join(row["checks"]))


def _check(pdf: FPDF, result: CheckResult) -> None:
    _heading(pdf, f"{result.id} {result.title}: {result.result}")
    _pairs(
        pdf,
        [
            ("Requirements", ", ".join(result.requirements)),
            ("What was done", result.description),
            ("Expected", result.expected),
            ("Actual", result.actual),
            ("Result", result.result),
            ("Started (UTC)", result.started_at),
            ("Duration", f"{result.duration_s:.2f} s"),
        ],
    )


def _signature_block(pdf: FPDF) -> None:
    _heading(pdf, "Review and approval")
    pdf.multi_cell(
        0,
        5,
        plain(
            "To be completed by the customer's reviewer under the site's validation plan. "
            "By signing, the reviewer confirms that this report was reviewed and that the "
            "results are accepted (or the deviations recorded below)."
        ),
        new_x="LMARGIN",
        new_y="NEXT",
    )
    pdf.ln(2)
    with pdf.table(col_widths=(45, 145), first_row_as_headings=False, line_height=9) as table:
        for label in (
            "Reviewer (printed name)",
            "Role",
            "Signature",
            "Date and time (with time zone)",
            "Meaning (reviewed / approved)",
            "Deviations / comments",
        ):
            row = table.row()
            row.cell(label)
            row.cell("")


def write_report(
    path: Path, iq: dict[str, Any], oq: dict[str, Any], results: Sequence[CheckResult]
) -> None:
    pdf = _Report(orientation="P", unit="mm", format="A4")
    pdf.set_title("Custos validation report (IQ/OQ)")
    pdf.set_auto_page_break(auto=True, margin=15)
    pdf.add_page()
    pdf.set_font("Helvetica", "B", 16)
    pdf.cell(0, 10, "Installation and operational qualification", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", "B", 13)
    overall = oq["result"]
    failed = [r.id for r in results if not r.passed]
    pdf.cell(
        0,
        8,
        plain(f"Overall result: {overall}" + (f" (failed: {', '.join(failed)})" if failed else "")),
        new_x="LMARGIN",
        new_y="NEXT",
    )
    pdf.set_font("Helvetica", "", 9)
    for note in oq.get("notes", ()):
        pdf.multi_cell(0, 5, plain(f"Note: {note}"), new_x="LMARGIN", new_y="NEXT")
    product = iq["product"]
    _pairs(
        pdf,
        [
            ("Product", f"{product['name']} {product['version']}"),
            ("Run ID", oq["run_id"]),
            ("Run by", oq["ran_by"]),
            ("Host", oq["host"]),
            ("Started", oq["started"]),
            ("Finished", oq["finished"]),
            ("Python", f"{iq['python']['implementation']} {iq['python']['version']}"),
            ("Interpreter", iq["python"]["executable"]),
            ("Platform", iq["platform"]["platform"]),
            ("Installed at", ", ".join(f"{k}: {v}" for k, v in product["packages"].items())),
            ("Product files", f"{len(iq['package_files'])} files"),
            ("Product hash (SHA-256)", iq["package_hash"]),
            ("Configuration", iq["configuration"]["directory"] or "not given"),
            ("Configuration hash", iq["configuration"]["sha256"] or "not given"),
            ("OQ reference configuration", oq["reference_configuration"]["directory"]),
            ("Reference configuration hash", oq["reference_configuration"]["sha256"]),
            ("Scratch data directory", oq["scratch"]["directory"]),
        ],
    )
    _heading(pdf, "Result per requirement")
    _requirements(pdf, oq)
    _heading(pdf, "Installed distributions")
    with pdf.table(col_widths=(70, 40, 80)) as table:
        head = table.row()
        for title in ("Distribution", "Version", "Required by"):
            head.cell(title)
        for dep in iq["dependencies"]:
            row = table.row()
            row.cell(plain(dep["name"]))
            row.cell(plain(dep["version"] or "MISSING"))
            row.cell(plain(dep["required_by"] or "-"))
    pdf.add_page()
    _heading(pdf, "Checks and evidence")
    for result in results:
        _check(pdf, result)
    _signature_block(pdf)
    pdf.output(str(path))
