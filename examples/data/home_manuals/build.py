"""Build the documents of the office-manual example (`examples/recipes/manuals_qa.yaml`): `ventilator_manual.pdf`, a
three-page PDF with a text layer, and `ventilator_service.docx`, a Word file with headings, paragraphs and a
table. The text is written by the sftforge authors about a fictional product (the Breeze H3 heat-recovery
ventilator by Lumen Home). The PDF is written object by object (no PDF library needed to make it); the DOCX with
python-docx. Run from anywhere: `python build.py`."""

from __future__ import annotations

import textwrap
from pathlib import Path

HERE = Path(__file__).resolve().parent

PAGES = [
    [
        "Breeze H3 heat-recovery ventilator: installation",
        "The Breeze H3 exchanges stale indoor air for fresh outdoor air while keeping most of the heat. Its "
        "counter-flow core recovers up to 88 percent of the heat in the outgoing air, so a room ventilated in "
        "winter loses far less warmth than with an open window.",
        "Mount the unit on an outside wall at least 30 centimetres below the ceiling. Drill a core hole of 162 "
        "millimetres through the wall with a slight downward slope of two degrees towards the outside, so that "
        "condensation drains out of the building and never into the room.",
        "The unit needs a 230 volt supply protected by a 6 ampere fuse. Only a qualified electrician may connect "
        "it to the mains. Keep at least 50 centimetres of free space in front of the unit for servicing.",
    ],
    [
        "Operating modes",
        "Press the mode button once for continuous ventilation, twice for heat recovery and three times for "
        "night mode. In heat-recovery mode the fan reverses its direction every 70 seconds and the ceramic core "
        "stores heat from the outgoing air and releases it into the incoming air.",
        "Night mode limits the fan to its lowest speed, which keeps the noise below 19 decibels. Boost mode runs "
        "the fan at full speed for 30 minutes and then returns to the previous mode; use it after cooking or "
        "showering.",
        "A humidity sensor switches the unit to boost mode on its own when the relative humidity in the room "
        "rises above 70 percent. The threshold can be changed from 50 to 90 percent in the Lumen Home app.",
    ],
    [
        "Care and filters",
        "Clean the G3 coarse filters every three months with lukewarm water and let them dry completely before "
        "refitting them. Replace them once a year. A clogged filter makes the unit louder and lowers the heat "
        "recovery, and the filter lamp on the front panel turns orange after 90 days of operation.",
        "Wash the ceramic core once a year in warm water without detergent. Never put the core in a dishwasher: "
        "the heat can crack the ceramic. The warranty covers the fan and the electronics for five years and the "
        "ceramic core for ten years from the date of purchase.",
    ],
]

SERVICE = [
    ("heading", "Breeze H3 service guide"),
    (
        "paragraph",
        "This guide is for service partners of Lumen Home. It lists the checks of the yearly service visit and "
        "the fault codes the Breeze H3 shows on its front panel.",
    ),
    ("heading2", "Yearly service visit"),
    (
        "paragraph",
        "Measure the air flow at the outside grille with an anemometer; at the middle fan speed it should be "
        "between 25 and 30 cubic metres per hour. A lower value usually means a blocked grille or a dirty core.",
    ),
    (
        "paragraph",
        "Check that the condensate drains to the outside: pour 100 millilitres of water into the wall sleeve and "
        "watch it run out at the outside grille within one minute.",
    ),
    ("heading2", "Fault codes"),
    (
        "table",
        [
            ("Code", "Meaning", "What to do"),
            ("E1", "Fan blocked", "Remove the obstruction, then restart the unit."),
            ("E2", "Outdoor sensor open", "Check the sensor cable and its plug on the control board."),
            ("E3", "Frost protection active", "Wait; the unit resumes when the outdoor air is above -15 C."),
            ("E4", "Filter overdue", "Clean or replace the filters, then hold the mode button for 5 seconds."),
        ],
    ),
]


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")


def pdf_bytes(pages: list[list[str]]) -> bytes:
    """A PDF with one Helvetica page per entry: the first string as a heading, the others as wrapped paragraphs."""
    objs = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        f"<< /Type /Pages /Kids [{' '.join(f'{4 + 2 * i} 0 R' for i in range(len(pages)))}] /Count {len(pages)} >>".encode(),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    for i, (heading, *paragraphs) in enumerate(pages):
        ops = ["BT", "/F1 16 Tf", "16 TL", "72 740 Td", f"({_escape(heading)}) Tj", "/F1 11 Tf", "14 TL", "T*"]
        for paragraph in paragraphs:
            ops.append("T*")
            ops += [f"({_escape(line)}) Tj T*" for line in textwrap.wrap(paragraph, 90)]
        ops.append("ET")
        stream = "\n".join(ops).encode("latin-1")
        objs.append(
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 3 0 R >> >> "
            f"/Contents {5 + 2 * i} 0 R >>".encode()
        )
        objs.append(b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream")
    out, offsets = b"%PDF-1.4\n", []
    for i, obj in enumerate(objs):
        offsets.append(len(out))
        out += f"{i + 1} 0 obj\n".encode() + obj + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objs) + 1}\n0000000000 65535 f \n".encode()
    out += b"".join(f"{off:010d} 00000 n \n".encode() for off in offsets)
    out += f"trailer\n<< /Size {len(objs) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return out


def write_docx(path: Path) -> None:
    import docx

    document = docx.Document()
    for kind, value in SERVICE:
        if kind == "heading":
            document.add_heading(value, level=1)
        elif kind == "heading2":
            document.add_heading(value, level=2)
        elif kind == "paragraph":
            document.add_paragraph(value)
        else:
            table = document.add_table(rows=0, cols=len(value[0]))
            for row in value:
                cells = table.add_row().cells
                for cell, text in zip(cells, row):
                    cell.text = text
    document.core_properties.author = "sftforge authors"
    document.save(str(path))


def main() -> None:
    (HERE / "ventilator_manual.pdf").write_bytes(pdf_bytes(PAGES))
    write_docx(HERE / "ventilator_service.docx")
    print("wrote ventilator_manual.pdf and ventilator_service.docx")


if __name__ == "__main__":
    main()
